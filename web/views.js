// DOM rendering for everything that is not a canvas. All API data is untrusted (pages, event
// types and ids come straight from clients of POST /events), so it only ever goes into
// textContent / attributes — never innerHTML.

import { colourFor, minutePoints, sliceColours, typeSlices } from "./charts.js";
import {
  formatCount, formatDecimal, formatDuration, formatHourMinute, formatInt, formatMoney,
  formatPercent, formatTime, humaniseType, num, parseTime,
} from "./format.js";

const STEP_LABELS = {
  page_view: "Viewed a page",
  add_to_cart: "Added to cart",
  checkout: "Started checkout",
  purchase: "Purchased",
};

/** Small element helper: el("td", {class: "num"}, "42"). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("data") && key.length > 4 && key[4] === key[4].toUpperCase()) {
      node.dataset[key[4].toLowerCase() + key.slice(5)] = String(value);
    } else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function byTestId(root, id) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/**
 * Sets a card's text and raw value; raw goes in data-value so tests need not parse locales,
 * and the full number in a title when the text is shortened ("461.7K").
 */
function setCard(root, id, raw, text, full = null) {
  const node = byTestId(root, id);
  if (!node) return;
  node.dataset.value = raw === null || raw === undefined ? "" : String(raw);
  if (node.textContent !== text) node.textContent = text;
  if (full && full !== text) node.title = full;
  else node.removeAttribute("title");
}

function setCount(root, id, value) {
  setCard(root, id, num(value), formatCount(value), formatInt(value));
}

export function renderStatsCards(root, stats, currency) {
  const byType = stats?.events_by_type ?? {};
  const pageViews = num(stats?.page_views) ?? num(byType.page_view) ?? 0;
  const addToCart = num(byType.add_to_cart) ?? 0;
  const purchases = num(byType.purchase) ?? 0;
  setCount(root, "card-total-events", stats?.total_events);
  setCount(root, "card-events-last-minute", stats?.events_last_minute);
  setCount(root, "card-sessions", stats?.sessions);
  setCount(root, "card-page-views", pageViews);
  setCount(root, "card-add-to-cart", addToCart);
  setCount(root, "card-purchases", purchases);
  setCard(root, "card-revenue", num(stats?.revenue),
    formatMoney(stats?.revenue, currency, { compactFrom: 100_000 }), formatMoney(stats?.revenue, currency));
  setCount(root, "card-visitors", stats?.visitors);
  setCount(root, "card-visitors-now", stats?.visitors_now);
  setCard(root, "card-bounce-rate", num(stats?.bounce_rate), formatPercent(stats?.bounce_rate));
  setCard(root, "card-visit-duration", num(stats?.avg_visit_duration_s),
    formatDuration(stats?.avg_visit_duration_s));
  setCard(root, "card-pages-per-visit", num(stats?.pages_per_visit),
    formatDecimal(stats?.pages_per_visit));
  setCount(root, "card-bots", stats?.bots_excluded);
}

const VALUE_LABELS = { "": "(none)" };

/**
 * One breakdown table (`breakdown-<dimension>`): its top rows with a bar for their share, and
 * an "Other" row holding the rest, so the rows always add up to the total.
 */
export function renderBreakdown(root, dimension, data) {
  const table = byTestId(root, `breakdown-${dimension}`);
  if (!table) return;
  const rows = Array.isArray(data?.rows) ? data.rows : [];
  const total = num(data?.total) ?? rows.reduce((sum, r) => sum + (num(r.count) ?? 0), 0);
  const other = num(data?.other) ?? 0;
  const line = (value, count, label, isOther = false) => el("tr", {
    dataTestid: isOther ? "breakdown-other" : "breakdown-row", dataValue: value, dataCount: count,
  },
    el("td", { class: "page-cell", title: label },
      el("span", { class: "page-bar", "aria-hidden": "true",
        style: { width: `${total > 0 ? ((count / total) * 100).toFixed(1) : 0}%` } }),
      el("span", { class: "page-name" }, label)),
    el("td", { class: "num" }, formatCount(count)),
    el("td", { class: "num share" }, formatPercent(total > 0 ? count / total : null)));
  const lines = rows.map((r) => {
    const value = String(r.value ?? "");
    return line(value, num(r.count) ?? 0, VALUE_LABELS[value] ?? value);
  });
  if (other > 0) lines.push(line("", other, "Other", true));
  table.tBodies[0].replaceChildren(...lines);
  table.dataset.total = String(total);
  table.dataset.complete = String(Boolean(data?.complete));
  const empty = byTestId(root, `breakdown-${dimension}-empty`);
  if (empty) empty.hidden = lines.length > 0;
}

