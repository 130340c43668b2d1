// Resolves the dashboard's settings: `?api=` / `?key=` / `?poll=` / `?timeout=` on the page URL,
// else config.js (written at deploy time), else built-in defaults (API on the page's own origin).

const DEFAULTS = Object.freeze({
  apiBaseUrl: "",
  apiKey: "",
  pollIntervalMs: 2000,
  requestTimeoutMs: 5000,
  topPagesLimit: 10,
  feedLimit: 20,
  currency: "USD",
});

// Bounds keep a typo in a URL from turning the page into a request flood or a frozen display.
const POLL_MIN_MS = 500;
const POLL_MAX_MS = 60_000;
const TIMEOUT_MIN_MS = 250;
const TIMEOUT_MAX_MS = 60_000;

async function loadDeployConfig() {
  try {
    // Dynamic import so a missing or broken config.js (e.g. not uploaded) degrades to defaults
    // instead of killing the whole module graph.
    const mod = await import("./config.js");
    return mod && typeof mod.default === "object" && mod.default ? mod.default : {};
  } catch (err) {
    console.warn("config.js not loaded; using defaults", err);
    return {};
  }
}

/** Returns "http(s)://host[:port][/path]" without a trailing slash, or null if not usable. */
export function normaliseBaseUrl(value, pageOrigin) {
  if (typeof value !== "string") return null;
  const trimmed = value.trim();
  if (trimmed === "") return pageOrigin;
  let url;
  try {
    url = new URL(trimmed);
  } catch {
    return null;
  }
  // Only plain web URLs: anything else (javascript:, data:, file:) is never a sane API base.
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return (url.origin + url.pathname).replace(/\/+$/, "");
}

// A read key is `csr_`/`csa_` + hex; anything else (spaces, quotes, newlines) is never sent.
const API_KEY_SHAPE = /^[A-Za-z0-9_-]{1,256}$/;

/** The read key: `?key=` wins over config.js `apiKey`; "" when there is none. */
export function resolveApiKey(params, deployed, warnings) {
  const candidates = [
    [params.get("key"), "?key="],
    [deployed.apiKey, "config.js"],
  ];
  for (const [value, source] of candidates) {
    if (value === null || value === undefined || value === "") continue;
    if (typeof value === "string" && API_KEY_SHAPE.test(value.trim())) {
      return { apiKey: value.trim(), apiKeySource: source };
    }
    warnings.push(`Ignoring the API key from ${source}: it is not a key.`);
  }
  return { apiKey: "", apiKeySource: "none" };
}

const CLIENT_ID_SHAPE = /^[A-Za-z0-9]{1,128}$/;
const REGION_SHAPE = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** config.js `auth.cognito` ({region, userPoolClientId, endpoint?}), or null. */
export function resolveCognito(auth, warnings) {
  const cognito = auth?.cognito;
  if (!cognito) return null;
  const { region, userPoolClientId, endpoint = "" } = cognito;
  if (!REGION_SHAPE.test(String(region)) || !CLIENT_ID_SHAPE.test(String(userPoolClientId))) {
    warnings.push("Ignoring config.js auth.cognito: it needs a region and a userPoolClientId.");
    return null;
  }
  const base = endpoint ? normaliseBaseUrl(endpoint, "") : "";
  if (base === null) {
    warnings.push(`Ignoring config.js auth.cognito.endpoint "${endpoint}": not an http(s) URL.`);
    return null;
  }
  return { region, userPoolClientId, endpoint: base ? `${base}/` : "" };
}

function boundedInt(value, min, max, fallback) {
  const n = Number.parseInt(String(value ?? ""), 10);
  if (!Number.isFinite(n)) return fallback;
  return Math.min(max, Math.max(min, n));
}

export async function resolveSettings(location = window.location) {
  const params = new URLSearchParams(location.search);
  const deployed = await loadDeployConfig();
  const merged = { ...DEFAULTS, ...deployed };
  const warnings = [];

  let apiBaseUrl = normaliseBaseUrl(merged.apiBaseUrl ?? "", location.origin);
  let apiSource = merged.apiBaseUrl ? "config.js" : "same origin";
  if (apiBaseUrl === null) {
    warnings.push(`config.js apiBaseUrl "${merged.apiBaseUrl}" is not an http(s) URL; using this page's origin.`);
    apiBaseUrl = location.origin;
    apiSource = "same origin";
  }
  if (params.has("api")) {
    const fromQuery = normaliseBaseUrl(params.get("api"), location.origin);
    if (fromQuery === null) {
      warnings.push(`Ignoring ?api=${params.get("api")}: not an http(s) URL.`);
    } else {
      apiBaseUrl = fromQuery;
      apiSource = "?api=";
    }
  }

  const pollIntervalMs = boundedInt(
    params.get("poll") ?? merged.pollIntervalMs, POLL_MIN_MS, POLL_MAX_MS, DEFAULTS.pollIntervalMs);
  const requestTimeoutMs = boundedInt(
    params.get("timeout") ?? merged.requestTimeoutMs, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS,
    DEFAULTS.requestTimeoutMs);

  const { apiKey, apiKeySource } = resolveApiKey(params, merged, warnings);
  const cognito = resolveCognito(merged.auth, warnings);

  return {
    apiBaseUrl,
    apiSource,
    apiKey,
    apiKeySource,
    // Sign in to this user pool unless a read key was given (?key= wins: an operator's view).
    cognito: apiKey ? null : cognito,
    pollIntervalMs,
    requestTimeoutMs,
    topPagesLimit: boundedInt(merged.topPagesLimit, 1, 100, DEFAULTS.topPagesLimit),
    feedLimit: boundedInt(merged.feedLimit, 1, 50, DEFAULTS.feedLimit),
    currency: typeof merged.currency === "string" && /^[A-Z]{3}$/.test(merged.currency)
      ? merged.currency : DEFAULTS.currency,
    warnings,
  };
}
