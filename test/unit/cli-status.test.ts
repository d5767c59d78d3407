import { describe, expect, it } from "vitest";
import { renderStatus, snapshotJson } from "../../cli/status.js";
import { STATUS_QUERIES, collectStatus, prometheusUrl, type ActiveAlert, type PrometheusReader, type Sample } from "../../monitoring/status.js";

const s = (metric: Record<string, string>, value: number): Sample => ({ metric, value });

/** Fixed query results: the chain busy, one sink down, the API serving with some 503s, a drift alarm. */
const RESULTS: { [K in keyof typeof STATUS_QUERIES]: Sample[] } = {
  up: [
    s({ job: "triage", instance: "127.0.0.1:9400" }, 1),
    s({ job: "archive", instance: "127.0.0.1:9407" }, 0),
    s({ job: "feedback", instance: "127.0.0.1:9409" }, 1),
    s({ job: "drift", instance: "127.0.0.1:9410" }, 1),
    s({ job: "retrain", instance: "127.0.0.1:9412" }, 1),
    s({ job: "search", instance: "127.0.0.1:9408" }, 1),
    s({ job: "api", instance: "127.0.0.1:8080" }, 1),
    s({ job: "api", instance: "10.0.0.2:8080" }, 1),
    s({ job: "email", instance: "127.0.0.1:9411" }, 0),
    s({ job: "email", instance: "10.0.0.2:9411" }, 1),
    // chat: no series (Prometheus does not scrape it)
  ],
  in: [s({ job: "triage" }, 98.25), s({ job: "feedback" }, 292.5), s({ job: "search" }, 0)],
  out: [s({ job: "triage" }, 687.75), s({ job: "drift" }, 0.0167)],
  errors: [s({ job: "triage" }, 0.5)],
  lag: [s({ job: "triage" }, 1234), s({ job: "feedback" }, 0)],
  p99: [s({ job: "triage" }, 0.0421), s({ job: "feedback" }, Number.NaN)],
  dlq: [
    s({ job: "triage", processor: "classify", topic: "inquiries.cleaned" }, 3),
    s({ job: "triage", processor: "clean", topic: "inquiries.received" }, 2),
    s({ job: "search", processor: "search", topic: "inquiries.routed" }, 0),
  ],
  endToEnd: [s({}, 2.3456)],
  requests: [s({ job: "api" }, 101.5), s({ job: "email" }, 0.2)],
  accepted: [s({ job: "api" }, 99)],
  serverErrors: [s({ job: "api" }, 2.5)],
  requestP99: [s({ job: "api" }, 0.0089), s({ job: "email" }, 0.5)],
  driftStatistic: [
    s({ model: "intent@3", feature: "label", statistic: "psi" }, 0.4123),
    s({ model: "intent@3", feature: "confidence", statistic: "ks" }, 0.05),
  ],
  driftThreshold: [
    s({ model: "intent@3", feature: "label", statistic: "psi" }, 0.2),
    s({ model: "intent@3", feature: "confidence", statistic: "ks" }, 0.1),
  ],
  driftAlarm: [s({ model: "intent@3", feature: "label" }, 1), s({ model: "intent@3", feature: "confidence" }, 0)],
  queueWaiting: [s({ department: "billing", queue: "tier2" }, 3), s({ department: "sales", queue: "general" }, 1)],
  queueOldest: [s({ department: "billing", queue: "tier2" }, 15_000), s({ department: "sales", queue: "general" }, 600)],
};

const ALERTS: ActiveAlert[] = [
  { labels: { alertname: "DLQGrowing", severity: "warning", job: "triage" }, annotations: { summary: "classify sent 3 record(s) of inquiries.cleaned to its DLQ in 15 minutes" }, state: "firing", activeAt: "2026-12-03T10:00:00Z" },
  { labels: { alertname: "ProcessDown", severity: "warning", job: "archive" }, annotations: { summary: "processor archive is down" }, state: "pending" },
  { labels: { alertname: "ProcessDown", severity: "critical", job: "email" }, annotations: {}, state: "firing" },
];

function fakeReader(results = RESULTS, alerts = ALERTS): PrometheusReader & { asked: string[] } {
  const byExpr = new Map<string, Sample[]>(Object.entries(STATUS_QUERIES).map(([key, expr]) => [expr, results[key as keyof typeof results]]));
  const asked: string[] = [];
  return {
    url: "http://prometheus.test:9090",
    asked,
    async query(expr) {
      asked.push(expr);
      const samples = byExpr.get(expr);
      if (!samples) throw new Error(`unexpected query ${expr}`);
      return samples;
    },
    async range() {
      throw new Error("the status screen makes no range query");
    },
    async alerts() {
      return alerts;
    },
  };
}

const MODELS = async () => [
  { model: "intent", version: "20261203T151546Z-head-dcc2affc", family: "head", stage: "production" as const, since: "2026-12-03T15:15:47.000Z" },
  { model: "intent", version: "20261203T161546Z-head-0123abcd", family: "head", stage: "shadow" as const, since: "2026-12-03T16:15:46.000Z" },
];
const NOW = () => new Date("2026-12-03T16:30:00Z");

