// The status page: what `switchboard status` shows (GET /v1/status) and the key series as charts
// (GET /v1/series, named queries only), refreshed every 10 s.
import { api, h, signOut, when } from "./api.js";
import { formatValue, lineChart } from "/web/common/chart.js";

document.getElementById("sign-out").addEventListener("click", signOut);
const range = document.getElementById("range");
// ?minutes= picks the range, so that a link can show the last 5 minutes.
const asked = new URLSearchParams(location.search).get("minutes");
if ([...range.options].some((o) => o.value === asked)) range.value = asked;
const REFRESH_MS = 10_000;

/** Each chart: its title, unit and the named series it draws, each series named from its labels. */
const CHARTS = [
  { id: "chart-inquiries", title: "Inquiries received and answered", unit: "per_second", lines: [{ query: "received", name: () => "received" }, { query: "answered", name: () => "answered" }] },
  { id: "chart-latency", title: "Received → response", unit: "seconds", lines: [{ query: "end_to_end_p95", name: () => "p95" }, { query: "end_to_end_p99", name: () => "p99" }] },
  { id: "chart-lag", title: "Consumer lag by process", unit: "records", lines: [{ query: "lag", name: (l) => l.job }] },
  {
    id: "chart-errors",
    title: "Errors a second",
    unit: "per_second",
    lines: [{ query: "errors", name: (l) => `${l.job} processing` }, { query: "server_errors", name: (l) => `${l.job} 5xx` }],
    hideZero: true,
    empty: "No processing error and no 5xx answer in this range.",
  },
  { id: "chart-dlq", title: "Records in dead-letter queues", unit: "records", lines: [{ query: "dlq", name: (l) => `${l.topic}.dlq` }], hideZero: true, empty: "No record dead-lettered in this range." },
];
/** Queues listed before the rest fold away, oldest first. */
const SHOWN_QUEUES = 8;
const QUERIES = [...new Set(CHARTS.flatMap((c) => c.lines.map((l) => l.query)))];

const STATE_BADGE = { up: "ok", down: "bad", "partly down": "warn", "not scraped": "info" };
const num = (value) => (value === null ? "–" : value.toPrecision(3));
const muted = (text) => h("p", { class: "sb-muted" }, text);

function table(columns, rows, numeric = new Set()) {
  return h(
    "table",
    { class: "status-table" },
    h("thead", {}, h("tr", {}, columns.map((c, i) => h("th", { scope: "col", class: numeric.has(i) ? "num" : undefined }, c)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) => h("td", { class: numeric.has(i) ? "num" : undefined }, cell))))),
  );
}

