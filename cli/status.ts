import type { Command } from "commander";
import { THRESHOLDS } from "../monitoring/alerts.js";
import { collectStatus, prometheusReader, prometheusUrl, registryModels, type ProcessStatus, type StatusSnapshot } from "../monitoring/status.js";
import { resolveEndpoints } from "../stack/index.js";
import { createPool } from "../storage/postgres.js";
import { ReportedError, type CliContext } from "./context.js";

/**
 * `switchboard status [--watch [seconds]] [--json]`: one screen of the running deployment, from
 * Prometheus's HTTP API (PROMETHEUS_URL, else the local stack's): every process of the topology up
 * or down with its rates, errors, lag, p99 and DLQ counts, the models in production (from the
 * registry), the drift state and the active alerts. The queries are monitoring/status.ts's, which
 * the API's status page runs too.
 */

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
      const models = async () => {
        const pool = createPool(resolveEndpoints(config), "switchboard-status");
        try {
          return await registryModels(pool, config);
        } finally {
          await pool.end().catch(() => undefined);
        }
      };
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
