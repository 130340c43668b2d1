// Thin client for the read side of the HTTP API (docs/CONTRACT.md). Every request has its own
// AbortController deadline, so a hung API turns into a "timeout" error the UI can show instead
// of a poll that never finishes.

/** A failed request, classified so the UI can say *why* in plain words. */
export class ApiError extends Error {
  /**
   * @param {"timeout"|"network"|"http"|"parse"} kind
   * @param {string} path
   * @param {string} message
   * @param {number} [status]
   */
  constructor(kind, path, message, status) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.path = path;
    this.status = status;
  }
}

/**
 * Request headers: JSON, plus the reader's credential: the read key (`X-Api-Key`), or the
 * Cognito ID token in `Authorization` (what API Gateway's user-pool authorizer reads).
 * @param {string | {apiKey?: string, idToken?: string | null}} credentials
 */
export function requestHeaders(credentials) {
  const { apiKey = "", idToken = null } =
    typeof credentials === "string" ? { apiKey: credentials } : (credentials ?? {});
  const headers = { Accept: "application/json" };
  if (typeof apiKey === "string" && apiKey !== "") headers["X-Api-Key"] = apiKey;
  if (typeof idToken === "string" && idToken !== "") headers.Authorization = idToken;
  return headers;
}

/** Plain words for the statuses a reader can act on. */
function httpMessage(status, signsIn) {
  if (status === 401 && signsIn) return "HTTP 401: not signed in, or the session ended (sign in again)";
  if (status === 401) return "HTTP 401: no API key (open the page with ?key=<read key>)";
  if (status === 403) return "HTTP 403: the API key was refused (wrong, revoked or not a read key)";
  return `HTTP ${status}`;
}

/**
 * GET `${baseUrl}${path}` as JSON within `timeoutMs`, with the reader's credentials (a read
 * key string, or `{apiKey, idToken}`).
 * @returns {Promise<any>}
 */
export async function getJson(baseUrl, path, timeoutMs, credentials = "") {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    let response;
    try {
      response = await fetch(baseUrl + path, {
        signal: controller.signal,
        // Numbers change every second; never let an HTTP cache hand back an old snapshot.
        cache: "no-store",
        credentials: "omit",
        // The key travels in a header, never in the URL (URLs end up in logs and history).
        headers: requestHeaders(credentials),
      });
    } catch (err) {
      if (timedOut) {
        throw new ApiError("timeout", path, `no answer within ${formatSeconds(timeoutMs)}`);
      }
      // fetch() rejects with a bare TypeError for refused connections, DNS and CORS failures;
      // the browser hides which one, so say what the user can act on.
      throw new ApiError("network", path, "could not connect");
    }
    if (!response.ok) {
      const signsIn = typeof credentials === "object" && credentials?.idToken !== undefined;
      throw new ApiError("http", path, httpMessage(response.status, signsIn), response.status);
    }
    try {
      // The body is read under the same deadline: a server that sends headers then stalls
      // is just as stuck as one that never answers.
      return await response.json();
    } catch (err) {
      if (timedOut) {
        throw new ApiError("timeout", path, `no answer within ${formatSeconds(timeoutMs)}`);
      }
      throw new ApiError("parse", path, "response was not valid JSON");
    }
  } finally {
    clearTimeout(timer);
  }
}

function formatSeconds(ms) {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

/** The panels' data, each a section of one `GET /dashboard` answer. */
export const SNAPSHOT_SECTIONS = [
  "stats", "timeseries", "funnel", "pages", "breakdowns", "goals", "realtime",
];

/** What changes every second: refreshed on every poll. */
export const FAST_SECTIONS = ["stats", "timeseries", "realtime"];
/** Every FULL_EVERY-th poll (and after a period change) asks for every section. */
export const FULL_EVERY = 8;

/**
 * The one request a dashboard refresh makes, for the period shown (`periodQuery`:
 * "period=today", ...): every section, or only the fast-moving ones (`sections=`), since
 * breakdowns, goals, funnel and pages are most of a poll's reads and change slowly.
 */
export function snapshotRequest({ topPagesLimit }, periodQuery = "", sections = null) {
  const limit = `limit=${encodeURIComponent(topPagesLimit)}`;
  const only = sections ? `&sections=${sections.join(",")}` : "";
  return `/dashboard?${limit}${periodQuery ? `&${periodQuery}` : ""}${only}`;
}

/**
 * Fetches the dashboard's snapshot. Each section succeeds or fails on its own: the API
 * answers a section it could not read as `{error, status}`, and the other panels stay current.
 * @returns {Promise<{results: Record<string, {ok: true, data: any} | {ok: false, error: ApiError}>, elapsedMs: number}>}
 */
export async function fetchSnapshot(baseUrl, path, timeoutMs, credentials = "", sections = SNAPSHOT_SECTIONS) {
  const started = performance.now();
  const results = {};
  try {
    const body = await getJson(baseUrl, path, timeoutMs, credentials);
    for (const name of sections) {
      const part = body?.[name];
      if (part && typeof part === "object" && !("error" in part)) {
        results[name] = { ok: true, data: part };
      } else {
        const status = Number(part?.status) || 502;
        results[name] = { ok: false, error: new ApiError("http", `${path}#${name}`, `HTTP ${status}`, status) };
      }
    }
  } catch (err) {
    const error = err instanceof ApiError ? err : new ApiError("network", path, String(err?.message ?? err));
    for (const name of sections) results[name] = { ok: false, error };
  }
  return { results, elapsedMs: performance.now() - started };
}
