// Entry point: resolve settings, then refresh every panel on a non-overlapping poll.

import { fetchSnapshot, snapshotRequest } from "./api.js";
import { CognitoSession } from "./auth.js";
import { EventTypesChart, TimeseriesChart, loadChartLibrary } from "./charts.js";
import { startPoller } from "./poller.js";
import { resolveSettings } from "./settings.js";
import { StatusView, describe } from "./status.js";
import {
  renderConversionCard, renderEventTypesTable, renderFeed, renderFunnel, renderStatsCards,
  renderTimeseriesTable, renderTopPages,
} from "./views.js";

// A refresh that succeeds but takes longer than this is reported as "Slow" in the status pill.
const SLOW_REFRESH_MS = 2000;
// Upper bound on the wait between attempts while the API is down.
const MAX_BACKOFF_MS = 10_000;

async function main() {
  const root = document;
  const settings = await resolveSettings();
  showSettings(root, settings);

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
  const request = snapshotRequest(settings);
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
    },
    funnel(data) {
      renderConversionCard(root, data);
      renderFunnel(root, data);
    },
    pages(data) {
      renderTopPages(root, data);
    },
  };

  async function refresh() {
    const { results, elapsedMs } = await fetchSnapshot(
      settings.apiBaseUrl, request, settings.requestTimeoutMs, await credentials());
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
  root.querySelector('[data-testid="retry-now"]').addEventListener("click", () => poller.pollNow());
  setInterval(() => status.tick(), 1000);
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
