// The two canvas charts (events per minute, event-type donut), drawn with the vendored
// Chart.js. Each canvas also carries its data as JSON in `data-points` and a spoken summary in
// `aria-label`; the page's tables are the full text alternative. If Chart.js fails to load,
// the tables are opened instead so nothing is lost.

import { formatHourMinute, formatInt, humaniseType, parseTime } from "./format.js";

// Fixed colours per standard event type, so a type keeps its colour as others come and go.
// Every colour has >= 4.5:1 contrast on white (WCAG 1.4.11 asks 3:1 for graphics).
const TYPE_COLOURS = {
  page_view: "#1d4ed8",
  click: "#0e7490",
  search: "#7c3aed",
  add_to_cart: "#c2410c",
  remove_from_cart: "#a16207",
  checkout: "#be185d",
  purchase: "#047857",
};
const EXTRA_COLOURS = ["#b91c1c", "#4338ca", "#15803d", "#9d174d"];
const OTHER_COLOUR = "#4b5563";
const MAX_SLICES = 8; // more slices than this are unreadable; the rest become "Other".

let ChartLib = null;

/** Loads Chart.js once; resolves false (tables shown instead) if the file is missing. */
export async function loadChartLibrary() {
  if (ChartLib) return true;
  try {
    // The UMD build assigns globalThis.Chart when imported as a module (no module/define).
    await import("./vendor/chart.umd.js");
    ChartLib = globalThis.Chart ?? null;
  } catch (err) {
    console.warn("Chart.js not loaded; showing tables only", err);
  }
  if (!ChartLib) return false;
  ChartLib.defaults.font.family = getComputedStyle(document.body).fontFamily;
  ChartLib.defaults.color = "#374151";
  ChartLib.defaults.borderColor = "#e5e7eb";
  // Polling redraws every 2 s; animating each redraw is distracting and costs CPU on phones.
  ChartLib.defaults.animation = false;
  return true;
}

/** Colour for an event type, stable across refreshes. */
export function colourFor(type, index) {
  return TYPE_COLOURS[type] ?? EXTRA_COLOURS[index % EXTRA_COLOURS.length];
}

/** Groups events_by_type into at most MAX_SLICES slices, biggest first. */
export function typeSlices(eventsByType) {
  const entries = Object.entries(eventsByType ?? {})
    .map(([type, count]) => ({ type, count: Number(count) || 0 }))
    .filter((e) => e.count > 0)
    .sort((a, b) => b.count - a.count || a.type.localeCompare(b.type));
  if (entries.length <= MAX_SLICES) return entries;
  const head = entries.slice(0, MAX_SLICES - 1);
  const rest = entries.slice(MAX_SLICES - 1).reduce((sum, e) => sum + e.count, 0);
  return [...head, { type: "other", count: rest, grouped: true }];
}

function sliceColours(slices) {
  let extra = 0;
  return slices.map((s) => {
    if (s.grouped) return OTHER_COLOUR;
    if (TYPE_COLOURS[s.type]) return TYPE_COLOURS[s.type];
    return EXTRA_COLOURS[extra++ % EXTRA_COLOURS.length];
  });
}

/** Normalises timeseries points to what the chart, table and tests use. */
export function minutePoints(timeseries) {
  return (timeseries?.points ?? []).map((p) => ({
    bucket: p.bucket,
    start: p.start ?? null,
    events: Number(p.events) || 0,
  }));
}

class ChartView {
  constructor(canvas) {
    this.canvas = canvas;
    this.chart = null;
    this.signature = "";
  }

  /** Stores the data on the element; returns false when nothing changed (skip the redraw). */
  setData(points, label) {
    const json = JSON.stringify(points);
    this.canvas.setAttribute("aria-label", label);
    if (json === this.signature) return false;
    this.signature = json;
    this.canvas.dataset.points = json;
    return true;
  }
}

export class TimeseriesChart extends ChartView {
  update(timeseries) {
    const points = minutePoints(timeseries);
    const total = points.reduce((sum, p) => sum + p.events, 0);
    const peak = points.reduce((best, p) => (p.events > (best?.events ?? -1) ? p : best), null);
    const unit = timeseries?.granularity ?? "minute";
    const label = points.length === 0
      ? `Events per ${unit}: no data yet.`
      : `Events per ${unit} over the last ${points.length} ${unit}s: ${formatInt(total)} in total` +
        (peak && peak.events > 0
          ? `, peak ${formatInt(peak.events)} at ${formatHourMinute(parseTime(peak.start ?? peak.bucket))}.`
          : ".");
    this.canvas.dataset.total = String(total);
    if (!this.setData(points, label) || !ChartLib) return;

    const labels = points.map((p) => formatHourMinute(parseTime(p.start ?? p.bucket)));
    const values = points.map((p) => p.events);
    if (this.chart) {
      this.chart.data.labels = labels;
      this.chart.data.datasets[0].data = values;
      this.chart.update("none");
      return;
    }
    this.chart = new ChartLib(this.canvas, {
      type: "bar",
      data: {
        labels,
        datasets: [{
          label: "Events",
          data: values,
          backgroundColor: "#1d4ed8",
          borderRadius: 2,
          barPercentage: 0.9,
          categoryPercentage: 0.95,
        }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 7 } },
          y: { beginAtZero: true, ticks: { precision: 0 } },
        },
      },
    });
  }
}

export class EventTypesChart extends ChartView {
  update(eventsByType) {
    const slices = typeSlices(eventsByType);
    const total = slices.reduce((sum, s) => sum + s.count, 0);
    const label = total === 0
      ? "Event types: no events yet."
      : "Event types: " + slices
        .map((s) => `${humaniseType(s.type)} ${formatInt(s.count)} (${Math.round((s.count / total) * 100)}%)`)
        .join(", ") + ".";
    this.canvas.dataset.total = String(total);
    const points = slices.map(({ type, count }) => ({ type, count }));
    if (!this.setData(points, label) || !ChartLib) return;

    const labels = slices.map((s) => humaniseType(s.type));
    const values = slices.map((s) => s.count);
    const colours = sliceColours(slices);
    if (this.chart) {
      this.chart.data.labels = labels;
      this.chart.data.datasets[0].data = values;
      this.chart.data.datasets[0].backgroundColor = colours;
      this.chart.update("none");
      return;
    }
    this.chart = new ChartLib(this.canvas, {
      type: "doughnut",
      data: {
        labels,
        datasets: [{ data: values, backgroundColor: colours, borderColor: "#ffffff", borderWidth: 2 }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        cutout: "58%",
        // The HTML legend table next to the chart names every slice with its count, which
        // reads better at phone width than Chart.js's canvas legend.
        plugins: { legend: { display: false } },
      },
    });
  }
}

export { sliceColours };
