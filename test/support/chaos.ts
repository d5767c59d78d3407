import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import pg from "pg";
import { loadConfig } from "../../config/settings.js";
import { resolveEndpoints } from "../../stack/index.js";
import { preparePipeline, runnablesOf, startPipeline, type Pipeline } from "../e2e/pipeline.js";
import { freePort } from "./api.js";
import { answeredOnce, inquirySender, offerLoad, trackResponses, type OfferedLoad, type ResponseTracker } from "./load.js";
import { activeAlerts, cleanUpOnInterrupt, copyModelRegistry, startPrivateStack, type PrivateStack } from "./private-stack.js";

/**
 * Faults under load on a private stack (test/support/private-stack.ts): the chained pipeline as
 * `switchboard up` deploys it, inquiries offered at a fixed rate, a Prometheus of its own on the
 * committed alert rules. Each fault is injected, held, healed; meanwhile the alert that should
 * catch it is watched in Prometheus (firing, then resolved), and the pipeline must drain what
 * piled up by itself. At the end every inquiry offered must have exactly one response on
 * inquiries.responses and one archived row.
 */

export type FaultName = "postgres" | "elasticsearch" | "redis" | "schema-registry" | "kafka" | "kill-triage";

export const ALL_FAULTS: readonly FaultName[] = ["postgres", "elasticsearch", "redis", "schema-registry", "kafka", "kill-triage"];

interface FaultPlan {
  /** The alert that must fire while the fault lasts, and the labels it fires with. */
  readonly alert: string;
  readonly labels: Readonly<Record<string, string>>;
  inject(): Promise<void>;
  heal(): Promise<void>;
}

export interface FaultResult {
  readonly fault: FaultName;
  readonly alert: string;
  readonly heldSeconds: number;
  /** Fault injected → alert firing (undefined: it did not fire). */
  readonly detectSeconds?: number;
  /** Fault healed → alert no longer active. */
  readonly resolveSeconds?: number;
  /** Fault healed → every inquiry offered before the heal answered. */
  readonly recoverSeconds?: number;
  /** Inquiries offered while the fault lasted. */
  readonly offeredDuring: number;
  /** The longest received → response latency of an inquiry offered during the fault, ms. */
  readonly worstLatencyMs?: number;
  /** Other alerts that fired meanwhile (consequences of the fault). */
  readonly alsoFired: readonly string[];
}

export interface ChaosReport {
  readonly rate: number;
  readonly faultSeconds: number;
  readonly faults: readonly FaultResult[];
  readonly offered: number;
  readonly missing: readonly string[];
  readonly duplicated: readonly string[];
  /** Answered twice, but sent twice too (a send that failed while the broker was away may have landed): the intake's, not the pipeline's. */
  readonly duplicatedResent: readonly string[];
  readonly archived: number;
  readonly archivedMissing: number;
  readonly dlq: number;
  readonly sendErrors: number;
  readonly totalSeconds: number;
}

export interface ChaosOptions {
  readonly faults: readonly FaultName[];
  readonly rate: number;
  /** How long a service stays stopped. */
  readonly faultSeconds: number;
  /**
   * How long a killed processor stays down before it is started again (a supervisor's restart):
   * ProcessDown waits a minute (`for: 1m`), so it is seen only past that.
   */
  readonly killSeconds: number;
  readonly log: Logger;
  readonly progress?: (line: string) => void;
}

