// Display formatting in the reader's locale. Raw numbers stay available to code and tests via
// data-value attributes; these strings are only for people.

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const percent = new Intl.NumberFormat(undefined, {
  style: "percent",
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});
const timeOfDay = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});
const hourMinute = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const currencyFormats = new Map();

/** A finite number or null; API fields may be missing or null on an empty stack. */
export function num(value) {
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

export function formatInt(value) {
  const n = num(value);
  return n === null ? "–" : integer.format(n);
}

const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
const COMPACT_FROM = 100_000; // below this, every digit fits a card

/** A card's number: whole up to 99,999, then "461.7K", "1.2M" (the full number in a title). */
export function formatCount(value) {
  const n = num(value);
  if (n === null) return "–";
  return Math.abs(n) >= COMPACT_FROM ? compact.format(n) : integer.format(n);
}

/** Seconds as people say them: "45 s", "2 min 05 s", "1 h 04 min". */
export function formatDuration(seconds) {
  const n = num(seconds);
  if (n === null) return "–";
  const s = Math.round(n);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

export function formatDecimal(value, digits = 2) {
  const n = num(value);
  return n === null ? "–" : n.toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function formatPercent(ratio) {
  const n = num(ratio);
  return n === null ? "–" : percent.format(n);
}

export function formatMoney(value, currency, { compactFrom = Infinity } = {}) {
  const n = num(value);
  if (n === null) return "–";
  const style = Math.abs(n) >= compactFrom ? "compact" : "standard";
  const key = `${currency}/${style}`;
  if (!currencyFormats.has(key)) {
    currencyFormats.set(key, new Intl.NumberFormat(undefined, {
      style: "currency", currency, notation: style, maximumFractionDigits: style === "compact" ? 1 : 2,
    }));
  }
  return currencyFormats.get(key).format(n);
}

/** Parses an API timestamp; the API's minute buckets ("2026-11-24T02:51") are UTC. */
export function parseTime(value) {
  if (typeof value !== "string" || value === "") return null;
  const hasZone = /(?:Z|[+-]\d\d:?\d\d)$/i.test(value);
  const d = new Date(hasZone ? value : `${value}Z`);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function formatTime(date) {
  return date ? timeOfDay.format(date) : "–";
}

export function formatHourMinute(date) {
  return date ? hourMinute.format(date) : "";
}

/** "just now", "5 s ago", "3 min ago" — for the last-updated line. */
export function formatAgo(date, now = new Date()) {
  if (!date) return "";
  const seconds = Math.max(0, Math.round((now.getTime() - date.getTime()) / 1000));
  if (seconds < 2) return "just now";
  if (seconds < 120) return `${seconds} s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min ago`;
  return `${Math.round(minutes / 60)} h ago`;
}

/** Event type ids to words: "add_to_cart" -> "Add to cart". */
export function humaniseType(type) {
  const s = String(type ?? "unknown").replace(/[_-]+/g, " ").trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
}
