/*! clickstream tracker. Paste into a page:
 *  <script defer src="https://YOUR-SITE/cs.js" data-api="https://YOUR-API" data-key="csw_..."></script>
 * Options (data-*): cookieless, respect-dnt, auto="false" (no automatic events),
 * batch-size (10), flush-ms (2000). API: cs.track(name, props), cs.identify(id, traits),
 * cs.page(), cs.flush(). Plain JavaScript, no build step. */
(function (w, d) {
  "use strict";
  var el = d.currentScript || d.querySelector("script[data-key][data-api]");
  var ds = (el && el.dataset) || {};
  var on = function (v) { return v != null && v !== "false"; };
  var API = String(ds.api || "").replace(/\/+$/, "");
  var KEY = ds.key || "";
  var COOKIELESS = on(ds.cookieless);
  var BATCH = +ds.batchSize || 10;
  var FLUSH_MS = ds.flushMs != null && ds.flushMs !== "" && isFinite(+ds.flushMs) ? +ds.flushMs : 2000;
  var IDLE_MS = 30 * 60 * 1000; // a session ends after 30 minutes without an event
  var QUEUE_MAX = 500; // events kept while offline; the oldest go first
  var BEACON_MAX = 60000; // sendBeacon and keepalive carry at most 64 KB
  var BODY_MAX = 900000; // bytes: the API takes at most 1 MiB a request (413, never retried)
  var NO_RETRY = { 400: 1, 401: 1, 403: 1, 413: 1 };
  var nav = w.navigator;
  var memory = {};
  var stats = { sent: 0, dropped: 0, retried: 0 };

  function noop() {}
  if (on(ds.respectDnt) && (nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.globalPrivacyControl === true)) {
    w.cs = { track: noop, identify: noop, page: noop, flush: noop, disabled: true, stats: stats };
    return;
  }

  // Storage: a first-party cookie and localStorage, or (cookieless) this page's memory only.
  function read(name) {
    if (COOKIELESS) return memory[name];
    try {
      var v = w.localStorage.getItem(name);
      if (v != null) return v;
    } catch (e) {}
    var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : undefined;
  }
  function write(name, value, days) {
    if (COOKIELESS) { memory[name] = value; return; }
    try { w.localStorage.setItem(name, value); } catch (e) {}
    if (days) {
      d.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + days * 86400 +
        "; Path=/; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
    }
  }
  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    c.getRandomValues(b);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = [];
    for (var i = 0; i < 16; i++) h.push((b[i] + 256).toString(16).slice(1));
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
      "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  // Cookieless: no device id and no session id; the API groups visits by a daily salted
  // hash of address and browser instead.
  var anonymousId = COOKIELESS ? null : read("_cs_id") || uuid();
  if (anonymousId) write("_cs_id", anonymousId, 365);
  function session() {
    if (COOKIELESS) return null;
    var now = Date.now(), s = (read("_cs_s") || "").split(".");
    var id = s[0] && now - +s[1] < IDLE_MS ? s[0] : uuid();
    write("_cs_s", id + "." + now, 1);
    return id;
  }

  var queue = [];
  try { queue = COOKIELESS ? [] : JSON.parse(read("_cs_q") || "[]"); } catch (e) {}
  // The stored queue is shared by the site's open tabs: each keeps the others' events there
  // (they send them, or the next page load does) and takes out only what it settled itself.
  var settled = {};
  function save() {
    if (queue.length > QUEUE_MAX) {
      stats.dropped += queue.length - QUEUE_MAX;
      queue = queue.slice(queue.length - QUEUE_MAX);
    }
    if (COOKIELESS) return;
    var stored = [], mine = {};
    try { stored = JSON.parse(read("_cs_q") || "[]"); } catch (e) {}
    queue.forEach(function (r) { mine[r.event_id] = 1; });
    var all = (Array.isArray(stored) ? stored : []).filter(function (r) {
      return r && r.event_id && !mine[r.event_id] && !settled[r.event_id];
    }).concat(queue);
    write("_cs_q", JSON.stringify(all.slice(Math.max(0, all.length - QUEUE_MAX))));
  }

  function context() {
    var p = { language: nav.language, screen: w.screen.width + "x" + w.screen.height };
    try { p.timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) {}
    return p;
  }

  function enqueue(type, props, extra) {
    var p = {}, k;
    for (k in props || {}) p[k] = props[k];
    var ctx = context();
    for (k in ctx) if (!(k in p)) p[k] = ctx[k];
    var r = {
      event_id: uuid(),
      event_type: type,
      timestamp: new Date().toISOString(),
      page_url: location.href,
      user_agent: nav.userAgent,
      properties: p
    };
    var sid = session(), uid = read("_cs_uid");
    if (sid) r.session_id = sid;
    if (anonymousId) r.anonymous_id = anonymousId;
    if (uid) r.user_id = uid;
    if (p.product_id != null) r.product_id = String(p.product_id);
    var value = p.value != null ? p.value : p.revenue;
    if (value != null && isFinite(+value) && +value >= 0) r.value = +value;
    for (k in extra || {}) r[k] = extra[k];
    queue.push(r);
    save();
    schedule(queue.length >= BATCH ? 0 : FLUSH_MS);
  }

  var timer = null, inFlight = {}, waitUntil = 0, failures = 0, leaving = false;
  function schedule(ms) {
    if (timer) clearTimeout(timer);
    timer = setTimeout(flush, Math.max(ms, waitUntil - Date.now()));
  }
  function url() { return API + "/events?key=" + encodeURIComponent(KEY); }
  function backoff(retryAfter) {
    failures++;
    var after = retryAfter && isFinite(+retryAfter) ? +retryAfter * 1000 : 0;
    waitUntil = Date.now() + Math.max(after, Math.random() * Math.min(60000, 1000 * Math.pow(2, failures)));
  }

  // The first records that fit one request: at most maxCount, and maxBytes of JSON (the
  // first always, so that one record too large for any request is sent and refused by name).
  function firstThatFit(records, maxCount, maxBytes) {
    var batch = [], size = 20;
    while (batch.length < maxCount && batch.length < records.length) {
      var s = new Blob([JSON.stringify(records[batch.length])]).size + 1;
      if (batch.length && size + s > maxBytes) break;
      batch.push(records[batch.length]);
      size += s;
    }
    return batch;
  }

  // Sends one batch; its records stay queued (and stored) until the answer judges each.
  // keepalive lets a request already on the wire finish when the page goes away.
  function flush() {
    timer = null;
    if (Object.keys(inFlight).length || !queue.length) return;
    if (nav.onLine === false) return; // the "online" event flushes
    var batch = firstThatFit(queue, 100, BODY_MAX), body = JSON.stringify({ records: batch, sent_at: new Date().toISOString() });
    var keepalive = body.length < BEACON_MAX;
    batch.forEach(function (r) { inFlight[r.event_id] = keepalive ? 2 : 1; });
    fetch(url(), { method: "POST", body: body, headers: { "Content-Type": "text/plain" }, keepalive: keepalive })
      .then(function (res) {
        return res.text().then(function (text) { settle(batch, res.status, text, res.headers.get("Retry-After")); });
      }, function () { settle(batch, 0, "", null); });
  }

  function settle(batch, status, text, retryAfter) {
    // Leaving, a keepalive request's promise fails though the request goes on: ignore it.
    if (leaving) return;
    inFlight = {};
    var body = {}, retry = {}, refused = 0;
    try { body = JSON.parse(text || "{}"); } catch (e) {}
    if (status === 200 || NO_RETRY[status]) {
      // Never sent again: the API named what is wrong with each record it refused, or
      // refused the whole request (its key, its size).
      if (status !== 200) refused = batch.length;
      else (body.errors || []).forEach(function (e) {
        if (e.retryable && e.index != null) retry[batch[e.index].event_id] = 1;
        else refused++;
      });
      if (refused && w.console) w.console.warn("clickstream: " + refused + " events refused", status, body.errors || body.error);
      stats.dropped += refused;
      stats.sent += batch.length - refused - Object.keys(retry).length;
    } else {
      // 429, 5xx or the network: all of it again, after Retry-After or a jittered backoff.
      batch.forEach(function (r) { retry[r.event_id] = 1; });
    }
    if (Object.keys(retry).length) {
      stats.retried += Object.keys(retry).length;
      backoff(retryAfter);
    } else {
      failures = 0;
    }
    var done = {}, present = {};
    batch.forEach(function (r) { if (!retry[r.event_id]) done[r.event_id] = settled[r.event_id] = 1; });
    queue.forEach(function (r) { present[r.event_id] = 1; });
    // A page hidden mid-request let go of the batch; what must be sent again comes back.
    var back = batch.filter(function (r) { return retry[r.event_id] && !present[r.event_id]; });
    queue = back.concat(queue.filter(function (r) { return !done[r.event_id]; }));
    save();
    if (queue.length) schedule(0);
  }

  // On page hide the page may never run again: hand what is queued to the browser.
  function sendNow() {
    // A keepalive request outlives the page: what it carries is not stored to send again
    // (offline too: the browser may hold the request and send it when back online).
    queue = queue.filter(function (r) { return inFlight[r.event_id] !== 2 || !(settled[r.event_id] = 1); });
    save();
    if (nav.onLine === false) return;
    var waiting = queue.filter(function (r) { return !inFlight[r.event_id]; });
    var batch = firstThatFit(waiting, waiting.length, BEACON_MAX);
    if (!batch.length) return;
    var body = JSON.stringify({ records: batch, sent_at: new Date().toISOString() }), queued = false;
    try { queued = nav.sendBeacon(url(), new Blob([body], { type: "text/plain" })); } catch (e) {}
    if (!queued) {
      try {
        fetch(url(), { method: "POST", body: body, headers: { "Content-Type": "text/plain" }, keepalive: true });
        queued = true;
      } catch (e) {}
    }
    if (queued) {
      var handed = {};
      batch.forEach(function (r) { handed[r.event_id] = settled[r.event_id] = 1; });
      queue = queue.filter(function (r) { return !handed[r.event_id]; });
      save();
    }
  }

  var lastUrl = null, referrer = d.referrer;
  // Properties as given: an object's own fields; a string or an array is no properties.
  function own(props, p) {
    if (props && typeof props === "object" && !Array.isArray(props)) for (var k in props) p[k] = props[k];
    return p;
  }

  var cameFrom = referrer; // the referrer of this URL's page views, when one is sent again
  function page(props) {
    var here = location.href.split("#")[0];
    var p = own(props, { title: d.title });
    if (typeof props === "string") p.name = props; // Segment's page(name)
    if (here !== lastUrl) cameFrom = referrer;
    enqueue("page_view", p, cameFrom ? { referrer: cameFrom } : null);
    referrer = here;
    lastUrl = here;
  }
  function routeChanged() {
    if (location.href.split("#")[0] !== lastUrl) page();
  }

  function attributes(node) {
    var p = {};
    for (var i = 0; i < node.attributes.length; i++) {
      var a = node.attributes[i];
      if (a.name.indexOf("data-cs-") === 0 && a.name !== "data-cs-event") {
        p[a.name.slice(8).replace(/-/g, "_")] = a.value;
      }
    }
    return p;
  }
  function onClick(event) {
    var clickable = "a[href],button,input[type=submit],input[type=button]";
    var t = event.target && event.target.closest ? event.target.closest("[data-cs-event]," + clickable) : null;
    if (!t) return;
    var named = (t.getAttribute("data-cs-event") || "").trim();
    if (named) {
      var p = attributes(t);
      return enqueue(typeOf(named, p), p);
    }
    if (!t.matches(clickable) && !(t = t.parentElement && t.parentElement.closest(clickable))) return; // a blank name names nothing
    var p = { element: t.tagName.toLowerCase(), text: Array.from((t.innerText || t.value || "").trim()).slice(0, 100).join("") }; // whole characters
    if (t.id) p.element_id = t.id;
    var type = "click";
    if (t.href) {
      p.href = t.href;
      if (t.host && t.host !== location.host && /^https?:/.test(t.protocol)) type = "outbound_click";
    }
    enqueue(type, p);
  }

  // "Signed Up" as the API's event types are written (signed_up); the name kept as sent.
  function typeOf(name, props) {
    var low = String(name).trim().toLowerCase(), type = low.replace(/[^a-z0-9_.:-]+/g, "_").replace(/^_+|_+$/g, "");
    if (!type || /[^\0-\x7f]/.test(low.replace(/[^\p{L}\p{N}]/gu, ""))) { // as the server: the name's FNV-1a
      for (var h = 2166136261, b = new TextEncoder().encode(low.normalize("NFC")), i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 16777619);
      type = (type ? type.slice(0, 55) : "event") + "_" + ("0000000" + (h >>> 0).toString(16)).slice(-8);
    }
    if (!/^[a-z]/.test(type)) type = ("e_" + type).replace(/_+$/, "");
    type = type.slice(0, 64);
    if (type !== name) props.event_name = String(name);
    return type;
  }

  w.cs = {
    track: function (name, props) {
      if (name == null || !String(name).trim()) { // as the SDK routes refuse a nameless track
        stats.dropped++;
        if (w.console) w.console.error("cs.track: the event needs a name");
        return;
      }
      var p = own(props, {});
      enqueue(typeOf(name, p), p);
    },
    identify: function (userId, traits) {
      if (userId != null) write("_cs_uid", String(userId), 365);
      enqueue("identify", { traits: own(traits, {}) });
    },
    page: page,
    flush: function () { schedule(0); },
    stats: stats
  };

  var leftBehind = queue.length; // what a previous page queued goes at once, not this page's
  if (on(ds.auto) || ds.auto == null) {
    ["pushState", "replaceState"].forEach(function (name) {
      var original = history[name];
      history[name] = function () {
        var answer = original.apply(this, arguments);
        setTimeout(routeChanged, 0); // after the app has rendered the route (and its title)
        return answer;
      };
    });
    w.addEventListener("popstate", routeChanged);
    d.addEventListener("click", onClick, true);
    page();
  }
  w.addEventListener("pagehide", function () { sendNow(); leaving = true; });
  w.addEventListener("pageshow", function () { leaving = false; inFlight = {}; }); // bfcache
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") sendNow(); });
  w.addEventListener("online", function () { waitUntil = 0; schedule(0); });
  if (leftBehind) schedule(0);
})(window, document);