const alertActive = (alerts: Awaited<ReturnType<typeof activeAlerts>>, name: string, labels: Readonly<Record<string, string>>, state?: "firing") =>
  alerts.some((a) => a.labels["alertname"] === name && (!state || a.state === state) && Object.entries(labels).every(([k, v]) => a.labels[k] === v));

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const say = options.progress ?? (() => undefined);
  const runId = `chaos${Date.now().toString(36)}`;
  const started = Date.now();
  say(`private stack starting (${runId})`);
  const stack = await startPrivateStack({ log: options.log, scrapeIntervalSeconds: 2 });
  let pipeline: Pipeline | undefined;
  let load: OfferedLoad | undefined;
  let tracker: ResponseTracker | undefined;
  let sender: Awaited<ReturnType<typeof inquirySender>> | undefined;
  const cleanup = async () => {
    await load?.stop().catch(() => undefined);
    await tracker?.close().catch(() => undefined);
    await sender?.close().catch(() => undefined);
    await pipeline?.stop().catch(() => undefined);
    await stack.down();
  };
  const release = cleanUpOnInterrupt(cleanup, options.log);
  try {
    await copyModelRegistry(resolveEndpoints(loadConfig()).databaseUrl, stack.endpoints.databaseUrl);
    await preparePipeline(stack.endpoints);
    const ports = new Map<string, number>();
    for (const task of runnablesOf("chained")) ports.set(task.name, await freePort());
    // The default session timeout (30 s), not the tests' 6 s: a loaded machine's stalls must not cost the group membership.
    pipeline = await startPipeline(stack.endpoints, { LOG_LEVEL: "warn", SWITCHBOARD_SESSION_TIMEOUT_MS: "30000" }, "chained", [], ports);
    await stack.scrape(ports);
    say(`pipeline up (${[...ports.keys()].join(", ")}); ${options.rate} inquiries/s offered`);

    sender = await inquirySender(pipeline.kafka, pipeline.codec);
    let sendErrors = 0;
    load = offerLoad(sender.send, { rate: options.rate, runId, onSendError: () => sendErrors++ });
    tracker = await trackResponses(pipeline.kafka, load, runId);
    /** Every inquiry offered from `from` (its index) up to `offeredUpTo` answered, waiting at most `timeoutMs`. */
    const answeredBy = async (offeredUpTo: number, timeoutMs: number, from = 0): Promise<boolean> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        let all = true;
        for (let i = from; i < offeredUpTo && all; i++) all = tracker!.counts.has(`${runId}-${i}`);
        if (all) return true;
        if (Date.now() >= deadline) return false;
        await sleep(500);
      }
    };
    // Warm: the first inquiries' backlog (models loading, caches filling) answered, so that each
    // fault starts from a pipeline that keeps up: every inquiry offered 30 s ago or earlier answered.
    const caughtUp = async (timeoutMs: number): Promise<boolean> => {
      const deadline = Date.now() + timeoutMs;
      let reported = Date.now();
      while (Date.now() < deadline) {
        const due = load!.offered() - 30 * options.rate;
        if (due > 0 && (await answeredBy(due, 0))) return true;
        if (Date.now() - reported > 30_000) {
          reported = Date.now();
          say(`warming up: ${tracker!.answered.length} of ${load!.offered()} answered`);
        }
        await sleep(1_000);
      }
      return false;
    };
    await sleep(15_000);
    if (!(await caughtUp(600_000))) throw new Error(`the pipeline did not keep up with ${options.rate} inquiries/s within 10 minutes of starting`);
    say(`warm: ${tracker.answered.length} of ${load.offered()} answered`);

    const service = (name: string, alert: string, dependency: string): FaultPlan => {
      const definition = stack.services.get(name)!;
      return { alert, labels: { dependency }, inject: () => stack.supervisor.down([definition]), heal: () => stack.supervisor.up([definition]) };
    };
    const plans: Record<FaultName, FaultPlan> = {
      postgres: service("postgres", "PostgresDown", "postgres"),
      elasticsearch: service("elasticsearch", "ElasticsearchDown", "elasticsearch"),
      redis: service("redis", "RedisDown", "redis"),
      "schema-registry": service("schema-registry", "SchemaRegistryDown", "schema_registry"),
      kafka: service("kafka", "KafkaDown", "kafka"),
      "kill-triage": {
        alert: "ProcessDown",
        labels: { job: "triage" },
        inject: async () => pipeline!.kill("triage"),
        heal: () => pipeline!.start("triage"),
      },
    };

    const results: FaultResult[] = [];
    for (const fault of options.faults) {
      const plan = plans[fault];
      const held = (fault === "kill-triage" ? options.killSeconds : options.faultSeconds) * 1000;
      const firstDuring = load.offered();
      say(`${fault}: injecting; ${plan.alert} expected`);
      await plan.inject();
      // From when the service is stopped (or the process killed): a graceful stop takes its own time.
      const injectedAt = Date.now();
      let firedAt: number | undefined;
      const also = new Set<string>();
      const watchAlerts = async (until: () => boolean) => {
        while (!until()) {
          const alerts = await activeAlerts(stack.prometheusUrl).catch(() => []);
          if (firedAt === undefined && alertActive(alerts, plan.alert, plan.labels, "firing")) {
            firedAt = Date.now();
            say(`${fault}: ${plan.alert} firing after ${((firedAt - injectedAt) / 1000).toFixed(1)} s`);
          }
          for (const a of alerts) if (a.state === "firing" && a.labels["alertname"] !== plan.alert) also.add(a.labels["alertname"]!);
          await sleep(1_000);
        }
      };
      await watchAlerts(() => Date.now() - injectedAt >= held);
      const lastDuring = load.offered();
      await plan.heal();
      const healedAt = Date.now();
      say(`${fault}: healed after ${((healedAt - injectedAt) / 1000).toFixed(0)} s`);
      // Settled once every inquiry offered during the fault is answered (at: when), or after 5 minutes without (at: undefined).
      const recovery: { settled: boolean; at?: number } = { settled: false };
      // The inquiries offered while the fault lasted (one lost earlier must not hold every later fault's figure).
      void answeredBy(lastDuring, 300_000, firstDuring).then((ok) => Object.assign(recovery, { settled: true, ...(ok && { at: Date.now() }) }));
      let resolvedAt: number | undefined;
      const deadline = Date.now() + 300_000;
      while (Date.now() < deadline && (resolvedAt === undefined || !recovery.settled)) {
        const alerts = await activeAlerts(stack.prometheusUrl).catch(() => undefined);
        if (alerts && firedAt === undefined && alertActive(alerts, plan.alert, plan.labels, "firing")) firedAt = Date.now();
        if (alerts && resolvedAt === undefined && !alertActive(alerts, plan.alert, plan.labels)) resolvedAt = Date.now();
        for (const a of alerts ?? []) if (a.state === "firing" && a.labels["alertname"] !== plan.alert) also.add(a.labels["alertname"]!);
        await sleep(1_000);
      }
      const index = (id: string) => Number(id.slice(runId.length + 1));
      const duringMs = tracker.answered.filter((a) => index(a.id) >= firstDuring && index(a.id) < lastDuring).map((a) => a.ms);
      const result: FaultResult = {
        fault,
        alert: plan.alert,
        heldSeconds: (healedAt - injectedAt) / 1000,
        ...(firedAt !== undefined && { detectSeconds: (firedAt - injectedAt) / 1000 }),
        ...(resolvedAt !== undefined && { resolveSeconds: (resolvedAt - healedAt) / 1000 }),
        ...(recovery.at !== undefined && { recoverSeconds: (recovery.at - healedAt) / 1000 }),
        offeredDuring: lastDuring - firstDuring,
        ...(duringMs.length > 0 && { worstLatencyMs: Math.max(...duringMs) }),
        alsoFired: [...also].sort(),
      };
      results.push(result);
      say(
        `${fault}: ${plan.alert} ${result.detectSeconds === undefined ? "did NOT fire" : `fired after ${result.detectSeconds.toFixed(1)} s`}, ` +
          `${result.resolveSeconds === undefined ? "not resolved" : `resolved ${result.resolveSeconds.toFixed(1)} s after the heal`}; ` +
          `backlog answered ${result.recoverSeconds === undefined ? "NOT within 5 min" : `${result.recoverSeconds.toFixed(1)} s after the heal`}; also firing: ${result.alsoFired.join(", ") || "none"}`,
      );
      // Quiet between faults: the next one's alerts start from a pipeline in its steady state.
      await sleep(10_000);
    }

    await load.stop();
    const offered = load.offered();
    await answeredBy(offered, 300_000);
    await sleep(3_000); // a late duplicate would show now
    const { missing, duplicated, duplicatedResent } = answeredOnce(load, tracker, runId, offered);
    const archive = await archivedResponses(stack, runId, offered);
    const dlq = await dlqCount(pipeline);
    return {
      rate: options.rate,
      faultSeconds: options.faultSeconds,
      faults: results,
      offered,
      missing,
      duplicated,
      duplicatedResent,
      archived: archive.rows,
      archivedMissing: archive.missing,
      dlq,
      sendErrors,
      totalSeconds: (Date.now() - started) / 1000,
    };
  } finally {
    release();
    await cleanup();
  }
}

