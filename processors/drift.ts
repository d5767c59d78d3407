import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Logger } from "pino";
import { venvPython } from "../cli/python-env.js";
import { INITIAL_ALARM, parseAlarmState, stepAlarm, type AlarmPolicy, type AlarmState } from "../drift/alarm.js";
import { DEFAULT_MIN_ROWS, DriftMonitor, type DriftEvent, type WindowReport } from "../drift/monitor.js";
import { driftRecord } from "../drift/record.js";
import { DriftStore, partitionKey, type RecordPosition, type SavedMonitor } from "../drift/store.js";
import { WatchedVersions } from "../drift/versions.js";
import type { StatisticResult } from "../drift/statistics.js";
import { domainClassifierTest } from "../drift/text-drift.js";
import { liveTexts, referenceTexts } from "../drift/text-samples.js";
import type { Observation, WindowSpec } from "../drift/window.js";
import { DriftSeverityValues, type ModelDrift, type PredictionFeedback } from "../schemas/types.generated.js";
import type { Config } from "../config/settings.js";
import { createQueueMetrics, refreshQueues } from "../monitoring/queues.js";
import { createQualityMetrics, refreshQuality } from "../quality/metrics.js";
import { parseWindow } from "../quality/window.js";
import { outputOf, reading } from "../streams/ports.js";
import { UNDETERMINED_LANGUAGE } from "../text/language.js";
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
 * Live model quality (quality/): on a timer, from the feedback sink's tables, as metrics.
 *
 * Text drift (feature `text`): on a timer, a domain classifier tries to tell each watched
 * version's latest live inputs from its training texts (drift/text-drift.ts). Its result waits
 * for the next input record and is judged and produced in that record's transaction, like every
 * other drift record; one window over the threshold raises it.
 *
 * State (windows and alarms) is saved in PostgreSQL with the offsets it counts, once per
 * transaction (drift/store.ts), so a restart resumes it. The monitors span every partition:
 * run one drift process per deployment.
 */

type Watch = { readonly monitor: DriftMonitor; readonly task: string; readonly directory: string };

/** drift_monitors key of a version's text-drift alarm, beside its monitor's. */
const TEXT_KEY_SUFFIX = "#text";
const TEXT_FEATURE = "text";

interface TextAlarm {
  readonly task: string;
  readonly state: AlarmState;
  /** Text windows tested so far. */
  readonly index: number;
}

interface TextResult {
  readonly model: string;
  readonly task: string;
  readonly result: StatisticResult;
  readonly from: number;
  readonly to: number;
}

export function monitorWindow(config: Pick<Config, "driftWindowRows" | "driftWindowMs">): WindowSpec {
  return config.driftWindowMs > 0 ? { kind: "time", durationMs: config.driftWindowMs } : { kind: "count", size: config.driftWindowRows };
}

/**
 * What a prediction record says about each watched feature. An undetermined language ("und":
 * the detector abstains, on 2 % of Bitext's one-line English requests) is no language: counted,
 * it would be a category the reference (the data set's declared languages) never has, and every
 * window of a stable stream would drift.
 */
export function observationOf(record: PredictionFeedback): Observation {
  return {
    ...record.features.values,
    label: record.predicted_label,
    language: record.features.language === UNDETERMINED_LANGUAGE ? undefined : record.features.language,
    confidence: record.confidence,
    length: record.features.length,
  };
}

/** Fine near 1, where a served model's confidences gather. */
const CONFIDENCE_BUCKETS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1];

