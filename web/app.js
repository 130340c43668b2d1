// Entry point: resolve settings, then refresh every panel on a non-overlapping poll.

import { FAST_SECTIONS, FULL_EVERY, SNAPSHOT_SECTIONS, fetchSnapshot, snapshotRequest } from "./api.js";
import { CognitoSession } from "./auth.js";
import { EventTypesChart, TimeseriesChart, loadChartLibrary } from "./charts.js";
import { PERIODS, periodQuery, periodSub, readPeriod, urlWithPeriod } from "./period.js";
import { startPoller } from "./poller.js";
import { resolveSettings } from "./settings.js";
import { StatusView, describe } from "./status.js";
import {
  renderBreakdown, renderConversionCard, renderEventTypesTable, renderFeed, renderFunnel,
  renderGoals, renderRealtime, renderStatsCards, renderTimeseriesTable, renderTopPages,
} from "./views.js";

// A refresh that succeeds but takes longer than this is reported as "Slow" in the status pill.
const SLOW_REFRESH_MS = 2000;
// Upper bound on the wait between attempts while the API is down.
const MAX_BACKOFF_MS = 10_000;

// `make local` serves a demo shop instrumented with the tracker; link it when it is there.
// The shop links back to this address (which may hold the read key) from this origin's
// storage, not from its URL or referrer: the tracker records both.
async function showDemoLink(root) {
  const link = root.querySelector("[data-testid=demo-link]");
  if (!link) return;
  try {
    const answer = await fetch(link.getAttribute("href"), { method: "HEAD", cache: "no-store" });
    if (!answer.ok) return;
  } catch {
    return;
  }
  try {
    localStorage.setItem("clickstream.dashboard", location.href);
  } catch {
    // storage refused: the shop links back to /
  }
  link.rel = "noreferrer";
  link.hidden = false;
}