/** The archive sink's rows of the run (one per inquiry by its key), waiting for the sink to catch up. */
async function archivedResponses(stack: PrivateStack, runId: string, offered: number): Promise<{ rows: number; missing: number }> {
  const db = new pg.Pool({ connectionString: stack.endpoints.databaseUrl, max: 1 });
  try {
    const deadline = Date.now() + 120_000;
    let rows = 0;
    while (Date.now() < deadline) {
      rows = Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM switchboard.responses WHERE inquiry_id LIKE $1", [`${runId}-%`])).rows[0]!.n);
      if (rows >= offered) break;
      await sleep(1_000);
    }
    return { rows, missing: offered - rows };
  } finally {
    await db.end();
  }
}

/** Records the chain sent to a DLQ over the run, from its own metrics. */
async function dlqCount(pipeline: Pipeline): Promise<number> {
  const text = await pipeline.metrics("triage");
  return [...text.matchAll(/^switchboard_dlq_records_total\{[^}]*\} (\S+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** The report as lines for a person. */
export function formatChaosReport(report: ChaosReport): string {
  const seconds = (s: number | undefined) => (s === undefined ? "–" : `${s.toFixed(1)} s`);
  const rows = report.faults.map(
    (f) =>
      `| ${f.fault} | ${f.heldSeconds.toFixed(0)} s | ${f.alert} | ${seconds(f.detectSeconds)} | ${seconds(f.resolveSeconds)} | ${seconds(f.recoverSeconds)} | ${f.offeredDuring} | ${seconds(f.worstLatencyMs && f.worstLatencyMs / 1000)} | ${f.alsoFired.join(", ") || "–"} |`,
  );
  return [
    `| fault | held | alert | detected (injected → firing) | resolved (healed → inactive) | recovered (healed → backlog answered) | offered during | slowest answer of those | other alerts firing |`,
    `|---|---|---|---|---|---|---|---|---|`,
    ...rows,
    ``,
    `${report.offered} inquiries offered at ${report.rate}/s over ${(report.totalSeconds / 60).toFixed(1)} min: missing ${report.missing.length}, answered twice ${report.duplicated.length}` +
      ` (+${report.duplicatedResent.length} inquiries the load generator sent twice after a failed send), archived ${report.archived} (missing ${report.archivedMissing}), DLQ'd ${report.dlq}, failed sends ${report.sendErrors} (retried)`,
  ].join("\n");
}
