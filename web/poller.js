// Polling loop with exactly one refresh in flight at a time: the next one is scheduled only
// after the previous one has finished (setTimeout chain, never setInterval), so a slow API
// cannot pile up requests. Failures back off, capped, so an outage costs little but recovery
// is still noticed within a few seconds.

/**
 * @param {object} opts
 * @param {number} opts.intervalMs  delay between the end of one refresh and the start of the next
 * @param {number} opts.maxBackoffMs  longest delay after repeated failures
 * @param {() => Promise<boolean>} opts.tick  one refresh; resolves true when it fully succeeded
 * @param {(nextDelayMs: number) => void} [opts.onScheduled]
 */
export function startPoller({ intervalMs, maxBackoffMs, tick, onScheduled = () => {} }) {
  let timer = null;
  let inFlight = false;
  let rerunRequested = false;
  let failures = 0;
  let stopped = false;

  function delayAfter(ok) {
    if (ok) {
      failures = 0;
      return intervalMs;
    }
    failures += 1;
    // 1x, 2x, 4x ... the interval, but never longer than maxBackoffMs (nor shorter than interval).
    return Math.max(intervalMs, Math.min(maxBackoffMs, intervalMs * 2 ** (failures - 1)));
  }

  function schedule(delayMs) {
    clearTimeout(timer);
    timer = null;
    if (stopped) return;
    // A hidden tab does not poll (saves API calls and Lambda money); see onVisibility.
    if (document.visibilityState === "hidden") return;
    timer = setTimeout(run, delayMs);
    onScheduled(delayMs);
  }

  async function run() {
    timer = null;
    if (stopped) return;
    if (inFlight) {
      rerunRequested = true;
      return;
    }
    inFlight = true;
    let ok = false;
    try {
      ok = await tick();
    } catch (err) {
      // tick() is expected to handle its own errors; this only keeps the loop alive on a bug.
      console.error("refresh failed", err);
    } finally {
      inFlight = false;
    }
    const delay = delayAfter(ok);
    if (rerunRequested) {
      rerunRequested = false;
      schedule(0);
    } else {
      schedule(delay);
    }
  }

  function onVisibility() {
    if (document.visibilityState === "visible" && !inFlight && timer === null) run();
  }
  document.addEventListener("visibilitychange", onVisibility);

  run();

  return {
    /** Refresh now (or right after the refresh in flight), e.g. from a "Retry now" button. */
    pollNow() {
      if (inFlight) {
        rerunRequested = true;
      } else {
        clearTimeout(timer);
        run();
      }
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisibility);
    },
  };
}
