// The model page: GET /v1/models, and per model its series from Prometheus as charts (GET
// /v1/series: predictions by label, confidence, measured and estimated accuracy, drift against
// its threshold), refreshed every 15 s.
import { api, h, percent, signOut, when } from "./api.js";
import { lineChart } from "/web/common/chart.js";

document.getElementById("sign-out").addEventListener("click", signOut);

const interval = (low, high) => (low === null || high === null ? "" : ` [${percent(low)}, ${percent(high)}]`);

function qualityTable(model) {
  if (model.quality.length === 0) return h("p", { class: "sb-muted" }, "No live quality: nothing served yet.");
  const columns = ["Stage", "Window", "Predictions", "Labelled", "Measured accuracy", "Macro-F1", "Estimated accuracy"];
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { class: "quality" },
      h("caption", {}, "Live quality"),
      h("thead", {}, h("tr", {}, ...columns.map((name) => h("th", { scope: "col" }, name)))),
      h(
        "tbody",
        {},
        model.quality.map((q) =>
          h(
            "tr",
            { title: q.model },
            h("td", {}, q.stage),
            h("td", {}, q.window),
            h("td", { class: "num" }, q.predictions),
            h("td", { class: "num" }, q.labelled),
            h("td", {}, percent(q.accuracy), h("small", { class: "sb-muted" }, interval(q.accuracy_low, q.accuracy_high))),
            h("td", {}, percent(q.macro_f1)),
            h(
              "td",
              {},
              percent(q.estimated_accuracy),
              h("small", { class: "sb-muted" }, interval(q.estimated_low, q.estimated_high)),
              // The reason is long: on hover, and read out by screen readers.
              h("span", { class: `sb-badge ${q.estimate_trusted ? "ok" : "warn"}`, title: q.estimate_reason }, q.estimate_trusted ? "trusted" : "not trusted"),
              h("span", { class: "visually-hidden" }, `: ${q.estimate_reason}`),
            ),
          ),
        ),
      ),
    ),
  );
}

function driftSection(model) {
  const { drift } = model;
  const badge = { alarm: "bad", normal: "ok", unwatched: "info" }[drift.state];
  return h(
    "div",
    { class: "drift" },
    h("h3", {}, "Drift ", h("span", { class: `sb-badge ${badge}` }, drift.state)),
    drift.features_in_alarm.length ? h("p", {}, `In alarm: ${drift.features_in_alarm.join(", ")}`) : null,
    drift.updated_at ? h("p", { class: "sb-muted" }, `Last window ${when(drift.updated_at)}`) : null,
    drift.recent.length
      ? h("ul", {}, drift.recent.map((d) => h("li", {}, `${when(d.detected_at)}: ${d.feature} ${d.statistic} ${d.value.toFixed(3)} (threshold ${d.threshold.toFixed(3)}, ${d.severity}, n=${d.sample_size})`)))
      : null,
  );
}

const SHOWN_EVENTS = 4;

function lifecycleList(model) {
  if (model.lifecycle.length === 0) return h("p", { class: "sb-muted" }, "No lifecycle events.");
  const list = (events) =>
    h(
      "ul",
      { class: "lifecycle" },
      events.map((e) =>
      h(
        "li",
        {},
        h("strong", {}, e.event),
        ` ${e.version ?? ""} `,
        h("span", { class: "sb-muted" }, when(e.decided_at)),
        h("br"),
        e.reason,
        Object.keys(e.numbers).length ? h("small", { class: "sb-muted" }, ` (${Object.entries(e.numbers).slice(0, 6).map(([k, v]) => `${k} ${Number(v).toFixed(3)}`).join(", ")})`) : null,
        ),
      ),
    );
  const older = model.lifecycle.slice(SHOWN_EVENTS);
  return h(
    "div",
    {},
    list(model.lifecycle.slice(0, SHOWN_EVENTS)),
    older.length ? h("details", {}, h("summary", {}, `${older.length} earlier events`), list(older)) : null,
  );
}

const SERIES = ["predictions", "confidence_mean", "confidence_p10", "accuracy", "estimated_accuracy", "drift_ratio"];
const CHART_MINUTES = 30;
/** Labels beyond these (by predictions in the range) are drawn as one "other" line. */
const SHOWN_LABELS = 7;

