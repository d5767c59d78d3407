import { Counter, Gauge, Registry } from "prom-client";
import type { Logger } from "pino";
import { DEFAULT_MIN_ROWS, DriftMonitor, type WindowReport } from "../drift/monitor.js";
import { driftRecord } from "../drift/record.js";
import { DriftStore, partitionKey, type RecordPosition, type SavedMonitor } from "../drift/store.js";
import { WatchedVersions } from "../drift/versions.js";
import type { Observation, WindowSpec } from "../drift/window.js";
import type { ModelDrift, PredictionFeedback } from "../schemas/types.generated.js";
import type { Config } from "../config/settings.js";
import { outputOf, reading } from "../streams/ports.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../streams/processor.js";
import type { ProcessorDeclaration } from "../streams/topology.js";

/**
 * Drift of live traffic from what each model version was trained on: every prediction record
 * on `predictions.feedback` is counted into its model version's window (predicted label,
 * confidence, input length, language, and the numbers the record carries: `active_features`,
 * `embedding_centroid_cosine`); each closed window is tested against the version's reference
 * (drift/README.md), and an alarm that is raised or cleared becomes one `models.drift` record,
 * keyed by task. Labels are not counted. Windows by time close on event time (the first record
 * of any model past their end), so a replay closes the same windows.
 *
 * State (windows and alarms) is saved in PostgreSQL with the offsets it counts, once per
 * transaction (drift/store.ts), so a restart resumes it. The monitors span every partition:
 * run one drift process per deployment.
 */

type Watch = { readonly monitor: DriftMonitor; readonly task: string };

export function monitorWindow(config: Pick<Config, "driftWindowRows" | "driftWindowMs">): WindowSpec {
  return config.driftWindowMs > 0 ? { kind: "time", durationMs: config.driftWindowMs } : { kind: "count", size: config.driftWindowRows };
}

/** What a prediction record says about each watched feature. */
export function observationOf(record: PredictionFeedback): Observation {
  return {
    ...record.features.values,
    label: record.predicted_label,
    language: record.features.language,
    confidence: record.confidence,
    length: record.features.length,
  };
}

function driftMetrics(registry: Registry) {
  return {
    records: new Counter({
      name: "switchboard_drift_records_total",
      help: "predictions.feedback records drift has read, by what it did with them: counted, label (not a prediction), unwatched (no reference), redelivered (counted before)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    windows: new Counter({
      name: "switchboard_drift_windows_total",
      help: "Windows closed and tested, by model version",
      labelNames: ["model"],
      registers: [registry],
    }),
    value: new Gauge({
      name: "switchboard_drift_statistic",
      help: "The last closed window's drift statistic per model version and feature (drift/README.md); drift when above switchboard_drift_threshold",
      labelNames: ["model", "feature", "statistic"],
      registers: [registry],
    }),
    threshold: new Gauge({
      name: "switchboard_drift_threshold",
      help: "The threshold the last window's statistic was compared with",
      labelNames: ["model", "feature", "statistic"],
      registers: [registry],
    }),
    alarm: new Gauge({
      name: "switchboard_drift_alarm",
      help: "1 while a feature of a model version is in drift (raised, not yet cleared)",
      labelNames: ["model", "feature"],
      registers: [registry],
    }),
    events: new Counter({
      name: "switchboard_drift_events_total",
      help: "models.drift records produced, by model version, feature and severity (info: cleared)",
      labelNames: ["model", "feature", "severity"],
      registers: [registry],
    }),
  };
}

