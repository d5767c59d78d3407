// Line charts as plain SVG, for the status page and the console's model page: series of
// [unix seconds, value] points (null: no value, a gap in the line) over a time range, a y axis
// of round numbers, the time along the bottom, an optional threshold line, and a legend with
// each series' latest value. No library and no build step: the pages import this module as it is.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 480;
const HEIGHT = 190;
const MARGIN = { top: 10, right: 10, bottom: 24, left: 58 };
/** The shortest time a chart spans: a Prometheus that started a minute ago still gets a readable axis. */
const MIN_SPAN_SECONDS = 120;
/** Distinct in light and dark schemes; a series keeps its colour by its place in the list. */
export const PALETTE = ["#2f6fdb", "#d9730d", "#2e9e5b", "#c23a64", "#7b5cd6", "#1e9bb0", "#9a7b12", "#6b7785", "#e05a47", "#4c9f2e"];

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  for (const child of children) element.append(child);
  return element;
}

function html(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  for (const child of children.flat()) if (child !== null && child !== undefined) element.append(child);
  return element;
}

/** A figure in a unit: rates a second, durations, counts, fractions as percentages, ratios as ×. */
export function formatValue(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  switch (unit) {
    case "per_second":
      return `${abs >= 100 ? value.toFixed(0) : abs >= 10 ? value.toFixed(1) : value.toFixed(2)}/s`;
    case "seconds":
      if (abs < 1) return `${(value * 1000).toFixed(abs < 0.01 ? 1 : 0)} ms`;
      if (abs < 120) return `${value.toFixed(abs < 10 ? 2 : 1)} s`;
      return abs < 7200 ? `${(value / 60).toFixed(1)} min` : `${(value / 3600).toFixed(1)} h`;
    case "fraction":
      return `${(value * 100).toFixed(abs >= 0.1 ? 1 : 2)} %`;
    case "ratio":
      return `${value.toFixed(2)}×`;
    default:
      return abs >= 1e6 ? `${(value / 1e6).toFixed(1)}M` : abs >= 1e4 ? `${(value / 1e3).toFixed(1)}k` : `${Math.round(value * 100) / 100}`;
  }
}

/** About `count` round steps (1, 2, 5 × 10^n) from min to max. */
function ticks(min, max, count = 4) {
  const span = max - min || Math.abs(max) || 1;
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const first = Math.floor(min / step) * step;
  const values = [];
  for (let v = first; v <= max + step * 1e-9; v += step) values.push(Number(v.toPrecision(12)));
  if (values[values.length - 1] < max) values.push(Number((values[values.length - 1] + step).toPrecision(12)));
  return values;
}

/** A legend's colour mark; its colour through the CSSOM, which the pages' CSP (no inline styles) allows. */
function swatch(colour) {
  const mark = html("span", { class: "sb-chart-swatch" });
  mark.style.background = colour;
  return mark;
}

const clock = (seconds) => new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** The last value of a series that is not null. */
export const latest = (points) => {
  for (let i = points.length - 1; i >= 0; i -= 1) if (points[i][1] !== null) return points[i][1];
  return null;
};

/**
 * A chart: `series` [{name, points}], drawn over [from, to] (unix seconds), or from the first
 * point when the series start later (a Prometheus younger than the range), over five minutes at
 * least. `threshold` draws a dashed line at that value (`thresholdLabel` names it); `yMin`/`yMax`
 * fix the axis (fractions 0–1); `hideZero` leaves out series that are 0 throughout (errors).
 */
export function lineChart({ title, unit, series, from: rangeFrom, to, threshold, thresholdLabel, yMin, yMax, hideZero = false, empty = "No data in this range yet." }) {
  const withData = series.filter((s) => s.points.some(([, v]) => v !== null && (!hideZero || v !== 0)));
  // What a test (or a person's devtools) can read off the figure: how many series and points it draws.
  const pointCount = Math.max(0, ...withData.map((s) => s.points.filter(([, v]) => v !== null).length));
  const figure = html("figure", { class: "sb-chart", "data-series": withData.length, "data-points": pointCount });
  figure.append(html("figcaption", {}, title));
  if (withData.length === 0) {
    figure.append(html("p", { class: "sb-chart-empty sb-muted" }, empty));
    return figure;
  }
  const first = Math.min(...withData.map((s) => s.points.find(([, v]) => v !== null)[0]));
  const from = Math.max(rangeFrom, Math.min(first, to - MIN_SPAN_SECONDS));
  const values = withData.flatMap((s) => s.points.filter(([t, v]) => v !== null && t >= from).map(([, v]) => v));
  if (threshold !== undefined) values.push(threshold);
  let low = yMin ?? Math.min(0, ...values);
  let high = yMax ?? Math.max(...values);
  if (high === low) high = low + (Math.abs(low) || 1);
  const axis = ticks(low, high);
  low = Math.min(low, axis[0]);
  high = yMax ?? Math.max(high, axis[axis.length - 1]);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (t) => MARGIN.left + ((t - from) / Math.max(1, to - from)) * plotWidth;
  const y = (v) => MARGIN.top + (1 - (v - low) / (high - low)) * plotHeight;

  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title, class: "sb-chart-svg" });
  for (const value of axis.filter((v) => v >= low && v <= high)) {
    chart.append(svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value), class: "sb-chart-grid" }));
    chart.append(svg("text", { x: MARGIN.left - 6, y: y(value) + 4, "text-anchor": "end", class: "sb-chart-tick" }, formatValue(value, unit)));
  }
  const timeStep = ticks(from, to, 5)[1] - ticks(from, to, 5)[0];
  const minuteStep = Math.max(60, Math.ceil(timeStep / 60) * 60);
  for (let t = Math.ceil(from / minuteStep) * minuteStep; t <= to; t += minuteStep) {
    chart.append(svg("text", { x: x(t), y: HEIGHT - 6, "text-anchor": "middle", class: "sb-chart-tick" }, clock(t)));
  }
  chart.append(svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(low), y2: y(low), class: "sb-chart-axis" }));
  if (threshold !== undefined) {
    chart.append(svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(threshold), y2: y(threshold), class: "sb-chart-threshold" }));
  }
  withData.forEach((s) => {
    const colour = PALETTE[series.indexOf(s) % PALETTE.length];
    // One path, a move at each gap: a missing value is not drawn as zero.
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null || t < from) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    const shown = s.points.filter(([t, v]) => v !== null && t >= from);
    if (shown.length === 1) {
      const [[t, v]] = shown;
      chart.append(svg("circle", { cx: x(t), cy: y(v), r: 3, fill: colour }));
    } else {
      chart.append(svg("path", { d, stroke: colour, class: "sb-chart-line" }));
    }
  });
  figure.append(chart);

  const legend = html("ul", { class: "sb-chart-legend" });
  series.forEach((s, i) => {
    if (!withData.includes(s)) return;
    legend.append(
      html(
        "li",
        {},
        swatch(PALETTE[i % PALETTE.length]),
        html("span", { class: "sb-chart-name" }, s.name),
        html("span", { class: "sb-chart-value" }, formatValue(latest(s.points), unit)),
      ),
    );
  });
  if (threshold !== undefined) legend.append(html("li", {}, html("span", { class: "sb-chart-swatch threshold" }), html("span", { class: "sb-chart-name" }, thresholdLabel ?? "threshold"), html("span", { class: "sb-chart-value" }, formatValue(threshold, unit))));
  figure.append(legend);
  return figure;
}