export function renderGoals(root, data) {
  const goals = Array.isArray(data?.goals) ? data.goals : [];
  const rows = goals.map((g) => el("tr", {
    dataTestid: "goal-row", dataGoal: String(g.goal ?? ""), dataVisits: num(g.visits) ?? 0,
    dataRate: num(g.conversion_rate) ?? 0,
  },
    el("th", { scope: "row", class: "page-name" }, humaniseType(g.goal)),
    el("td", { class: "num" }, formatCount(g.visits)),
    el("td", { class: "num" }, formatPercent(g.conversion_rate))));
  byTestId(root, "goals").tBodies[0].replaceChildren(...rows);
  byTestId(root, "goals-empty").hidden = rows.length > 0;
}

/** Visitors per minute over the last 30 minutes, as bars drawn with CSS (no chart needed). */
export function renderRealtime(root, data) {
  const minutes = Array.isArray(data?.minutes) ? data.minutes : [];
  const peak = minutes.reduce((m, p) => Math.max(m, num(p.visitors) ?? 0), 0);
  const list = byTestId(root, "realtime-minutes");
  list.dataset.points = JSON.stringify(minutes.map((m) => ({
    bucket: m.bucket, visitors: num(m.visitors) ?? 0, events: num(m.events) ?? 0,
  })));
  list.replaceChildren(...minutes.map((m) => {
    const visitors = num(m.visitors) ?? 0;
    const when = formatHourMinute(parseTime(m.start ?? m.bucket));
    return el("li", { class: "spark-bar", title: `${when}: ${formatInt(visitors)} visitors` },
      el("span", { style: { height: `${peak > 0 ? Math.max(2, (visitors / peak) * 100) : 0}%` } }));
  }));
  list.setAttribute("aria-label",
    `Visitors per minute, last ${minutes.length} minutes: peak ${formatInt(peak)}.`);
  setCount(root, "card-visitors-now", data?.visitors_now);
}

export function renderConversionCard(root, funnel) {
  const rate = num(funnel?.conversion_rate);
  setCard(root, "card-conversion-rate", rate, formatPercent(rate));
}

export function renderFunnel(root, funnel) {
  const list = byTestId(root, "funnel");
  const steps = Array.isArray(funnel?.steps) ? funnel.steps : [];
  const first = num(steps[0]?.sessions) ?? 0;
  const items = steps.map((step, i) => {
    const name = String(step.step ?? `step_${i}`);
    const count = num(step.sessions) ?? 0;
    const fromStart = num(step.rate_from_start) ?? (first > 0 ? count / first : 0);
    const fromPrevious = num(step.rate_from_previous);
    const rateText = i === 0
      ? `${formatPercent(num(funnel?.sessions) ? count / funnel.sessions : null)} of all sessions`
      : `${formatPercent(fromPrevious)} of previous step · ${formatPercent(fromStart)} of first step`;
    // Bar length is relative to the first step, so the funnel narrows visibly.
    const width = `${Math.max(0, Math.min(100, fromStart * 100)).toFixed(1)}%`;
    return el("li", { class: "funnel-step", dataTestid: "funnel-step", dataStep: name, dataSessions: count },
      el("div", { class: "funnel-head" },
        el("span", { class: "funnel-label" }, STEP_LABELS[name] ?? humaniseType(name)),
        el("span", { class: "funnel-count", dataTestid: `funnel-count-${name}`, dataValue: count },
          formatInt(count))),
      el("div", { class: "funnel-track", "aria-hidden": "true" },
        el("div", { class: "funnel-bar", style: { width } })),
      el("p", {
        class: "funnel-rate", dataTestid: `funnel-rate-${name}`,
        dataFromPrevious: fromPrevious ?? "", dataFromStart: fromStart,
      }, rateText));
  });
  list.replaceChildren(...items);
  const summary = byTestId(root, "funnel-summary");
  summary.textContent = steps.length === 0
    ? "No funnel data yet."
    : `${formatInt(funnel?.sessions)} sessions in total; ${formatPercent(funnel?.conversion_rate)} ` +
      "of them made a purchase.";
}

export function renderTopPages(root, pagesResponse) {
  const pages = Array.isArray(pagesResponse?.pages) ? pagesResponse.pages : [];
  const max = pages.reduce((m, p) => Math.max(m, num(p.views) ?? 0), 0);
  const rows = pages.map((p) => {
    const views = num(p.views) ?? 0;
    const page = String(p.page ?? "");
    return el("tr", { dataTestid: "top-page-row", dataPage: page, dataViews: views },
      el("td", { class: "page-cell", title: page },
        el("span", { class: "page-bar", "aria-hidden": "true",
          style: { width: `${max > 0 ? ((views / max) * 100).toFixed(1) : 0}%` } }),
        el("span", { class: "page-name" }, page)),
      el("td", { class: "num" }, formatInt(views)));
  });
  byTestId(root, "top-pages").tBodies[0].replaceChildren(...rows);
  byTestId(root, "top-pages-empty").hidden = rows.length > 0;
}

