// The model page: GET /v1/models, refreshed every 15 s.
import { api, h, percent, signOut, when } from "./api.js";

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

function modelCard(model) {
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
    qualityTable(model),
    h("div", { class: "model-columns" }, driftSection(model), h("div", {}, h("h3", {}, "Lifecycle"), lifecycleList(model))),
  );
}

async function load() {
  const error = document.getElementById("models-error");
  try {
    const status = await api("/v1/models");
    error.hidden = true;
    document.getElementById("models").replaceChildren(...status.models.map(modelCard));
    document.getElementById("models-updated").textContent = `Updated ${when(status.generated_at)}.`;
  } catch (failure) {
    error.textContent = failure.message;
    error.hidden = false;
  }
}

await load();
setInterval(load, 15_000);
