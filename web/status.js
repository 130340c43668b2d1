// Connection state shown to the reader: the status pill, the last-updated line and the error
// banner. The banner's wording says what happened in plain words and that it will recover by
// itself; its text only changes when the situation changes, so screen readers announce it once.

import { formatAgo, formatTime } from "./format.js";

// What each endpoint feeds, in the words of the page.
export const SOURCE_NAMES = {
  stats: "totals, event types and live feed",
  timeseries: "events per minute",
  funnel: "funnel and conversion rate",
  pages: "top pages",
};

/**
 * Decides the pill state and the banner text for one finished refresh.
 * @param {Record<string, {ok: boolean, error?: any}>} results
 * @param {{apiBaseUrl: string, slow: boolean, elapsedMs: number, lastSuccessAt: Date|null}} ctx
 * @returns {{state: string, pill: string, message: string}}
 */
export function describe(results, { apiBaseUrl, slow, elapsedMs, lastSuccessAt }) {
  const failed = Object.entries(results).filter(([, r]) => !r.ok);
  const since = lastSuccessAt
    ? `Showing the data received at ${formatTime(lastSuccessAt)}.`
    : "No data has been received yet.";

  if (failed.length === 0) {
    return slow
      ? { state: "slow", pill: `Slow (${(elapsedMs / 1000).toFixed(1)} s)`, message: "" }
      : { state: "live", pill: "Live", message: "" };
  }

  const errors = failed.map(([, r]) => r.error);
  if (failed.length === Object.keys(results).length) {
    let what;
    if (errors.every((e) => e?.kind === "network")) {
      what = `Cannot reach the API at ${apiBaseUrl}.`;
    } else if (errors.some((e) => e?.kind === "timeout")) {
      const timeout = errors.find((e) => e?.kind === "timeout");
      what = `The API at ${apiBaseUrl} is too slow: ${timeout.message}.`;
    } else {
      const detail = [...new Set(errors.map((e) => e?.message ?? "error"))].join(", ");
      what = `The API at ${apiBaseUrl} is failing (${detail}).`;
    }
    return {
      state: "offline",
      pill: "Offline",
      message: `${what} ${since} Retrying automatically.`,
    };
  }

  const parts = failed.map(([name, r]) => `${SOURCE_NAMES[name] ?? name} (${r.error?.message ?? "error"})`);
  return {
    state: "degraded",
    pill: "Partly stale",
    message: `Could not refresh ${parts.join("; ")}. Those panels keep their previous data; ` +
      "everything else is current. Retrying automatically.",
  };
}

export class StatusView {
  constructor(root) {
    this.pill = root.querySelector('[data-testid="connection-status"]');
    this.updated = root.querySelector('[data-testid="last-updated"]');
    this.ago = root.querySelector('[data-testid="last-updated-ago"]');
    this.banner = root.querySelector('[data-testid="error-banner"]');
    this.bannerText = root.querySelector('[data-testid="error-message"]');
    this.lastSuccessAt = null;
  }

  show({ state, pill, message }) {
    this.pill.dataset.state = state;
    if (this.pill.textContent !== pill) this.pill.textContent = pill;
    // Only touch the alert when its text changes: rewriting it every poll would make screen
    // readers repeat it every 2 seconds.
    if (this.bannerText.textContent !== message) this.bannerText.textContent = message;
    this.banner.hidden = message === "";
    this.banner.dataset.state = state;
  }

  markUpdated(at) {
    this.lastSuccessAt = at;
    this.updated.dataset.updatedAt = at.toISOString();
    this.updated.setAttribute("datetime", at.toISOString());
    this.updated.textContent = formatTime(at);
    this.tick();
  }

  /** Called every second so "x s ago" keeps moving even while the API is down. */
  tick(now = new Date()) {
    const text = this.lastSuccessAt ? ` (${formatAgo(this.lastSuccessAt, now)})` : "";
    if (this.ago.textContent !== text) this.ago.textContent = text;
  }
}