const total = (points) => points.reduce((sum, [, v]) => sum + (v ?? 0), 0);

/** Point-wise sum of series of one range query (they share its steps). */
function summed(seriesList) {
  const at = new Map();
  for (const s of seriesList) for (const [t, v] of s.points) if (v !== null) at.set(t, (at.get(t) ?? 0) + v);
  return [...at].sort(([a], [b]) => a - b);
}

function modelCharts(model, answer) {
  const of = (name) => answer.series[name].series.filter((s) => s.labels.name === model.name);
  if (SERIES.every((name) => of(name).length === 0)) {
    return h("p", { class: "sb-muted model-charts-empty" }, `No series in Prometheus for ${model.name} in the last half hour (the drift processor reports predictions, confidence, quality and drift).`);
  }
  const range = { from: answer.from, to: answer.to };
  const byLabel = of("predictions").sort((a, b) => total(b.points) - total(a.points));
  const shown = byLabel.slice(0, SHOWN_LABELS).map((s) => ({ name: s.labels.label, points: s.points }));
  const rest = byLabel.slice(SHOWN_LABELS);
  if (rest.length > 0) shown.push({ name: `${rest.length} other labels`, points: summed(rest) });
  const quality = [
    ...of("accuracy").map((s) => ({ name: `measured ${s.labels.window}`, points: s.points })),
    ...of("estimated_accuracy").map((s) => ({ name: `estimated ${s.labels.window}`, points: s.points })),
  ];
  return h(
    "div",
    { class: "model-charts" },
    lineChart({ ...range, title: "Predictions by label", unit: "per_second", series: shown }),
    lineChart({
      ...range,
      title: "Confidence",
      unit: "fraction",
      yMax: 1,
      series: [...of("confidence_mean").map((s) => ({ name: "mean", points: s.points })), ...of("confidence_p10").map((s) => ({ name: "10th percentile", points: s.points }))],
    }),
    lineChart({ ...range, title: "Accuracy, measured and estimated", unit: "fraction", yMax: 1, series: quality, empty: "No quality figures yet (the drift processor computes them on its schedule)." }),
    lineChart({
      ...range,
      title: "Drift statistic ÷ threshold",
      unit: "ratio",
      threshold: 1,
      thresholdLabel: "threshold",
      series: of("drift_ratio").map((s) => ({ name: s.labels.feature, points: s.points })),
      empty: "No window closed yet.",
    }),
  );
}

function modelCard(model, series) {
  const p = model.production;
  return h(
    "article",
    { class: "sb-card model-card", "aria-labelledby": `model-${model.name}`, "data-model": model.name },
    h("h2", { id: `model-${model.name}` }, model.name, " ", h("small", { class: "sb-muted" }, model.task)),
    p
      ? h(
          "p",
          {},
          "Production ",
          h("code", {}, p.model),
          ` (${p.family}, since ${when(p.since)}) · held-out accuracy ${percent(p.held_out.accuracy)}, macro-F1 ${percent(p.held_out.macro_f1)}, ECE ${p.held_out.ece === null ? "–" : p.held_out.ece.toFixed(3)}`,
        )
      : h("p", { class: "sb-error" }, "No production version."),
    model.shadow ? h("p", {}, "Shadow ", h("code", {}, model.shadow.model), ` since ${when(model.shadow.since)}`) : null,
    series ? modelCharts(model, series) : null,
    qualityTable(model),
    h("div", { class: "model-columns" }, driftSection(model), h("div", {}, h("h3", {}, "Lifecycle"), lifecycleList(model))),
  );
}

async function load() {
  const error = document.getElementById("models-error");
  // The cards without charts when Prometheus does not answer, and the reason above them.
  const [models, series] = await Promise.allSettled([api("/v1/models"), api(`/v1/series?names=${SERIES.join(",")}&minutes=${CHART_MINUTES}`)]);
  if (models.status === "fulfilled") {
    const charts = series.status === "fulfilled" ? series.value : undefined;
    document.getElementById("models").replaceChildren(...models.value.models.map((model) => modelCard(model, charts)));
    document.getElementById("models-updated").textContent = `Updated ${when(models.value.generated_at)}.`;
  }
  const failure = [models, series].find((r) => r.status === "rejected");
  error.textContent = failure ? failure.reason.message : "";
  error.hidden = !failure;
}

await load();
setInterval(load, 15_000);
