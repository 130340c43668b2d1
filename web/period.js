// The time range the whole dashboard shows. It lives in the page URL (?period=, with ?from=
// and ?to= for a custom range) so a view can be bookmarked and shared.

export const PERIODS = [
  { id: "realtime", label: "Right now", sub: "last 30 minutes" },
  { id: "today", label: "Today", sub: "today (UTC)" },
  { id: "7d", label: "7 days", sub: "last 7 days" },
  { id: "30d", label: "30 days", sub: "last 30 days" },
  { id: "all", label: "All time", sub: "all time" },
  { id: "custom", label: "Custom", sub: "custom range" },
];
const IDS = new Set(PERIODS.map((p) => p.id));

/** `{id, from, to}` from the page URL; all time when it names none (or a bad one). */
export function readPeriod(search) {
  const params = new URLSearchParams(search);
  const id = params.get("period") ?? "all";
  if (!IDS.has(id)) return { id: "all", from: "", to: "" };
  if (id === "custom" && !validTime(params.get("from"))) return { id: "all", from: "", to: "" };
  return { id, from: params.get("from") ?? "", to: params.get("to") ?? "" };
}

function validTime(value) {
  return typeof value === "string" && value !== "" && !Number.isNaN(new Date(value).getTime());
}

/** The query string part the API takes for a period. */
export function periodQuery(period) {
  const query = new URLSearchParams({ period: period.id });
  if (period.id === "custom") {
    query.set("from", new Date(period.from).toISOString());
    if (validTime(period.to)) query.set("to", new Date(period.to).toISOString());
  }
  return query.toString();
}

/** The page URL with the period in it (other parameters kept). */
export function urlWithPeriod(href, period) {
  const url = new URL(href);
  for (const name of ["period", "from", "to"]) url.searchParams.delete(name);
  if (period.id !== "all") url.searchParams.set("period", period.id);
  if (period.id === "custom") {
    url.searchParams.set("from", period.from);
    if (period.to) url.searchParams.set("to", period.to);
  }
  return url.toString();
}

export function periodSub(period) {
  if (period.id === "custom") {
    const fmt = (v) => (v ? new Date(v).toLocaleString() : "now");
    return `${fmt(period.from)} – ${fmt(period.to)}`;
  }
  return PERIODS.find((p) => p.id === period.id)?.sub ?? "";
}
