/**
 * `npm run bench:drift`: the learning loop's figures (issue 11), against the stack's PostgreSQL
 * and the registry's production versions (`switchboard prepare` first):
 * - detection delay: records of one model version after a shift begins until its drift event,
 *   for four shifts (an intent mix of two labels, a fifth of the traffic moved to two labels,
 *   Spanish-only traffic, inputs five times longer), several seeds each, through the real drift
 *   processor;
 * - false alarms per 100,000 stable records drawn from each production version's own reference;
 * - text drift: the domain classifier's ROC AUC on training texts against other training texts,
 *   help-desk emails and the version's live inputs, with its threshold and time;
 * - the label-free accuracy estimate against the labelled truth, in 20 windows of 500 rows drawn
 *   from each production version's held-out split, calibrated as served and made over-confident
 *   (every confidence half way to 1: the check must say so); "within stated error" counts windows
 *   where the two agree within 1.96·√2 standard errors (the estimate's and the measurement's);
 * - wall time of one retraining run per model (`train --with-feedback --no-register`, the
 *   production version's family; BENCH_RETRAIN=0 skips it).
 * Writes bench-results/drift-<time>.json. It resets the drift state of the versions it uses, so
 * it refuses to run beside a drift process.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { venvPython } from "../../cli/python-env.js";
import { loadConfig, REPO_ROOT, type Config } from "../../config/settings.js";
import { domainClassifierTest } from "../../drift/text-drift.js";
import { liveTexts } from "../../drift/text-samples.js";
import { heldOutRows } from "../../models/eval/held-out.js";
import { loadModelVersion } from "../../models/version.js";
import { drift } from "../../processors/drift.js";
import { confidenceSums, windowQuality, type LabelledPrediction } from "../../quality/statistics.js";
import type { ModelDrift, PredictionFeedback } from "../../schemas/types.generated.js";
import { resolveEndpoints } from "../../stack/index.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import { createResources } from "../../streams/resources.js";
import { TRIAGE, findProcessor } from "../../streams/topology.js";
import { APP_SCHEMA } from "../../storage/postgres.js";
import { productionVersion, referenceStream, seeded, type ProductionVersion, type Shift } from "../support/reference-stream.js";
import { quietLog } from "../support/topics.js";

const run = promisify(execFile);
const RUN = randomUUID().slice(0, 8);
const SEEDS = Number(process.env.BENCH_SEEDS ?? 5);
const STABLE_RECORDS = Number(process.env.BENCH_STABLE_RECORDS ?? 250_000);
const MODELS = ["intent", "category", "sentiment", "urgency"] as const;
const SHIFTS: readonly Shift[] = ["label_mix", "label_mix_fifth", "language", "length"];
const SHIFT_FEATURE: Record<Shift, string> = { label_mix: "label", label_mix_fifth: "label", language: "language", length: "length" };
const ESTIMATE_WINDOW = 500;
/** Windows drawn (with replacement) from each version's held-out rows. */
const ESTIMATE_WINDOWS = 20;

const baseConfig = loadConfig();
const config: Config = { ...baseConfig, driftTextIntervalMs: 0, qualityRefreshMs: 0 };
const endpoints = resolveEndpoints(config);
const resources = createResources(config, endpoints, quietLog, "bench-drift");
const { processor: declaration } = findProcessor("drift");
let topicSeq = 0;

async function feed(processor: ProcessorImplementation, records: Iterable<PredictionFeedback>, limit: number, stopAt?: (r: ModelDrift) => boolean) {
  const topic = `bench-drift-${RUN}-${topicSeq++}`;
  const events: { at: number; record: ModelDrift }[] = [];
  let i = 0;
  for (const value of records) {
    if (i >= limit) break;
    const outputs = await processor.process({ topic, partition: 0, offset: String(i), key: value.inquiry_id, value, headers: {}, timestamp: value.occurred_at }, { log: quietLog });
    for (const out of outputs) events.push({ at: i, record: out.value as ModelDrift });
    i++;
    if (i % 1000 === 0) await processor.flush!();
    if (stopAt && events.some((e) => stopAt(e.record))) break;
  }
  await processor.flush!();
  return events;
}