describe("switchboard status", () => {
  it("asks Prometheus each query once, metric names from their definitions", async () => {
    const reader = fakeReader();
    await collectStatus(reader, MODELS, NOW);
    expect([...reader.asked].sort()).toEqual(Object.values(STATUS_QUERIES).sort());
    expect(STATUS_QUERIES.dlq).toBe("sum by (job, processor, topic) (switchboard_dlq_records_total)");
  });

  it("renders every process of the topology, the DLQs, the models, the drift state and the alerts from fixed query results", async () => {
    const screen = renderStatus(await collectStatus(fakeReader(), MODELS, NOW));
    expect(screen.split("\n")).toEqual([
      "Switchboard status at 2026-12-03T16:30:00.000Z from http://prometheus.test:9090: 6 of 9 processes up, received → response p95 2.35 s",
      "",
      "process   kind       state            in/s  out/s  errors/s   lag     p99  DLQ",
      "triage    chain      UP               98.3    688      0.50  1234   42 ms    5",
      "archive   processor  DOWN                -      -         -     -       -    0",
      "feedback  processor  UP                293      -      0.00     0       -    0",
      "drift     processor  UP                  -   0.02         -     -       -    0",
      "retrain   processor  UP                  -      -         -     -       -    0",
      "search    processor  UP               0.00      -      0.00     -       -    0",
      "api       connector  UP (2)            102   99.0      2.50     -  8.9 ms    0",
      "email     connector  PARTLY DOWN (2)  0.20      -      0.00     -  500 ms    0",
      "chat      connector  NOT SCRAPED         -      -         -     -       -    0",
      "(connectors: in = requests, out = records Kafka acknowledged, errors = 5xx answers, p99 = answering)",
      "",
      "DLQ (records since each process started; `switchboard dlq list <topic>`):",
      "  topic                   processor  process  records",
      "  inquiries.cleaned.dlq   classify   triage         3",
      "  inquiries.received.dlq  clean      triage         2",
      "",
      "Models in production:",
      "  model   version                         stage       family  since",
      "  intent  20261203T151546Z-head-dcc2affc  production  head    2026-12-03 15:15:47",
      "  intent  20261203T161546Z-head-0123abcd  shadow      head    2026-12-03 16:15:46",
      "",
      "Drift: 1 alarm(s) over 2 watched feature(s)",
      "  model     feature  statistic  value  threshold  state",
      "  intent@3  label    psi        0.412      0.200  DRIFT",
      "",
      "Queues waiting for an agent (SLA 4.0 h, 1 over it):",
      "  department  queue    waiting    oldest",
      "  billing     tier2          3     4.2 h  OVER SLA",
      "  sales       general        1  10.0 min",
      "",
      "Alerts: 2 firing, 1 pending (runbooks: monitoring/runbooks/<alert>.md)",
      "  alert        severity  state    summary",
      "  ProcessDown  critical  firing   job=email severity=critical",
      "  DLQGrowing   warning   firing   classify sent 3 record(s) of inquiries.cleaned to its DLQ in 15 minutes",
      "  ProcessDown  warning   pending  processor archive is down",
    ]);
  });

  it("says so when nothing is measured, nothing is in production and no alert is active", async () => {
    const empty = Object.fromEntries(Object.keys(STATUS_QUERIES).map((k) => [k, []])) as unknown as typeof RESULTS;
    const screen = renderStatus(await collectStatus(fakeReader(empty, []), async () => ({ error: "the model registry could not be read: connect ECONNREFUSED 127.0.0.1:5433" }), NOW));
    expect(screen).toContain("0 of 9 processes up, received → response p95 -");
    expect(screen).toMatch(/^chat\s+connector\s+NOT SCRAPED\s/m);
    expect(screen).toContain("DLQ: empty");
    expect(screen).toContain("Models: the model registry could not be read: connect ECONNREFUSED 127.0.0.1:5433");
    expect(screen).toContain("Drift: nothing measured yet");
    expect(screen).toContain("Queues: no inquiry waiting for an agent");
    expect(screen).toContain("Alerts: none active");
  });

  it("--json: every figure, null where Prometheus has none", async () => {
    const snapshot = JSON.parse(snapshotJson(await collectStatus(fakeReader(), MODELS, NOW))) as { processes: Record<string, unknown>[]; alerts: unknown[]; drift: unknown[] };
    expect(snapshot.processes.find((p) => p["name"] === "triage")).toEqual({ name: "triage", kind: "chain", state: "up", instances: 1, inPerSecond: 98.25, outPerSecond: 687.75, errorsPerSecond: 0.5, lag: 1234, p99Seconds: 0.0421, dlq: 5 });
    expect(snapshot.processes.find((p) => p["name"] === "chat")).toMatchObject({ state: "not scraped", instances: 0, inPerSecond: null, lag: null });
    expect(snapshot.alerts).toHaveLength(3);
    expect(snapshot.drift).toEqual([
      { model: "intent@3", feature: "confidence", statistic: "ks", value: 0.05, threshold: 0.1, alarm: false },
      { model: "intent@3", feature: "label", statistic: "psi", value: 0.4123, threshold: 0.2, alarm: true },
    ]);
  });

  it("reads the local stack's Prometheus unless PROMETHEUS_URL says otherwise", () => {
    expect(prometheusUrl({ prometheusUrl: undefined, prometheusPort: 9090 })).toBe("http://127.0.0.1:9090");
    expect(prometheusUrl({ prometheusUrl: "https://prometheus.internal.example/", prometheusPort: 9090 })).toBe("https://prometheus.internal.example");
  });
});
