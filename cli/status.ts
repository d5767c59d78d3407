import type { Command } from "commander";
import type { Config } from "../config/settings.js";
import { THRESHOLDS } from "../monitoring/alerts.js";
import { METRICS, bucket } from "../monitoring/metric-names.js";
import { registeredVersions } from "../models/registry.js";
import { resolveEndpoints } from "../stack/index.js";
import { createPool } from "../storage/postgres.js";
import { TOPOLOGIES, deployedTasks, type Topology } from "../streams/topology.js";
import { ReportedError, type CliContext } from "./context.js";

/**
 * `switchboard status [--watch [seconds]] [--json]`: one screen of the running deployment, from
 * Prometheus's HTTP API (PROMETHEUS_URL, else the local stack's): every process of the topology up
 * or down with its rates, errors, lag, p99 and DLQ counts, the models in production (from the
 * registry), the drift state and the active alerts.
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

/** What the command reads from Prometheus; a fake one in the rendering's unit test. */
export interface PrometheusReader {
  readonly url: string;
  query(expr: string): Promise<Sample[]>;
  alerts(): Promise<ActiveAlert[]>;
}

export class PrometheusUnreachableError extends Error {}

export function prometheusUrl(config: Pick<Config, "prometheusUrl" | "prometheusPort">): string {
  return (config.prometheusUrl ?? `http://127.0.0.1:${config.prometheusPort}`).replace(/\/+$/, "");
}

/** Prometheus's HTTP API over fetch: instant queries and the active alerts. */
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

const { runtime, connector, drift, queues } = METRICS;

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
export async function registryModels(config: Config): Promise<StatusSnapshot["models"]> {
  const pool = createPool(resolveEndpoints(config), "switchboard-status");
  try {
    const versions = await registeredVersions(pool, config.modelsDir, config.registrySchema);
    return versions
      .filter((v): v is typeof v & { stage: "production" | "shadow" } => v.stage === "production" || v.stage === "shadow")
      .map((v) => ({ model: v.model, version: v.version, family: v.family, stage: v.stage, since: v.createdAt.toISOString() }));
  } catch (error) {
    return { error: `the model registry could not be read: ${(error as Error).message}` };
  } finally {
    await pool.end().catch(() => undefined);
  }
}

// --- rendering ---------------------------------------------------------------------------------