export async function drift(declaration: ProcessorDeclaration, deps: ProcessorDependencies): Promise<ProcessorImplementation> {
  const log: Logger = deps.log.child({ processor: declaration.name });
  const driftOut = outputOf(deps.topology, declaration, "models.drift");
  const pool = await deps.resources.postgres();
  const store = new DriftStore(pool);
  const versions = new WatchedVersions(pool, deps.config.modelsDir);
  const registry = new Registry();
  const metrics = driftMetrics(registry);
  const window = monitorWindow(deps.config);
  const policy = { raiseAfter: deps.config.driftRaiseAfter, clearAfter: deps.config.driftClearAfter, cooldownMs: deps.config.driftCooldownMs };

  /** The offsets the saved state has counted (as of the last save or load). */
  let saved = new Map<string, bigint>();
  /** Saved monitor states not yet turned into monitors (their version's references are read when a record needs them). */
  let stored = new Map<string, unknown>();
  const watches = new Map<string, Watch>();
  /** Since the last save: monitors changed, last offset per partition, records caused. */
  const changed = new Set<string>();
  const counted = new Map<string, RecordPosition>();
  const outbox: { position: RecordPosition; records: ModelDrift[] }[] = [];
  let reloadNeeded = true;

  const reload = async () => {
    const state = await store.load();
    saved = new Map(state.offsets);
    stored = new Map(state.monitors.map((m) => [m.model, m.state]));
    watches.clear();
    changed.clear();
    counted.clear();
    outbox.length = 0;
    reloadNeeded = false;
    log.info({ monitors: stored.size, partitions: saved.size }, "drift state loaded");
  };

  const watchOf = async (model: string, task: string): Promise<Watch | null> => {
    const existing = watches.get(model);
    if (existing) return existing;
    const watch = await versions.lookup(model);
    if (!watch.watched) {
      log.debug({ model, reason: watch.reason }, "model version not watched");
      return null;
    }
    if (watch.skipped.length > 0) log.warn({ model, skipped: watch.skipped }, "parts of the reference are unusable; the rest is watched");
    const options = { references: watch.references, window, policy, minRows: Math.min(DEFAULT_MIN_ROWS, window.kind === "count" ? window.size : DEFAULT_MIN_ROWS) };
    let monitor: DriftMonitor;
    try {
      monitor = new DriftMonitor(options, stored.get(model));
    } catch (error) {
      log.warn({ model, error: (error as Error).message }, "saved drift state does not fit; starting the model version's watch afresh");
      monitor = new DriftMonitor(options);
    }
    stored.delete(model);
    const created = { monitor, task };
    watches.set(model, created);
    return created;
  };

  const report = (model: string, task: string, result: WindowReport, detectedAt: number): ModelDrift[] => {
    metrics.windows.inc({ model });
    for (const [feature, outcome] of Object.entries(result.outcomes)) {
      if (outcome.kind !== "tested") continue;
      metrics.value.set({ model, feature, statistic: outcome.statistic }, outcome.value);
      metrics.threshold.set({ model, feature, statistic: outcome.statistic }, outcome.threshold);
    }
    return result.events.map((event) => {
      const record = driftRecord({ task, model, detectedAt }, event);
      metrics.alarm.set({ model, feature: event.feature }, event.transition === "raised" ? 1 : 0);
      metrics.events.inc({ model, feature: event.feature, severity: record.severity });
      log.info(
        { model, feature: event.feature, statistic: record.statistic, value: record.value, threshold: record.threshold, severity: record.severity, window: event.window.index },
        event.transition === "raised" ? "drift raised" : "drift cleared",
      );
      return record;
    });
  };

  return {
    metrics: registry,
    process: reading(deps.topology, declaration, "predictions.feedback", async (input) => {
      if (reloadNeeded) await reload();
      const position: RecordPosition = { topic: input.topic, partition: input.partition, offset: BigInt(input.offset) };
      const key = partitionKey(input.topic, input.partition);
      if (position.offset <= (saved.get(key) ?? -1n)) {
        metrics.records.inc({ outcome: "redelivered" });
        return (await store.outboxOf(position)).map((record) => driftOut(record, { key: record.task }));
      }
      const record = input.value;
      // Looked up before anything changes, so that a failed lookup leaves the record to be retried whole.
      const watch = record.label_source === "model" ? await watchOf(record.model, record.task) : null;
      counted.set(key, position);
      if (record.label_source !== "model") {
        metrics.records.inc({ outcome: "label" });
        return [];
      }
      const at = record.occurred_at;
      const detectedAt = Date.now();
      const records: ModelDrift[] = [];
      if (window.kind === "time") {
        for (const [model, other] of watches) {
          const closed = other.monitor.advance(at);
          if (closed) {
            changed.add(model);
            records.push(...report(model, other.task, closed, detectedAt));
          }
        }
      }
      if (!watch) {
        metrics.records.inc({ outcome: "unwatched" });
      } else {
        metrics.records.inc({ outcome: "counted" });
        changed.add(record.model);
        const closed = watch.monitor.add(observationOf(record), at);
        if (closed) records.push(...report(record.model, watch.task, closed, detectedAt));
      }
      if (records.length > 0) outbox.push({ position, records });
      return records.map((r) => driftOut(r, { key: r.task }));
    }),

    async flush() {
      if (counted.size === 0 && changed.size === 0) return;
      const monitors: SavedMonitor[] = [...changed].flatMap((model) => {
        const watch = watches.get(model);
        return watch ? [{ model, task: watch.task, state: watch.monitor.toJSON() }] : [];
      });
      try {
        await store.save({ monitors, offsets: counted, outbox });
      } catch (error) {
        // The monitors in memory have counted records whose transaction now aborts: start again from what was saved.
        reloadNeeded = true;
        throw error;
      }
      for (const [key, position] of counted) saved.set(key, position.offset);
      changed.clear();
      counted.clear();
      outbox.length = 0;
    },
  };
}
