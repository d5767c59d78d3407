import type pg from "pg";
import type { Config } from "../config/settings.js";
import { registeredVersions } from "../models/registry.js";
import { TOPOLOGIES, deployedTasks, type Topology } from "../streams/topology.js";
import { THRESHOLDS, answeringChains } from "./alerts.js";
import { METRICS, bucket } from "./metric-names.js";

/**
 * What `switchboard status` (cli/status.ts) and the API's status page (connectors/api/status.ts)
 * read from Prometheus's HTTP API, in one place: the instant queries of the snapshot (every
 * process of the topology up or down with its rates, errors, lag, p99 and DLQ counts, the drift
 * state, the queues, the active alerts; the models in production from the registry) and the
 * named range queries the pages chart (SERIES). Every metric name comes from its definition
 * (monitoring/metric-names.ts); the API runs these queries and no other.
 */

/** One series of an instant query's vector result. */
export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

/** An alert as Prometheus's /api/v1/alerts lists it (pending or firing). */
export interface ActiveAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly state: string;
  readonly activeAt?: string;
}

/** One series of a range query's matrix result: [unix seconds, value] points, oldest first. */
export interface RangeSeries {
  readonly metric: Readonly<Record<string, string>>;
  readonly points: readonly (readonly [number, number])[];
}

export interface Range {
  /** Unix seconds. */
  readonly start: number;
  readonly end: number;
  readonly stepSeconds: number;
}

/** What the status screen and page read from Prometheus; a fake one in the rendering's unit test. */
export interface PrometheusReader {
  readonly url: string;
  query(expr: string): Promise<Sample[]>;
  range(expr: string, range: Range): Promise<RangeSeries[]>;
  alerts(): Promise<ActiveAlert[]>;
}

export class PrometheusUnreachableError extends Error {}

export function prometheusUrl(config: Pick<Config, "prometheusUrl" | "prometheusPort">): string {
  return (config.prometheusUrl ?? `http://127.0.0.1:${config.prometheusPort}`).replace(/\/+$/, "");
}