async function detection(pool: Awaited<ReturnType<typeof resources.postgres>>, version: ProductionVersion) {
  const rows: { shift: Shift; seed: number; delay: number | null; statistic: string; value: number; threshold: number }[] = [];
  const stable = config.driftWindowRows * 4;
  for (const shift of SHIFTS) {
    for (let seed = 1; seed <= SEEDS; seed++) {
      await pool.query(`DELETE FROM ${APP_SCHEMA}.drift_monitors WHERE model = $1`, [`${version.model}@${version.version}`]);
      const processor = await drift(declaration, { topology: TRIAGE, config, endpoints, log: quietLog, resources });
      const before = referenceStream(version, { task: version.model, seed: seed * 100 });
      const after = referenceStream(version, { task: version.model, seed: seed * 100 + 1, shift, startAt: Date.UTC(2026, 2, 1) });
      const stableEvents = await feed(processor, before, stable);
      const events = await feed(processor, after, config.driftWindowRows * 20, (r) => r.feature === SHIFT_FEATURE[shift] && r.severity !== "info");
      const hit = events.find((e) => e.record.feature === SHIFT_FEATURE[shift] && e.record.severity !== "info");
      if (stableEvents.length > 0) console.warn(`${shift} seed ${seed}: ${stableEvents.length} events before the shift`);
      rows.push({ shift, seed, delay: hit ? hit.at + 1 : null, statistic: hit?.record.statistic ?? "-", value: hit?.record.value ?? Number.NaN, threshold: hit?.record.threshold ?? Number.NaN });
    }
  }
  return rows;
}

async function falseAlarms(pool: Awaited<ReturnType<typeof resources.postgres>>, version: ProductionVersion) {
  await pool.query(`DELETE FROM ${APP_SCHEMA}.drift_monitors WHERE model = $1`, [`${version.model}@${version.version}`]);
  const processor = await drift(declaration, { topology: TRIAGE, config, endpoints, log: quietLog, resources });
  const started = performance.now();
  const events = await feed(processor, referenceStream(version, { task: version.model, seed: 9_001 }), STABLE_RECORDS);
  const seconds = (performance.now() - started) / 1000;
  await pool.query(`DELETE FROM ${APP_SCHEMA}.drift_monitors WHERE model = $1`, [`${version.model}@${version.version}`]);
  const raised = events.filter((e) => e.record.severity !== "info");
  return { model: version.model, records: STABLE_RECORDS, raised: raised.length, perHundredThousand: (raised.length / STABLE_RECORDS) * 100_000, recordsPerSecond: Math.round(STABLE_RECORDS / seconds), features: raised.map((e) => e.record.feature) };
}

const sampleTexts = (version: ProductionVersion, rows: number, seed: number): string[] =>
  JSON.parse(execFileSync(venvPython(), ["-m", "training.reference_texts", path.join(version.directory, "manifest.json"), "--rows", String(rows), "--seed", String(seed)], { cwd: REPO_ROOT, encoding: "utf8", maxBuffer: 64 << 20 })) as string[];

async function textDrift(pool: Awaited<ReturnType<typeof resources.postgres>>, intent: ProductionVersion, urgency: ProductionVersion) {
  const embedder = await resources.productionModel("embedder");
  const rows = config.driftTextRows;
  const reference = await embedder.slot.embed(sampleTexts(intent, rows, 0));
  const live = (await liveTexts(pool, "intent", `intent@${intent.version}`, rows)).texts;
  const cases: [string, readonly string[]][] = [
    ["other training texts (stable)", sampleTexts(intent, rows, 1)],
    ["help-desk emails (tickets)", sampleTexts(urgency, rows, 2)],
  ];
  if (live.length >= rows / 2) cases.push([`the version's latest ${live.length} live inputs`, live]);
  const results = [];
  for (const [name, texts] of cases) {
    const started = performance.now();
    const result = await domainClassifierTest(reference, await embedder.slot.embed(texts));
    results.push({ case: name, auc: result.value, threshold: result.threshold, drifted: result.drifted, seconds: (performance.now() - started) / 1000 });
  }
  return results;
}