async function main() {
  const root = document;
  const settings = await resolveSettings();
  showSettings(root, settings);
  showDemoLink(root);

  const chartsAvailable = await loadChartLibrary();
  if (!chartsAvailable) {
    // Without charts, the tables are the only view of that data: open them.
    root.querySelectorAll("details.data-table").forEach((d) => { d.open = true; });
    root.documentElement.dataset.charts = "unavailable";
  } else {
    root.documentElement.dataset.charts = "ready";
  }

  // Reads on a Cognito user pool: sign in first, and again whenever the session ends.
  const session = settings.cognito ? new CognitoSession(settings.cognito) : null;
  root.querySelector('[data-testid="sign-out"]').addEventListener("click", () => {
    session?.signOut();
    window.location.reload(); // nothing of the last reader's data stays on the page
  });
  async function credentials() {
    if (!session) return settings.apiKey;
    let idToken = await session.idToken();
    if (!idToken) {
      await signIn(root, session);
      idToken = await session.idToken();
    }
    showAccount(root, session.username);
    return { apiKey: "", idToken };
  }

  const status = new StatusView(root);
  const timeseriesChart = new TimeseriesChart(root.querySelector('[data-testid="chart-timeseries"]'));
  const typesChart = new EventTypesChart(root.querySelector('[data-testid="chart-event-types"]'));
  let period = readPeriod(window.location.search);
  let fullDue = true; // the first poll, and the one after a period change, read everything
  let feedIds = null;
  let refreshes = 0;

  const render = {
    stats(data) {
      renderStatsCards(root, data, settings.currency);
      typesChart.update(data?.events_by_type);
      renderEventTypesTable(root, data?.events_by_type);
      feedIds = renderFeed(root, data?.recent_events, {
        limit: settings.feedLimit, currency: settings.currency, previousIds: feedIds,
      });
    },
    timeseries(data) {
      timeseriesChart.update(data);
      renderTimeseriesTable(root, data);
      root.querySelector('[data-testid="timeseries-unit"]').textContent = data?.granularity ?? "minute";
      root.querySelector('[data-testid="timeseries-sub"]').textContent =
        period.id === "all" ? `last ${data?.points?.length ?? 60} minutes` : periodSub(period);
    },
    funnel(data) {
      renderConversionCard(root, data);
      renderFunnel(root, data);
    },
    pages(data) {
      renderTopPages(root, data);
    },
    breakdowns(data) {
      for (const [dimension, breakdown] of Object.entries(data ?? {})) {
        renderBreakdown(root, dimension, breakdown);
      }
      showBreakdownSpan(root, period, Object.values(data ?? {})[0]);
    },
    goals(data) {
      renderGoals(root, data);
    },
    realtime(data) {
      renderRealtime(root, data);
    },
  };

  async function refresh() {
    const full = fullDue || refreshes % FULL_EVERY === 0;
    const sections = full ? SNAPSHOT_SECTIONS : FAST_SECTIONS;
    const request = snapshotRequest(settings, periodQuery(period), full ? null : FAST_SECTIONS);
    const { results, elapsedMs } = await fetchSnapshot(
      settings.apiBaseUrl, request, settings.requestTimeoutMs, await credentials(), sections);
    // A full poll that failed anywhere is tried again next time, so no panel stays stale
    // for eight polls after the API recovers.
    if (full) fullDue = !Object.values(results).every((r) => r.ok);
    if (session && Object.values(results).some((r) => !r.ok && r.error.status === 401)) {
      session.signOut(); // refused: the next poll asks for a sign-in
    }
    let anyOk = false;
    for (const [name, result] of Object.entries(results)) {
      // Panels whose endpoint failed keep their last good data, marked stale.
      root.querySelectorAll(`[data-source="${name}"]`).forEach((s) => {
        s.dataset.stale = String(!result.ok);
      });
      if (!result.ok) continue;
      anyOk = true;
      try {
        render[name](result.data);
      } catch (err) {
        // An unexpected response shape must not stop the loop or the other panels.
        console.error(`rendering ${name} failed`, err);
      }
    }
    if (anyOk) status.markUpdated(new Date());
    const allOk = Object.values(results).every((r) => r.ok);
    status.show(describe(results, {
      apiBaseUrl: settings.apiBaseUrl,
      slow: elapsedMs > SLOW_REFRESH_MS,
      elapsedMs,
      lastSuccessAt: status.lastSuccessAt,
    }));
    refreshes += 1;
    // For tests and debugging: how many refreshes have completed, and whether the last was clean.
    root.documentElement.dataset.refreshes = String(refreshes);
    root.documentElement.dataset.lastRefresh = allOk ? "ok" : "error";
    return allOk;
  }

  const poller = startPoller({
    intervalMs: settings.pollIntervalMs,
    maxBackoffMs: Math.max(MAX_BACKOFF_MS, settings.pollIntervalMs),
    tick: refresh,
  });
  setUpPeriodPicker(root, period, (chosen) => {
    period = chosen;
    fullDue = true;
    history.replaceState(null, "", urlWithPeriod(window.location.href, period));
    showPeriod(root, period);
    poller.pollNow();
  });
  showPeriod(root, period);
  setUpTabs(root);
  root.querySelector('[data-testid="retry-now"]').addEventListener("click", () => poller.pollNow());
  setInterval(() => status.tick(), 1000);
}

/** The range buttons (and the custom range's form); `onChange` gets the chosen period. */
function setUpPeriodPicker(root, initial, onChange) {
  const group = root.querySelector('[data-testid="period-picker"]');
  const form = root.querySelector('[data-testid="period-custom-form"]');
  const from = root.querySelector('[data-testid="period-from"]');
  const to = root.querySelector('[data-testid="period-to"]');
  const local = (iso) => (iso ? new Date(new Date(iso).getTime() - new Date().getTimezoneOffset() * 60_000)
    .toISOString().slice(0, 16) : "");
  from.value = local(initial.from);
  to.value = local(initial.to);
  form.hidden = initial.id !== "custom";
  group.replaceChildren(...PERIODS.map((p) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = p.label;
    button.dataset.period = p.id;
    button.dataset.testid = `period-${p.id}`;
    button.setAttribute("aria-pressed", String(p.id === initial.id));
    button.addEventListener("click", () => {
      form.hidden = p.id !== "custom";
      if (p.id === "custom") {
        from.focus();
        return; // applied with the form
      }
      onChange({ id: p.id, from: "", to: "" });
    });
    return button;
  }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const start = new Date(from.value);
    const end = to.value ? new Date(to.value) : null;
    if (Number.isNaN(start.getTime())) return;
    onChange({ id: "custom", from: start.toISOString(), to: end ? end.toISOString() : "" });
  });
}