/** Exported for the alert rules and `switchboard status`, which read the metric names from here. */
export function driftMetrics(registry: Registry) {
  return {
    records: new Counter({
      name: "switchboard_drift_records_total",
      help: "predictions.feedback records drift has read, by what it did with them: counted, label (not a prediction), unwatched (no reference), redelivered (counted before)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    predictions: new Counter({
      name: "switchboard_drift_predictions_total",
      help: "Predictions drift has read (a redelivered one once), by model version, registry model (name) and predicted label",
      labelNames: ["model", "name", "label"],
      registers: [registry],
    }),
    confidence: new Histogram({
      name: "switchboard_drift_prediction_confidence",
      help: "Confidence of the predictions drift has read, by model version and registry model (name)",
      labelNames: ["model", "name"],
      buckets: CONFIDENCE_BUCKETS,
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
    textTests: new Counter({
      name: "switchboard_drift_text_tests_total",
      help: "Text-drift tests run (domain classifier, training texts against the latest live inputs), by model version",
      labelNames: ["model"],
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
  const versions = new WatchedVersions(pool, deps.config.modelsDir, deps.config.registrySchema);
  const registry = new Registry();
  const metrics = driftMetrics(registry);
  const window = monitorWindow(deps.config);
  const policy = { raiseAfter: deps.config.driftRaiseAfter, clearAfter: deps.config.driftClearAfter, cooldownMs: deps.config.driftCooldownMs };
  // A domain classifier's AUC is judged on hundreds of texts at once, an hour apart: one window over is the evidence.
  const textPolicy: AlarmPolicy = { raiseAfter: 1, clearAfter: 2, cooldownMs: deps.config.driftCooldownMs };

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
  const textAlarms = new Map<string, TextAlarm>();
  const changedText = new Set<string>();
  /** Text-drift results computed by the timer, waiting for the next record's transaction. */
  const textResults: TextResult[] = [];
  /** Embedded training texts per model version and embedder version. */
  const referenceEmbeddings = new Map<string, Promise<Float32Array[]>>();

  const reload = async () => {
    const state = await store.load();
    saved = new Map(state.offsets);
    stored = new Map(state.monitors.filter((m) => !m.model.endsWith(TEXT_KEY_SUFFIX)).map((m) => [m.model, m.state]));
    textAlarms.clear();
    for (const m of state.monitors.filter((s) => s.model.endsWith(TEXT_KEY_SUFFIX))) {
      try {
        const saved = m.state as { alarm: unknown; index: number };
        textAlarms.set(m.model.slice(0, -TEXT_KEY_SUFFIX.length), { task: m.task, state: parseAlarmState(saved.alarm), index: saved.index });
      } catch (error) {
        log.warn({ model: m.model, error: (error as Error).message }, "saved text-drift alarm is invalid; starting it afresh");
      }
    }
    watches.clear();
    changed.clear();
    changedText.clear();
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
    const created = { monitor, task, directory: watch.directory };
    watches.set(model, created);
    return created;
  };

  const report = (model: string, task: string, result: WindowReport, detectedAt: number): ModelDrift[] => {
    metrics.windows.inc({ model });
    for (const [feature, outcome] of Object.entries(result.outcomes)) {
      if (outcome.kind !== "tested") continue;
      metrics.value.set({ model, feature, statistic: outcome.statistic }, outcome.value);
      metrics.threshold.set({ model, feature, statistic: outcome.statistic }, outcome.threshold);
      // The feature's alarm and drift records at 0 until the first is raised: "no drift", not "no series".
      metrics.alarm.inc({ model, feature }, 0);
      for (const severity of DriftSeverityValues) metrics.events.inc({ model, feature, severity }, 0);
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

  /** Judges the text-drift results waiting, as of this record's transaction. */
  const judgeText = (detectedAt: number): ModelDrift[] =>
    textResults.splice(0).flatMap(({ model, task, result, from, to }) => {
      const alarm = textAlarms.get(model) ?? { task, state: INITIAL_ALARM, index: 0 };
      const { state, transition } = stepAlarm(alarm.state, result, to, textPolicy);
      textAlarms.set(model, { task, state, index: alarm.index + 1 });
      changedText.add(model);
      if (!transition) return [];
      const event: DriftEvent = { transition, feature: TEXT_FEATURE, result, window: { index: alarm.index, start: from, end: to, count: result.sampleSize, features: {} } };
      return report(model, task, { window: event.window, outcomes: { [TEXT_FEATURE]: result }, events: [event] }, detectedAt);
    });

  const python = venvPython();
  const testTexts = async () => {
    const embedder = await deps.resources.productionModel("embedder");
    const rows = deps.config.driftTextRows;
    for (const [model, watch] of [...watches]) {
      const live = await liveTexts(pool, watch.task, model, rows);
      if (live.texts.length < rows / 2) {
        log.debug({ model, texts: live.texts.length }, "too few live texts for the text-drift test yet");
        continue;
      }
      const key = `${model} ${embedder.current.version}`;
      let reference = referenceEmbeddings.get(key);
      if (!reference) {
        reference = referenceTexts(python, watch.directory, rows).then((texts) => embedder.slot.embed(texts));
        referenceEmbeddings.set(key, reference);
        reference.catch(() => referenceEmbeddings.delete(key));
      }
      const current = await embedder.slot.embed(live.texts);
      const result = await domainClassifierTest(await reference, current, { pause: () => new Promise((resolve) => setImmediate(resolve)) });
      log.info({ model, auc: result.value, threshold: result.threshold, texts: current.length }, "text drift tested");
      metrics.value.set({ model, feature: TEXT_FEATURE, statistic: result.statistic }, result.value);
      metrics.threshold.set({ model, feature: TEXT_FEATURE, statistic: result.statistic }, result.threshold);
      metrics.textTests.inc({ model });
      textResults.push({ model, task: watch.task, result, from: live.from, to: live.to });
    }
  };
  if (deps.config.driftTextIntervalMs > 0) deps.resources.schedule("text drift", deps.config.driftTextIntervalMs, testTexts);

  const quality = createQualityMetrics(registry);
  const qualityWindows = deps.config.qualityWindows.split(",").map((w) => parseWindow(w.trim()));
  if (deps.config.qualityRefreshMs > 0)
    deps.resources.schedule("live quality", deps.config.qualityRefreshMs, async () => void (await refreshQuality(pool, quality, { windows: qualityWindows, registrySchema: deps.config.registrySchema })));
  // The agents' queues (waiting inquiries, the oldest's age) for the SLA alert, on the same schedule.
  const queues = createQueueMetrics(registry);
  if (deps.config.qualityRefreshMs > 0) deps.resources.schedule("review queues", deps.config.qualityRefreshMs, async () => void (await refreshQueues(pool, queues)));

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
      const detectedAt = Date.now();
      const records: ModelDrift[] = judgeText(detectedAt);
      if (record.label_source !== "model") {
        metrics.records.inc({ outcome: "label" });
        if (records.length > 0) outbox.push({ position, records });
        return records.map((r) => driftOut(r, { key: r.task }));
      }
      // Every prediction, watched or not: the model page's labels and confidence over time.
      const name = record.model.split("@")[0]!;
      metrics.predictions.inc({ model: record.model, name, label: record.predicted_label });
      metrics.confidence.observe({ model: record.model, name }, record.confidence);
      const at = record.occurred_at;
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
      for (const model of changedText) {
        const alarm = textAlarms.get(model)!;
        monitors.push({ model: model + TEXT_KEY_SUFFIX, task: alarm.task, state: { alarm: alarm.state, index: alarm.index } });
      }
      try {
        await store.save({ monitors, offsets: counted, outbox });
      } catch (error) {
        // The monitors in memory have counted records whose transaction now aborts: start again from what was saved.
        reloadNeeded = true;
        throw error;
      }
      for (const [key, position] of counted) saved.set(key, position.offset);
      changed.clear();
      changedText.clear();
      counted.clear();
      outbox.length = 0;
    },
  };
}