const rate = (value: number | undefined) => (value === undefined ? "-" : value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));
const count = (value: number | undefined) => (value === undefined ? "-" : String(Math.round(value)));
export function duration(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0)} ms`;
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function columns(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number> = new Set()): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (rightAligned.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

const STATE_MARK: Record<ProcessStatus["state"], string> = { up: "UP", down: "DOWN", "partly down": "PARTLY DOWN", "not scraped": "NOT SCRAPED" };

export function renderStatus(snapshot: StatusSnapshot): string {
  const out: string[] = [];
  const down = snapshot.processes.filter((p) => p.state !== "up").length;
  out.push(
    `Switchboard status at ${snapshot.at} from ${snapshot.prometheus}: ${snapshot.processes.length - down} of ${snapshot.processes.length} processes up` +
      `, received → response p95 ${duration(snapshot.endToEndP95Seconds)}`,
  );
  out.push("");
  out.push(
    columns(
      ["process", "kind", "state", "in/s", "out/s", "errors/s", "lag", "p99", "DLQ"],
      snapshot.processes.map((p) => [
        p.name,
        p.kind,
        p.instances > 1 ? `${STATE_MARK[p.state]} (${p.instances})` : STATE_MARK[p.state],
        rate(p.inPerSecond),
        rate(p.outPerSecond),
        rate(p.errorsPerSecond),
        count(p.lag),
        duration(p.p99Seconds),
        String(p.dlq),
      ]),
      new Set([3, 4, 5, 6, 7, 8]),
    ),
  );
  out.push("(connectors: in = requests, out = records Kafka acknowledged, errors = 5xx answers, p99 = answering)");
  out.push("");
  if (snapshot.dlq.length === 0) out.push("DLQ: empty");
  else {
    out.push("DLQ (records since each process started; `switchboard dlq list <topic>`):");
    out.push(columns(["topic", "processor", "process", "records"], snapshot.dlq.map((d) => [`${d.topic}.dlq`, d.processor, d.job, String(d.records)]), new Set([3])).replace(/^/gm, "  "));
  }
  out.push("");
  if ("error" in snapshot.models) out.push(`Models: ${snapshot.models.error}`);
  else if (snapshot.models.length === 0) out.push("Models: none in production (`switchboard prepare` trains the defaults)");
  else {
    out.push("Models in production:");
    out.push(columns(["model", "version", "stage", "family", "since"], snapshot.models.map((m) => [m.model, m.version, m.stage, m.family, m.since.slice(0, 19).replace("T", " ")])).replace(/^/gm, "  "));
  }
  out.push("");
  const alarmed = snapshot.drift.filter((d) => d.alarm);
  if (snapshot.drift.length === 0) out.push("Drift: nothing measured yet (the drift processor reports a model version's features once its first window closes)");
  else {
    out.push(`Drift: ${alarmed.length === 0 ? "no alarm" : `${alarmed.length} alarm(s)`} over ${snapshot.drift.length} watched feature(s)`);
    const shown = alarmed.length > 0 ? snapshot.drift.filter((d) => d.alarm || (d.value !== undefined && d.threshold !== undefined && d.value > d.threshold)) : [];
    if (shown.length > 0) {
      const num = (v: number | undefined) => (v === undefined ? "-" : v.toPrecision(3));
      out.push(columns(["model", "feature", "statistic", "value", "threshold", "state"], shown.map((d) => [d.model, d.feature, d.statistic ?? "-", num(d.value), num(d.threshold), d.alarm ? "DRIFT" : "above"]), new Set([3, 4])).replace(/^/gm, "  "));
    }
  }
  out.push("");
  const sla = duration(THRESHOLDS.queueSlaSeconds);
  if (snapshot.queues.length === 0) out.push("Queues: no inquiry waiting for an agent (or the drift processor, which measures them, is not running)");
  else {
    const over = snapshot.queues.filter((q) => q.overSla).length;
    out.push(`Queues waiting for an agent (SLA ${sla}${over > 0 ? `, ${over} over it` : ""}):`);
    out.push(columns(["department", "queue", "waiting", "oldest", ""], snapshot.queues.map((q) => [q.department, q.queue, count(q.waiting), duration(q.oldestSeconds), q.overSla ? "OVER SLA" : ""]), new Set([2, 3])).replace(/^/gm, "  "));
  }
  out.push("");
  if (snapshot.alerts.length === 0) out.push("Alerts: none active");
  else {
    const firing = snapshot.alerts.filter((a) => a.state === "firing").length;
    out.push(`Alerts: ${firing} firing, ${snapshot.alerts.length - firing} pending (runbooks: monitoring/runbooks/<alert>.md)`);
    out.push(columns(["alert", "severity", "state", "summary"], snapshot.alerts.map((a) => [a.name, a.severity, a.state, a.summary])).replace(/^/gm, "  "));
  }
  return out.join("\n");
}

// --- the command -------------------------------------------------------------------------------

/** JSON for scripts: a figure Prometheus has no series for is null, not left out. */
export const snapshotJson = (snapshot: StatusSnapshot, indent?: number) => JSON.stringify(snapshot, (_key, value: unknown) => (value === undefined ? null : value), indent);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function statusCommand(program: Command, { config }: CliContext): void {
  program
    .command("status")
    .description("one screen from Prometheus: every process up or down, rates, errors, lag, p99, DLQ counts, models in production, drift state, active alerts")
    .option("--watch [seconds]", "redraw every so many seconds (default 5) until Ctrl-C")
    .option("--json", "print the snapshot as JSON (one object; with --watch, one line per refresh)", false)
    .action(async ({ watch, json }: { watch?: string | boolean; json: boolean }) => {
      const reader = prometheusReader(prometheusUrl(config));
      const models = () => registryModels(config);
      const intervalSeconds = watch === undefined || watch === false ? undefined : watch === true ? 5 : Number(watch);
      if (intervalSeconds !== undefined && !(intervalSeconds > 0)) throw new ReportedError(`--watch takes a positive number of seconds, not "${String(watch)}"`);
      if (intervalSeconds === undefined) {
        try {
          const snapshot = await collectStatus(reader, models);
          console.log(json ? snapshotJson(snapshot, 2) : renderStatus(snapshot));
        } catch (error) {
          throw new ReportedError((error as Error).message);
        }
        return;
      }
      for (;;) {
        let screen: string;
        try {
          const snapshot = await collectStatus(reader, models);
          screen = json ? snapshotJson(snapshot) : renderStatus(snapshot);
        } catch (error) {
          screen = json ? JSON.stringify({ error: (error as Error).message, at: new Date().toISOString() }) : `${new Date().toISOString()}  ${(error as Error).message}`;
        }
        if (json) console.log(screen);
        else process.stdout.write(`${process.stdout.isTTY ? "\x1b[H\x1b[2J" : "\n"}${screen}\n\n(every ${intervalSeconds} s; Ctrl-C to stop)\n`);
        await sleep(intervalSeconds * 1000);
      }
    });
}