export function renderTimeseriesTable(root, timeseries) {
  const rows = minutePoints(timeseries).map((p) => el("tr", { dataBucket: p.bucket },
    el("th", { scope: "row" }, formatHourMinute(parseTime(p.start ?? p.bucket))),
    el("td", { class: "num" }, formatInt(p.events))));
  byTestId(root, "timeseries-table").tBodies[0].replaceChildren(...rows);
}

export function renderEventTypesTable(root, eventsByType) {
  const slices = typeSlices(eventsByType);
  const colours = sliceColours(slices);
  const total = slices.reduce((sum, s) => sum + s.count, 0);
  const rows = slices.map((s, i) => el("tr", { dataType: s.type, dataCount: s.count },
    el("th", { scope: "row" },
      el("span", { class: "swatch", "aria-hidden": "true", style: { backgroundColor: colours[i] } }),
      humaniseType(s.type)),
    el("td", { class: "num" }, formatInt(s.count)),
    el("td", { class: "num" }, formatPercent(total > 0 ? s.count / total : null))));
  byTestId(root, "event-types-table").tBodies[0].replaceChildren(...rows);
  byTestId(root, "event-types-empty").hidden = rows.length > 0;
  root.querySelector(".donut-layout").hidden = rows.length === 0;
}

// The event types whose value is an amount of money (a custom event's, e.g. a Snowplow
// structured event's se_va, is a plain number).
const MONEY_TYPES = new Set(["purchase", "add_to_cart", "remove_from_cart", "checkout", "transaction_item"]);

// The feed is in arrival order: an event whose own time is far from its arrival (a device's
// clock set wrong, or an event kept offline and sent later) is marked, not left looking out
// of order beside its neighbours.
const CLOCK_NOTE_FROM_S = 300;

function clockNote(when, arrived) {
  if (!when || !arrived) return null;
  const seconds = (when.getTime() - arrived.getTime()) / 1000;
  if (Math.abs(seconds) < CLOCK_NOTE_FROM_S) return null;
  const off = Math.round(Math.abs(seconds) / 60) * 60; // to the minute: 3 h, not 2 h 59 min
  return seconds > 0
    ? `its time is ${formatDuration(off)} ahead of its arrival at ${formatTime(arrived)} (the device's clock)`
    : `sent ${formatDuration(off)} after its time, at ${formatTime(arrived)}`;
}

/** Live feed; returns the ids shown so the next render can highlight what is new. */
export function renderFeed(root, events, { limit, currency, previousIds }) {
  const list = byTestId(root, "feed");
  const shown = (Array.isArray(events) ? events : []).slice(0, limit);
  const ids = shown.map((e) => String(e.event_id ?? ""));
  const signature = ids.join("|");
  if (list.dataset.signature === signature) return previousIds;
  list.dataset.signature = signature;
  const firstRender = previousIds === null;
  const items = shown.map((e, i) => {
    const type = String(e.event_type ?? "unknown");
    const when = parseTime(e.timestamp);
    const value = num(e.value);
    const isNew = !firstRender && !previousIds.has(ids[i]);
    const off = clockNote(when, parseTime(e.received_at));
    return el("li", {
      class: isNew ? "feed-item is-new" : "feed-item",
      dataTestid: "feed-item", dataEventId: ids[i], dataEventType: type,
    },
      el("time", {
        class: off ? "feed-time is-off" : "feed-time", datetime: when ? when.toISOString() : "",
        title: off, "aria-label": off && `${formatTime(when)}, ${off}`,
      }, formatTime(when), off && "*"),
      el("span", { class: "feed-type" },
        el("span", { class: "swatch", "aria-hidden": "true", style: { backgroundColor: colourFor(type, 0) } }),
        humaniseType(type)),
      el("span", { class: "feed-page", title: e.page ?? e.page_url ?? null }, e.page ?? e.page_url ?? ""),
      // Always present (maybe empty) so the feed's columns line up on wide screens.
      el("span", { class: "feed-value" }, value !== null && value > 0
        ? (MONEY_TYPES.has(type) ? formatMoney(value, currency) : formatDecimal(value)) : ""),
      // Full id (CSS ellipsis on narrow columns; the title shows it on hover): generated ids
      // often share a long prefix, so cutting the text would make them all look the same.
      el("span", { class: "feed-session", title: e.session_id ? String(e.session_id) : null },
        e.session_id ? `session ${e.session_id}` : ""));
  });
  list.replaceChildren(...items);
  byTestId(root, "feed-empty").hidden = items.length > 0;
  return new Set(ids);
}