/** Prometheus's HTTP API over fetch: instant and range queries, and the active alerts. */
export function prometheusReader(url: string, timeoutMs = 5000): PrometheusReader {
  const get = async (pathAndQuery: string): Promise<unknown> => {
    let response: Response;
    try {
      response = await fetch(`${url}${pathAndQuery}`, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new PrometheusUnreachableError(
        `Prometheus is not reachable at ${url} (${cause?.code ?? cause?.message ?? (error as Error).message}): start the local stack's (\`switchboard stack up prometheus\`) or point PROMETHEUS_URL at yours`,
      );
    }
    const body = (await response.json().catch(() => undefined)) as { status?: string; data?: unknown; error?: string } | undefined;
    if (!response.ok || body?.status !== "success") {
      throw new Error(`Prometheus at ${url} answered ${response.status} to ${pathAndQuery.split("?")[0]}: ${body?.error ?? "no JSON body"}`);
    }
    return body.data;
  };
  return {
    url,
    async query(expr) {
      const data = (await get(`/api/v1/query?query=${encodeURIComponent(expr)}`)) as { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
      if (data.resultType !== "vector") throw new Error(`expected a vector from ${expr}, got ${data.resultType}`);
      return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async range(expr, { start, end, stepSeconds }) {
      const data = (await get(`/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${start}&end=${end}&step=${stepSeconds}`)) as {
        resultType: string;
        result: { metric: Record<string, string>; values: [number, string][] }[];
      };
      if (data.resultType !== "matrix") throw new Error(`expected a matrix from ${expr}, got ${data.resultType}`);
      return data.result.map((r) => ({ metric: r.metric, points: r.values.map(([t, v]) => [t, Number(v)] as const) }));
    },
    async alerts() {
      return ((await get("/api/v1/alerts")) as { alerts: ActiveAlert[] }).alerts;
    },
  };
}

export type ProcessKind = "chain" | "processor" | "connector";

export interface ProcessStatus {
  readonly name: string;
  readonly kind: ProcessKind;
  /** `up` of its scrape job: every instance up, some down, or not scraped at all (Prometheus does not know the job). */
  readonly state: "up" | "down" | "partly down" | "not scraped";
  readonly instances: number;
  /** Records consumed a second (a connector: requests answered). */
  readonly inPerSecond: number | undefined;
  /** Records produced a second (a connector: records Kafka acknowledged). */
  readonly outPerSecond: number | undefined;
  /** Processing errors a second (a connector: 5xx answers). */
  readonly errorsPerSecond: number | undefined;
  readonly lag: number | undefined;
  /** p99 of processing a record (a connector: answering a request), seconds. */
  readonly p99Seconds: number | undefined;
  /** Records sent to a DLQ since the process started. */
  readonly dlq: number;
}

export interface DlqCount {
  readonly job: string;
  readonly processor: string;
  readonly topic: string;
  readonly records: number;
}

export interface ModelInProduction {
  readonly model: string;
  readonly version: string;
  readonly family: string;
  readonly stage: "production" | "shadow";
  readonly since: string;
}

export interface DriftState {
  readonly model: string;
  readonly feature: string;
  readonly statistic: string | undefined;
  readonly value: number | undefined;
  readonly threshold: number | undefined;
  readonly alarm: boolean;
}

export interface QueueState {
  readonly department: string;
  readonly queue: string;
  /** Inquiries waiting for an agent (sent to review or escalated, no agent reply). */
  readonly waiting: number | undefined;
  readonly oldestSeconds: number | undefined;
  /** The oldest waits longer than the SLA the QueueSLABreach alert holds every queue to. */
  readonly overSla: boolean;
}

export interface StatusSnapshot {
  readonly prometheus: string;
  readonly at: string;
  readonly processes: readonly ProcessStatus[];
  readonly endToEndP95Seconds: number | undefined;
  readonly dlq: readonly DlqCount[];
  /** The registry's production and shadow versions, or why they could not be read. */
  readonly models: readonly ModelInProduction[] | { readonly error: string };
  readonly drift: readonly DriftState[];
  readonly queues: readonly QueueState[];
  readonly alerts: readonly { readonly name: string; readonly severity: string; readonly state: string; readonly summary: string; readonly since: string | undefined }[];
}

const { runtime, connector, drift, queues, quality } = METRICS;

/** The queries, each keyed by what it gives; every name from the metric definitions. */
export const STATUS_QUERIES = {
  up: "up",
  in: `sum by (job) (rate(${runtime.recordsIn}[1m]))`,
  out: `sum by (job) (rate(${runtime.recordsOut}[1m]))`,
  errors: `sum by (job) (rate(${runtime.errors}[1m]))`,
  lag: `sum by (job) (${runtime.consumerLag})`,
  p99: `histogram_quantile(0.99, sum by (job, le) (rate(${bucket(runtime.processingSeconds)}[1m])))`,
  dlq: `sum by (job, processor, topic) (${runtime.dlqRecords})`,
  endToEnd: `histogram_quantile(0.95, sum by (le) (rate(${bucket(runtime.recordAgeSeconds)}{topic="inquiries.received"}[5m])))`,
  requests: `sum by (job) (rate(${connector.requests}[1m]))`,
  accepted: `sum by (job) (rate(${connector.accepted}[1m]))`,
  serverErrors: `sum by (job) (rate(${connector.requests}{status=~"5.."}[1m]))`,
  requestP99: `histogram_quantile(0.99, sum by (job, le) (rate(${bucket(connector.requestSeconds)}[1m])))`,
  driftStatistic: `max by (model, feature, statistic) (${drift.value})`,
  driftThreshold: `max by (model, feature, statistic) (${drift.threshold})`,
  driftAlarm: `max by (model, feature) (${drift.alarm})`,
  queueWaiting: `max by (department, queue) (${queues.open})`,
  queueOldest: `max by (department, queue) (${queues.oldestSeconds})`,
} as const;

/** The chains that answer (read inquiries.received, write inquiries.responses): their figures are the pipeline's. */
const ANSWERING = `job=~${JSON.stringify(TOPOLOGIES.flatMap(answeringChains).join("|"))}`;
/** The registry model of a series labelled model="name@version", as label name. */
const byName = (expr: string) => `label_replace(${expr}, "name", "$1", "model", "([^@]*)@.*")`;

/** How a page shows the values: a rate a second, a duration, a count, a fraction (as %), a ratio (×). */
export type SeriesUnit = "per_second" | "seconds" | "records" | "fraction" | "ratio";

export interface SeriesQuery {
  readonly title: string;
  readonly unit: SeriesUnit;
  readonly expr: string;
}

/**
 * The series the status page and the console's model page chart, by name: the API runs these
 * range queries (GET /v1/series?names=) and no other, so a page never sends PromQL.
 */
export const SERIES = {
  received: { title: "Inquiries received", unit: "per_second", expr: `sum(rate(${runtime.recordsIn}{${ANSWERING}, topic="inquiries.received"}[1m]))` },
  answered: { title: "Inquiries answered", unit: "per_second", expr: `sum(rate(${runtime.recordsOut}{${ANSWERING}, topic="inquiries.responses"}[1m]))` },
  end_to_end_p95: {
    title: "Received → response p95",
    unit: "seconds",
    expr: `histogram_quantile(0.95, sum by (le) (rate(${bucket(runtime.recordAgeSeconds)}{${ANSWERING}, topic="inquiries.received"}[1m])))`,
  },
  end_to_end_p99: {
    title: "Received → response p99",
    unit: "seconds",
    expr: `histogram_quantile(0.99, sum by (le) (rate(${bucket(runtime.recordAgeSeconds)}{${ANSWERING}, topic="inquiries.received"}[1m])))`,
  },
  lag: { title: "Consumer lag by process", unit: "records", expr: `sum by (job) (${runtime.consumerLag})` },
  errors: { title: "Processing errors by process", unit: "per_second", expr: `sum by (job) (rate(${runtime.errors}[1m]))` },
  server_errors: { title: "5xx answers by connector", unit: "per_second", expr: `sum by (job) (rate(${connector.requests}{status=~"5.."}[1m]))` },
  dlq: { title: "Records sent to a DLQ by topic (since each process started)", unit: "records", expr: `sum by (topic) (${runtime.dlqRecords})` },
  predictions: { title: "Predictions by label", unit: "per_second", expr: `sum by (name, label) (rate(${drift.predictions}[1m]))` },
  confidence_mean: {
    title: "Mean confidence",
    unit: "fraction",
    expr: `sum by (name) (rate(${drift.confidence}_sum[2m])) / sum by (name) (rate(${drift.confidence}_count[2m]))`,
  },
  confidence_p10: { title: "Confidence, 10th percentile", unit: "fraction", expr: `histogram_quantile(0.1, sum by (name, le) (rate(${bucket(drift.confidence)}[2m])))` },
  accuracy: { title: "Measured accuracy (production)", unit: "fraction", expr: `max by (name, window) (${quality.accuracy}{stage="production"})` },
  estimated_accuracy: { title: "Estimated accuracy (production)", unit: "fraction", expr: `max by (name, window) (${quality.estimatedAccuracy}{stage="production"})` },
  drift_ratio: {
    title: "Drift statistic ÷ threshold (above 1: drifting)",
    unit: "ratio",
    expr: `max by (name, feature) (${byName(`${drift.value} / ${drift.threshold}`)})`,
  },
} as const satisfies Record<string, SeriesQuery>;

export type SeriesName = keyof typeof SERIES;

type Results = { readonly [K in keyof typeof STATUS_QUERIES]: readonly Sample[] };

/** A finite number, or undefined (NaN from a quantile of no observations, ±Inf). */
const finite = (value: number | undefined) => (value !== undefined && Number.isFinite(value) ? value : undefined);

function byJob(samples: readonly Sample[]): Map<string, number> {
  return new Map(samples.filter((s) => s.metric["job"] !== undefined).map((s) => [s.metric["job"]!, s.value]));
}

/** Every process a deployment of the topology runs, as Prometheus scrapes them (monitoring/scrape-config.ts). */
function processesOf(topologies: readonly Topology[]): { name: string; kind: ProcessKind }[] {
  return topologies.flatMap((topology) => [
    ...deployedTasks(topology).chains.map((c) => ({ name: c.name, kind: "chain" as const })),
    ...deployedTasks(topology).processors.map((p) => ({ name: p.name, kind: "processor" as const })),
    ...topology.connectors.map((c) => ({ name: c.name, kind: "connector" as const })),
  ]);
}

/** The snapshot from the queries' results, the alerts and the registry's versions. */
export function buildSnapshot(
  prometheus: string,
  results: Results,
  alerts: readonly ActiveAlert[],
  models: StatusSnapshot["models"],
  at: Date,
  topologies: readonly Topology[] = TOPOLOGIES,
): StatusSnapshot {
  const dlq = results.dlq
    .map((s) => ({ job: s.metric["job"] ?? "", processor: s.metric["processor"] ?? "", topic: s.metric["topic"] ?? "", records: s.value }))
    .filter((d) => d.records > 0)
    .sort((a, b) => a.job.localeCompare(b.job) || a.processor.localeCompare(b.processor) || a.topic.localeCompare(b.topic));
  const maps = Object.fromEntries(Object.entries(results).map(([key, samples]) => [key, byJob(samples)])) as { [K in keyof Results]: Map<string, number> };
  const processes = processesOf(topologies).map(({ name, kind }): ProcessStatus => {
    const ups = results.up.filter((s) => s.metric["job"] === name);
    const upCount = ups.filter((s) => s.value === 1).length;
    const state = ups.length === 0 ? "not scraped" : upCount === ups.length ? "up" : upCount === 0 ? "down" : "partly down";
    const connectorKind = kind === "connector";
    return {
      name,
      kind,
      state,
      instances: ups.length,
      inPerSecond: finite((connectorKind ? maps.requests : maps.in).get(name)),
      outPerSecond: finite((connectorKind ? maps.accepted : maps.out).get(name)),
      errorsPerSecond: finite(connectorKind ? (maps.serverErrors.get(name) ?? (maps.requests.has(name) ? 0 : undefined)) : maps.errors.get(name) ?? (maps.in.has(name) ? 0 : undefined)),
      lag: finite(maps.lag.get(name)),
      p99Seconds: finite((connectorKind ? maps.requestP99 : maps.p99).get(name)),
      dlq: dlq.filter((d) => d.job === name).reduce((sum, d) => sum + d.records, 0),
    };
  });
  const key = (m: Readonly<Record<string, string>>) => `${m["model"]}\u0000${m["feature"]}`;
  const alarms = new Map(results.driftAlarm.map((s) => [key(s.metric), s.value === 1]));
  const thresholds = new Map(results.driftThreshold.map((s) => [`${key(s.metric)}\u0000${s.metric["statistic"]}`, s.value]));
  const driftStates = new Map<string, DriftState>();
  for (const s of results.driftStatistic) {
    driftStates.set(key(s.metric), {
      model: s.metric["model"] ?? "",
      feature: s.metric["feature"] ?? "",
      statistic: s.metric["statistic"],
      value: finite(s.value),
      threshold: finite(thresholds.get(`${key(s.metric)}\u0000${s.metric["statistic"]}`)),
      alarm: alarms.get(key(s.metric)) ?? false,
    });
  }
  for (const s of results.driftAlarm) {
    if (!driftStates.has(key(s.metric))) {
      driftStates.set(key(s.metric), { model: s.metric["model"] ?? "", feature: s.metric["feature"] ?? "", statistic: undefined, value: undefined, threshold: undefined, alarm: s.value === 1 });
    }
  }
  const queueKey = (m: Readonly<Record<string, string>>) => `${m["department"] ?? ""}\u0000${m["queue"] ?? ""}`;
  const waiting = new Map(results.queueWaiting.map((q) => [queueKey(q.metric), q.value]));
  const oldest = new Map(results.queueOldest.map((q) => [queueKey(q.metric), q.value]));
  const queueStates = [...new Map([...results.queueWaiting, ...results.queueOldest].map((q) => [queueKey(q.metric), q.metric])).values()]
    .map((m): QueueState => {
      const oldestSeconds = finite(oldest.get(queueKey(m)));
      return { department: m["department"] ?? "", queue: m["queue"] ?? "", waiting: finite(waiting.get(queueKey(m))), oldestSeconds, overSla: (oldestSeconds ?? 0) > THRESHOLDS.queueSlaSeconds };
    })
    .sort((a, b) => (b.oldestSeconds ?? 0) - (a.oldestSeconds ?? 0) || a.department.localeCompare(b.department) || a.queue.localeCompare(b.queue));
  const severityOrder = (severity: string) => (severity === "critical" ? 0 : severity === "warning" ? 1 : 2);
  return {
    prometheus,
    at: at.toISOString(),
    processes,
    endToEndP95Seconds: finite(results.endToEnd[0]?.value),
    dlq,
    models,
    drift: [...driftStates.values()].sort((a, b) => a.model.localeCompare(b.model) || a.feature.localeCompare(b.feature)),
    queues: queueStates,
    alerts: alerts
      .map((a) => ({
        name: a.labels["alertname"] ?? "",
        severity: a.labels["severity"] ?? "",
        state: a.state,
        summary: a.annotations["summary"] ?? Object.entries(a.labels).filter(([k]) => k !== "alertname").sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(" "),
        since: a.activeAt,
      }))
      .sort((a, b) => (a.state === b.state ? 0 : a.state === "firing" ? -1 : 1) || severityOrder(a.severity) - severityOrder(b.severity) || a.name.localeCompare(b.name) || a.summary.localeCompare(b.summary)),
  };
}

/** Reads everything the screen shows; the registry through `models` (undefined: not asked). */
export async function collectStatus(reader: PrometheusReader, models: () => Promise<StatusSnapshot["models"]>, now = () => new Date()): Promise<StatusSnapshot> {
  const entries = Object.entries(STATUS_QUERIES) as [keyof typeof STATUS_QUERIES, string][];
  // The first query tells whether Prometheus answers at all; the rest go together.
  const up = await reader.query(STATUS_QUERIES.up);
  const [rest, alerts, versions] = await Promise.all([
    Promise.all(entries.filter(([key]) => key !== "up").map(async ([key, expr]) => [key, await reader.query(expr)] as const)),
    reader.alerts(),
    models(),
  ]);
  const results = Object.fromEntries([["up", up], ...rest]) as unknown as Results;
  return buildSnapshot(reader.url, results, alerts, versions, now());
}

/** Production and shadow versions from the model registry (models/registry.ts, what the serving processes read). */
export async function registryModels(pool: pg.Pool, { modelsDir, registrySchema }: Pick<Config, "modelsDir" | "registrySchema">): Promise<StatusSnapshot["models"]> {
  try {
    const versions = await registeredVersions(pool, modelsDir, registrySchema);
    return versions
      .filter((v): v is typeof v & { stage: "production" | "shadow" } => v.stage === "production" || v.stage === "shadow")
      .map((v) => ({ model: v.model, version: v.version, family: v.family, stage: v.stage, since: v.createdAt.toISOString() }));
  } catch (error) {
    return { error: `the model registry could not be read: ${(error as Error).message}` };
  }
}