/** Held-out windows of a production version: the estimate against the measured accuracy, as served and over-confident. */
async function estimates(version: ProductionVersion) {
  const heldOut = await heldOutRows(version.directory);
  const model = await loadModelVersion(version.directory, quietLog);
  const rows = heldOut.rows.filter((r) => r.label !== heldOut.oosLabel);
  try {
    const predictions = await model.predict(rows.map((r) => r.text));
    const labelled: LabelledPrediction[] = predictions.map((p, i) => ({ truth: rows[i]!.label, predicted: p.label, confidence: p.confidence }));
    const random = seeded(5);
    const windows = ESTIMATE_WINDOWS;
    const result = { model: version.model, family: model.manifest.family, rows: labelled.length, windows, served: [] as number[], within: 0, trustedServed: 0, overconfident: [] as number[], flagged: 0 };
    for (let w = 0; w < windows; w++) {
      const sample = Array.from({ length: ESTIMATE_WINDOW }, () => labelled[Math.floor(random() * labelled.length)]!);
      const served = windowQuality(confidenceSums(sample.map((r) => r.confidence)), sample);
      result.served.push(served.estimated!.estimate - served.measured!.accuracy);
      if (Math.abs(served.estimated!.estimate - served.measured!.accuracy) <= 1.96 * served.estimated!.standardError * Math.SQRT2) result.within++;
      if (served.calibration.trusted) result.trustedServed++;
      // Over-confident: every confidence pushed half way to 1, as a model calibrated on templates is on people.
      const sharp = sample.map((r) => ({ ...r, confidence: (1 + r.confidence) / 2 }));
      const over = windowQuality(confidenceSums(sharp.map((r) => r.confidence)), sharp);
      result.overconfident.push(over.estimated!.estimate - over.measured!.accuracy);
      if (!over.calibration.trusted) result.flagged++;
    }
    return result;
  } finally {
    await model.release();
  }
}

