// Entry point: resolve settings, then refresh every panel on a non-overlapping poll.

import { fetchSnapshot, snapshotRequests } from "./api.js";
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

  const status = new StatusView(root);
  const timeseriesChart = new TimeseriesChart(root.querySelector('[data-testid="chart-timeseries"]'));
  const typesChart = new EventTypesChart(root.querySelector('[data-testid="chart-event-types"]'));
  const requests = snapshotRequests(settings);
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
      settings.apiBaseUrl, requests, settings.requestTimeoutMs, settings.apiKey);
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