function renderSnapshot(s) {
  const up = s.processes.filter((p) => p.state === "up").length;
  const firing = s.alerts.filter((a) => a.state === "firing").length;
  document.getElementById("summary").replaceChildren(
    h("span", { class: `sb-badge ${up === s.processes.length ? "ok" : "bad"}` }, `${up} of ${s.processes.length} processes up`),
    " received → response p95 ",
    h("strong", { id: "summary-p95" }, formatValue(s.endToEndP95Seconds, "seconds")),
    " · ",
    h("span", { class: `sb-badge ${firing > 0 ? "bad" : "ok"}` }, firing > 0 ? `${firing} alert${firing === 1 ? "" : "s"} firing` : "no alert firing"),
    h("span", { class: "sb-muted" }, ` · from ${s.prometheus}, ${when(s.at)}`),
  );

  const rows = s.processes.map((p) => [
    h("span", { "data-process": p.name }, p.name),
    p.kind,
    h("span", { class: `sb-badge ${STATE_BADGE[p.state]}` }, p.instances > 1 ? `${p.state} (${p.instances})` : p.state),
    formatValue(p.inPerSecond, "per_second"),
    formatValue(p.outPerSecond, "per_second"),
    formatValue(p.errorsPerSecond, "per_second"),
    formatValue(p.lag, "records"),
    formatValue(p.p99Seconds, "seconds"),
    String(p.dlq),
  ]);
  const processes = table(["Process", "Kind", "State", "In", "Out", "Errors", "Lag", "p99", "DLQ"], rows, new Set([3, 4, 5, 6, 7, 8]));
  processes.id = "processes";
  document.getElementById("processes").replaceWith(processes);

  // One line per alert, state and severity (firing first, as the snapshot orders them); its instances folded under it.
  const groups = new Map();
  for (const a of s.alerts) {
    const key = `${a.name} ${a.state} ${a.severity}`;
    if (!groups.has(key)) groups.set(key, { ...a, instances: [] });
    groups.get(key).instances.push(a);
  }
  document.getElementById("alerts").replaceChildren(
    s.alerts.length === 0
      ? muted("None active.")
      : h(
          "ul",
          { class: "status-alerts" },
          [...groups.values()].map((g) =>
            h(
              "li",
              { "data-alert": g.name },
              h("span", { class: `sb-badge ${g.state === "firing" ? (g.severity === "critical" ? "bad" : "warn") : "info"}` }, g.state),
              " ",
              h("strong", {}, g.name),
              ` ${g.severity}`,
              g.instances.length === 1
                ? h("div", { class: "sb-muted" }, g.summary, g.since ? ` · since ${when(g.since)}` : "")
                : h("details", {}, h("summary", {}, `${g.instances.length} instances`), h("ul", {}, g.instances.map((a) => h("li", {}, a.summary)))),
            ),
          ),
        ),
  );

  document.getElementById("models").replaceChildren(
    "error" in s.models
      ? h("p", { class: "sb-error" }, s.models.error)
      : s.models.length === 0
        ? muted("None in production (`switchboard prepare` trains the defaults).")
        : table(["Model", "Version", "Stage", "Family"], s.models.map((m) => [m.model, h("code", {}, m.version), m.stage, m.family])),
  );

  const alarmed = s.drift.filter((d) => d.alarm);
  document.getElementById("drift").replaceChildren(
    s.drift.length === 0
      ? muted("Nothing measured yet: the drift processor reports a version's features once its first window closes.")
      : h(
          "div",
          {},
          h("p", {}, h("span", { class: `sb-badge ${alarmed.length ? "bad" : "ok"}` }, alarmed.length ? `${alarmed.length} in alarm` : "no alarm"), ` over ${s.drift.length} watched features`),
          alarmed.length ? table(["Model", "Feature", "Statistic", "Value", "Threshold"], alarmed.map((d) => [d.model, d.feature, d.statistic ?? "–", num(d.value), num(d.threshold)]), new Set([3, 4])) : null,
        ),
  );

  const queueTable = (queues) =>
    table(
      ["Department", "Queue", "Waiting", "Oldest"],
      queues.map((q) => [q.department, q.queue, formatValue(q.waiting, "records"), h("span", { class: q.overSla ? "sb-badge bad" : undefined }, formatValue(q.oldestSeconds, "seconds"))]),
      new Set([2, 3]),
    );
  const overSla = s.queues.filter((q) => q.overSla).length;
  const moreQueues = s.queues.slice(SHOWN_QUEUES);
  document.getElementById("queues").replaceChildren(
    s.queues.length === 0
      ? muted("No inquiry waiting for an agent.")
      : h(
          "div",
          {},
          h("p", {}, h("span", { class: `sb-badge ${overSla ? "bad" : "ok"}` }, overSla ? `${overSla} over the SLA` : "all within the SLA"), ` ${s.queues.length} queues with inquiries waiting`),
          queueTable(s.queues.slice(0, SHOWN_QUEUES)),
          moreQueues.length ? h("details", {}, h("summary", {}, `${moreQueues.length} more queues`), queueTable(moreQueues)) : null,
        ),
  );

  document.getElementById("dlq").replaceChildren(
    s.dlq.length === 0 ? muted("Empty.") : table(["Topic", "Processor", "Process", "Records"], s.dlq.map((d) => [h("code", {}, `${d.topic}.dlq`), d.processor, d.job, String(d.records)]), new Set([3])),
  );
}

function renderCharts(answer) {
  const charts = CHARTS.map((chart) => {
    const series = chart.lines.flatMap((line) => answer.series[line.query].series.map((s) => ({ name: line.name(s.labels), points: s.points })));
    const figure = lineChart({
      title: chart.title,
      unit: chart.unit,
      series,
      from: answer.from,
      to: answer.to,
      hideZero: chart.hideZero,
      empty: chart.empty ?? "No data in this range: is the pipeline running and scraped?",
    });
    figure.id = chart.id;
    return figure;
  });
  document.getElementById("charts").replaceChildren(...charts);
}

async function load() {
  const error = document.getElementById("status-error");
  const [snapshot, series] = await Promise.allSettled([api("/v1/status"), api(`/v1/series?names=${QUERIES.join(",")}&minutes=${range.value}`)]);
  if (snapshot.status === "fulfilled") renderSnapshot(snapshot.value);
  if (series.status === "fulfilled") renderCharts(series.value);
  const failure = [snapshot, series].find((r) => r.status === "rejected");
  error.textContent = failure ? failure.reason.message : "";
  error.hidden = !failure;
}

range.addEventListener("change", load);
await load();
setInterval(load, REFRESH_MS);