async function retrainTimes(pool: Awaited<ReturnType<typeof resources.postgres>>) {
  const scratch = mkdtempSync(path.join(os.tmpdir(), "switchboard-bench-retrain-"));
  symlinkSync(path.join(config.modelsDir, "embedder"), path.join(scratch, "embedder"));
  const times = [];
  try {
    for (const model of MODELS) {
      const { rows } = await pool.query<{ family: string }>(`SELECT family FROM ${config.registrySchema}.versions WHERE model = $1 AND stage = 'production'`, [model]);
      const family = rows[0]?.family ?? "linear";
      const started = performance.now();
      const { stdout } = await run(venvPython(), ["-m", "training", "train", "--model", model, "--family", family, "--with-feedback", "--no-register", "--json"], {
        cwd: REPO_ROOT,
        env: { ...process.env, SWITCHBOARD_MODELS_DIR: scratch, LOG_LEVEL: "warn" },
        maxBuffer: 64 << 20,
      });
      const trained = stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { event: string; metrics?: Record<string, number> }).find((l) => l.event === "trained");
      times.push({ model, family, seconds: (performance.now() - started) / 1000, trainRows: trained?.metrics?.["train_rows"], feedbackRows: trained?.metrics?.["feedback_train_rows"] ?? 0, testMacroF1: trained?.metrics?.["test_macro_f1"] });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return times;
}

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const meanAbs = (xs: readonly number[]) => mean(xs.map(Math.abs));

async function main(): Promise<void> {
  const health = await fetch(`http://127.0.0.1:${declaration.metricsPort}/healthz`).catch(() => null);
  if (health) throw new Error(`a drift process answers on port ${declaration.metricsPort}: stop it first (the benchmark resets the drift state of the production versions)`);
  const pool = await resources.postgres();
  const versions = Object.fromEntries(await Promise.all(MODELS.map(async (m) => [m, await productionVersion(pool, m, config.modelsDir)] as const)));

  console.log(`detection delay (window ${config.driftWindowRows} rows, raise after ${config.driftRaiseAfter}; ${SEEDS} seeds a shift)`);
  const delays = await detection(pool, versions.intent!);
  const delaySummary = SHIFTS.map((shift) => {
    const found = delays.filter((d) => d.shift === shift && d.delay !== null).map((d) => d.delay!);
    return { shift, detected: `${found.length}/${SEEDS}`, "mean records": Math.round(mean(found)), "max records": Math.max(...found), statistic: delays.find((d) => d.shift === shift)?.statistic };
  });
  console.table(delaySummary);

  console.log(`false alarms: ${STABLE_RECORDS.toLocaleString()} stable records a model`);
  const alarms = [];
  for (const model of MODELS) alarms.push(await falseAlarms(pool, versions[model]!));
  console.table(alarms.map((a) => ({ model: a.model, records: a.records, raised: a.raised, "per 100k": a.perHundredThousand.toFixed(2), "records/s": a.recordsPerSecond })));
  const totalRaised = alarms.reduce((s, a) => s + a.raised, 0);
  console.log(`false alarms per 100,000 stable records, all models: ${((totalRaised / (STABLE_RECORDS * MODELS.length)) * 100_000).toFixed(3)}`);

  console.log(`text drift (domain classifier, ${config.driftTextRows} texts a side, intent@${versions.intent!.version})`);
  const text = await textDrift(pool, versions.intent!, versions.urgency!);
  console.table(text.map((t) => ({ case: t.case, "ROC AUC": t.auc.toFixed(3), threshold: t.threshold.toFixed(3), drift: t.drifted, seconds: t.seconds.toFixed(2) })));

  console.log(`label-free accuracy estimate (windows of ${ESTIMATE_WINDOW} held-out rows)`);
  const estimateRows = [];
  for (const model of MODELS) estimateRows.push(await estimates(versions[model]!));
  console.table(
    estimateRows.map((e) => ({
      model: e.model,
      family: e.family,
      windows: e.windows,
      "mean |estimate − measured|": meanAbs(e.served).toFixed(4),
      "mean bias": mean(e.served).toFixed(4),
      "within stated error": `${e.within}/${e.windows}`,
      "check trusts": `${e.trustedServed}/${e.windows}`,
      "over-confident |error|": meanAbs(e.overconfident).toFixed(4),
      "check flags it": `${e.flagged}/${e.windows}`,
    })),
  );

  let retrain: Awaited<ReturnType<typeof retrainTimes>> = [];
  if (process.env.BENCH_RETRAIN !== "0") {
    console.log("retraining wall time (train --with-feedback --no-register, the production family)");
    retrain = await retrainTimes(pool);
    console.table(retrain.map((r) => ({ model: r.model, family: r.family, seconds: r.seconds.toFixed(1), "train rows": r.trainRows, "feedback rows": r.feedbackRows, "test macro-F1": r.testMacroF1?.toFixed(4) })));
  }

  const dir = path.join(REPO_ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `drift-${new Date().toISOString().replaceAll(":", "-").slice(0, 19)}.json`);
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), cores: os.cpus().length, window: config.driftWindowRows, raiseAfter: config.driftRaiseAfter, delays, delaySummary, alarms, text, estimates: estimateRows, retrain }, null, 2)}\n`);
  console.log(`written ${path.relative(REPO_ROOT, file)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main()
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(() => void resources.close());
}