function showPeriod(root, period) {
  root.querySelectorAll("[data-period]").forEach((b) => {
    b.setAttribute("aria-pressed", String(b.dataset.period === period.id));
  });
  const sub = periodSub(period);
  root.querySelector('[data-testid="period-label"]').textContent = `Showing ${sub}.`;
  root.querySelectorAll("[data-period-sub]").forEach((s) => { s.textContent = sub; });
  root.documentElement.dataset.period = period.id;
}

/** Breakdowns are kept per hour and per day: where their rows (sources, pages, goals…)
 * cover more than the period asked for, the whole hours "right now" touches, say so. */
function showBreakdownSpan(root, period, breakdown) {
  if (!breakdown || breakdown.period !== period.id) return; // an answer for another period
  let sub = periodSub(period);
  if (breakdown.resolution === "hour" && breakdown.covers_from) {
    const since = new Date(breakdown.covers_from)
      .toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    sub = `${sub} (whole hours, since ${since})`;
  }
  root.querySelectorAll("[data-rows-sub]").forEach((s) => { s.textContent = sub; });
}

/** Tabs inside a panel: one table shown at a time. */
function setUpTabs(root) {
  root.querySelectorAll('[role="tablist"]').forEach((list) => {
    const panel = list.closest("section");
    list.querySelectorAll('[role="tab"]').forEach((tab) => {
      tab.addEventListener("click", () => {
        list.querySelectorAll('[role="tab"]').forEach((t) => {
          t.setAttribute("aria-selected", String(t === tab));
        });
        panel.querySelectorAll("[data-tab-panel]").forEach((p) => {
          p.hidden = p.dataset.tabPanel !== tab.dataset.tab;
        });
      });
    });
  });
}

/** Shows the sign-in form until the reader is signed in (the poll waits meanwhile). */
function signIn(root, session) {
  const section = root.querySelector('[data-testid="sign-in"]');
  const main = root.querySelector("main");
  const form = root.querySelector('[data-testid="sign-in-form"]');
  const field = (name) => root.querySelector(`[data-testid="sign-in-${name}"]`);
  const newPasswordRow = root.querySelector('[data-testid="new-password-row"]');
  const error = field("error");
  section.hidden = false;
  main.hidden = true;
  field("username").focus();
  let challenge = null;
  return new Promise((resolve) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      error.textContent = "";
      field("submit").disabled = true;
      try {
        if (challenge) {
          await session.setNewPassword(challenge, field("new-password").value);
        } else {
          const outcome = await session.signIn(field("username").value.trim(), field("password").value);
          if (outcome.challenge) {
            challenge = outcome;
            newPasswordRow.hidden = false;
            field("new-password").required = true;
            field("new-password").focus();
            field("submit").textContent = "Set password and sign in";
            return;
          }
        }
        field("password").value = "";
        field("new-password").value = "";
        section.hidden = true;
        main.hidden = false;
        resolve();
      } catch (err) {
        error.textContent = err.message;
      } finally {
        field("submit").disabled = false;
      }
    };
  });
}

function showAccount(root, username) {
  root.querySelector('[data-testid="account"]').hidden = !username;
  root.querySelector('[data-testid="account-name"]').textContent = username ?? "";
}

function showSettings(root, settings) {
  root.querySelector('[data-testid="api-base"]').textContent = settings.apiBaseUrl;
  root.querySelector('[data-testid="api-source"]').textContent = `(from ${settings.apiSource})`;
  const seconds = settings.pollIntervalMs / 1000;
  root.querySelector('[data-testid="poll-interval"]').textContent =
    `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
  root.documentElement.dataset.apiBase = settings.apiBaseUrl;
  const warning = root.querySelector('[data-testid="config-warning"]');
  warning.textContent = settings.warnings.join(" ");
  warning.hidden = settings.warnings.length === 0;
}

main().catch((err) => {
  // Last resort: never leave a blank page without saying why.
  console.error(err);
  const banner = document.querySelector('[data-testid="error-banner"]');
  document.querySelector('[data-testid="error-message"]').textContent =
    `The dashboard failed to start: ${err?.message ?? err}`;
  banner.hidden = false;
});
