import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig, REPO_ROOT } from "../../config/settings.js";
import { predictionId } from "../../processors/feedback.js";
import { liveQuality, type QualityReport } from "../../quality/live.js";
import { createQualityMetrics, refreshQuality } from "../../quality/metrics.js";
import { Z_95 } from "../../quality/statistics.js";
import { parseWindow } from "../../quality/window.js";
import type { PredictionFeedback } from "../../schemas/types.generated.js";
import { feedback } from "../../sinks/feedback.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import { createResources, type Resources } from "../../streams/resources.js";
import { TRIAGE, findProcessor } from "../../streams/topology.js";
import { APP_SCHEMA, createPool } from "../../storage/postgres.js";
import { seededRandom as random } from "../../drift/seeded.js";
import { quietLog, serviceEnv } from "../support/topics.js";
import { python } from "./models-fixture.js";

const exec = promisify(execFile);

/**
 * Live quality against the real PostgreSQL: a labelled stream written through the feedback sink,
 * a registry of this run's own (training's migrations) with a production version that is
 * calibrated and a shadow version that is over-confident. The label-free estimate of the
 * calibrated one lies within its stated error of the measured accuracy and is trusted; the
 * over-confident one's is flagged; an hour without labels yet is unchecked; the CLI prints it.
 */

const run = randomUUID().slice(0, 8);
const HOUR = 3_600_000;
const CLASSES = ["billing", "delivery", "refund", "account"];
/** Inquiries per hour, six hours; labels (an agent's, the truth) on the first five hours only. */
const PER_HOUR = 500;
const HOURS = 6;
const NAME = `quality_test_${run}`;
const SOURCES_NAME = `quality_test_${run}_sources`;
const [PRODUCTION, SHADOW] = ["v1", "v2"];
/** The over-confident shadow is right this much less often than its confidence says. */
const OVERCONFIDENCE = 0.3;

describe("live quality (PostgreSQL, feedback sink, registry)", () => {
  const schema = `quality_test_${run}`;
  // The stream ends a minute before now, so the CLI (which measures up to its own now) sees all of it.
  const end = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
  let pool: pg.Pool;
  let resources: Resources;
  let sink: ProcessorImplementation;
  /** What the stream really was: per production prediction, right or not. */
  const truth: { at: number; productionRight: boolean; labelled: boolean }[] = [];

  const record = (inquiry: string, task: string, overrides: Partial<PredictionFeedback>): PredictionFeedback => ({
    prediction_id: predictionId(inquiry, task),
    inquiry_id: inquiry,
    task,
    model: `${task}@${PRODUCTION}`,
    input_digest: "0".repeat(64),
    features: { length: 120, language: "en", values: {} },
    predicted_label: CLASSES[0]!,
    confidence: 0.5,
    label: null,
    label_source: "model",
    occurred_at: end,
    stage: "production",
    ...overrides,
  });

  /** As the runtime does: every record through process(), one flush per batch. */
  const deliver = async (records: readonly PredictionFeedback[]) => {
    for (let start = 0; start < records.length; start += 1000) {
      for (const [i, value] of records.slice(start, start + 1000).entries()) {
        await sink.process({ topic: "predictions.feedback", partition: 0, offset: String(start + i), key: value.inquiry_id, value, headers: {}, timestamp: Date.now() }, { log: quietLog });
      }
      await sink.flush!();
    }
  };

  const register = async (name: string, versions: readonly [string, "production" | "shadow"][]) => {
    const registry = pg.escapeIdentifier(schema);
    await pool.query(`INSERT INTO ${registry}.models (name, task) VALUES ($1, 'intent')`, [name]);
    for (const [version, stage] of versions) {
      await pool.query(
        `INSERT INTO ${registry}.versions (model, version, family, stage, artifact_path, model_sha256, manifest)
         VALUES ($1, $2, 'linear', $3, $4, $5, '{}')`,
        [name, version, stage, `${name}/${version}`, "0".repeat(64)],
      );
    }
  };

  beforeAll(async () => {
    const endpoints = inject("endpoints");
    pool = createPool(endpoints, "quality-test");
    resources = createResources(loadConfig(), endpoints, quietLog, "quality-test");
    sink = await feedback(findProcessor("feedback").processor, { topology: TRIAGE, config: loadConfig(), endpoints, log: quietLog, resources });
    await python(["-m", "training", "migrate"], { DATABASE_URL: endpoints.databaseUrl, SWITCHBOARD_REGISTRY_SCHEMA: schema });
    await register(NAME, [[PRODUCTION, "production"], [SHADOW, "shadow"]]);
    await register(SOURCES_NAME, [[PRODUCTION, "production"]]);

    const rand = random(11);
    const other = (label: string) => {
      const rest = CLASSES.filter((c) => c !== label);
      return rest[Math.floor(rand() * rest.length)]!;
    };
    const records: PredictionFeedback[] = [];
    const count = PER_HOUR * HOURS;
    for (let i = 0; i < count; i++) {
      const inquiry = `quality-test-${run}-${i}`;
      const at = end - HOURS * HOUR + Math.round(((i + 0.5) * HOURS * HOUR) / count);
      const actual = CLASSES[Math.floor(rand() * CLASSES.length)]!;
      // Calibrated production: right with exactly the probability it states.
      const confidence = 0.45 + 0.53 * rand();
      const productionRight = rand() < confidence;
      const predicted = productionRight ? actual : other(actual);
      // Over-confident shadow: says 0.7-0.99, right 0.3 less often.
      const shadowConfidence = 0.7 + 0.29 * rand();
      const shadowPredicted = rand() < shadowConfidence - OVERCONFIDENCE ? actual : other(actual);
      const labelled = at <= end - HOUR;
      truth.push({ at, productionRight, labelled });
      records.push(record(inquiry, NAME, { predicted_label: predicted, confidence, occurred_at: at }));
      records.push(
        record(inquiry, NAME, {
          prediction_id: predictionId(inquiry, `${NAME}@shadow`),
          model: `${NAME}@${SHADOW}`,
          stage: "shadow",
          predicted_label: shadowPredicted,
          confidence: shadowConfidence,
          occurred_at: at,
        }),
      );
      // The agent's label judges production's prediction; it comes a few minutes later.
      if (labelled) records.push(record(inquiry, NAME, { predicted_label: predicted, confidence, label: actual, label_source: "agent", occurred_at: at + 5 * 60_000 }));
    }
    // Label sources: 5 predictions an agent labelled, 5 only a customer confirmed.
    for (let i = 0; i < 10; i++) {
      const inquiry = `quality-test-${run}-sources-${i}`;
      const at = end - HOUR + (i + 1) * 1000;
      records.push(record(inquiry, SOURCES_NAME, { model: `${SOURCES_NAME}@${PRODUCTION}`, confidence: 0.9, occurred_at: at }));
      const label = { model: `${SOURCES_NAME}@${PRODUCTION}`, confidence: 0.9, label: CLASSES[0]!, occurred_at: at + 60_000 };
      records.push(record(inquiry, SOURCES_NAME, { ...label, label_source: i < 5 ? "agent" : "customer" }));
    }
    await deliver(records);
  });

  afterAll(async () => {
    await sink?.close?.();
    await resources?.close();
    if (!pool) return;
    for (const table of ["labels", "feedback_predictions"]) {
      await pool.query(`DELETE FROM ${APP_SCHEMA}.${table} WHERE inquiry_id LIKE $1`, [`quality-test-${run}-%`]);
    }
    await pool.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await pool.end();
  });

  const quality = (window: string, now: number, model = NAME) =>
    liveQuality(pool, { registrySchema: schema, model, windows: [parseWindow(window)], now });
  const of = (reports: QualityReport[], stage: "production" | "shadow") => reports.find((r) => r.version.stage === stage)!;
  /** |estimate − measured| in the estimate's standard errors. */
  const errors = (r: QualityReport) => Math.abs(r.estimated!.estimate - r.measured!.accuracy) / r.estimated!.standardError;

  it("a calibrated model: the estimate is within its stated error of the measured accuracy, and trusted", async () => {
    // The five labelled hours as one window, then hour by hour.
    const labelledHours = of(await quality("5h", end - HOUR), "production");
    expect(labelledHours.predictions).toBe(5 * PER_HOUR);
    expect(labelledHours.labelled).toBe(5 * PER_HOUR);
    const right = truth.filter((t) => t.labelled && t.productionRight).length;
    expect(labelledHours.measured!.accuracy).toBeCloseTo(right / (5 * PER_HOUR), 12);
    expect(Object.keys(labelledHours.measured!.perClassRecall).sort()).toEqual([...CLASSES].sort());
    expect(errors(labelledHours)).toBeLessThan(Z_95);
    expect(labelledHours.calibration.trusted).toBe(true);
    expect(labelledHours.calibration.reason).toMatch(/^calibrated: /);

    const hours = await Promise.all([1, 2, 3, 4, 5].map(async (k) => of(await quality("1h", end - k * HOUR), "production")));
    for (const hour of hours) {
      expect(hour.predictions).toBe(PER_HOUR);
      expect(hour.labelled).toBe(PER_HOUR);
      // 99.7 % of calibrated windows are within 3 standard errors, 95 % within the stated 1.96
      expect(errors(hour)).toBeLessThan(3);
      expect(hour.calibration.trusted).toBe(true);
    }
    expect(hours.filter((h) => errors(h) < Z_95).length).toBeGreaterThanOrEqual(4);
  });

  it("an over-confident model: the check says its estimate cannot be trusted, and why", async () => {
    const shadow = of(await quality("5h", end - HOUR), "shadow");
    // The shadow's predictions take the labels of production's predictions of the same inquiries.
    expect(shadow.version.model).toBe(`${NAME}@${SHADOW}`);
    expect(shadow.predictions).toBe(5 * PER_HOUR);
    expect(shadow.labelled).toBe(5 * PER_HOUR);
    expect(shadow.estimated!.estimate - shadow.measured!.accuracy).toBeGreaterThan(OVERCONFIDENCE - 0.05);
    expect(errors(shadow)).toBeGreaterThan(10);
    expect(shadow.calibration.gap).toBeCloseTo(OVERCONFIDENCE, 1);
    expect(shadow.calibration.trusted).toBe(false);
    expect(shadow.calibration.reason).toMatch(/^over-confident: mean confidence 0\.\d{3} vs accuracy 0\.\d{3} on 2500 labelled \(gap \+0\.\d{3}, \d+\.\d× its sampling error 0\.\d{3}\), over 3×$/);
  });

  it("the hour whose labels have not come yet: an estimate, no measurement, unchecked", async () => {
    const latest = of(await quality("1h", end), "production");
    expect(latest.predictions).toBe(PER_HOUR);
    expect(latest.labelled).toBe(0);
    expect(latest.measured).toBeNull();
    expect(latest.estimated!.estimate).toBeGreaterThan(0.6);
    expect(latest.calibration.trusted).toBe(false);
    expect(latest.calibration.reason).toBe("unchecked: 0 labelled prediction(s) in the window, the calibration check needs 50");
    // By count: the last 1,000 predictions, of which the older half is labelled; the check uses those.
    const last = of(await quality("1000", end), "production");
    expect(last.predictions).toBe(1000);
    expect(last.labelled).toBe(PER_HOUR);
    expect(last.from!.getTime()).toBe(truth[truth.length - 1000]!.at);
    expect(last.to!.getTime()).toBe(truth.at(-1)!.at);
    expect(last.calibration.trusted).toBe(true);
  });

  it("counts agent and outcome labels, not a customer's confirmation unless asked to", async () => {
    const [sources] = await quality("1h", end, SOURCES_NAME);
    expect(sources!.predictions).toBe(10);
    expect(sources!.labelled).toBe(5);
    const [all] = await liveQuality(pool, { registrySchema: schema, model: SOURCES_NAME, windows: [parseWindow("1h")], now: end, labelSources: ["agent", "outcome", "customer"] });
    expect(all!.labelled).toBe(10);
  });

  it("sets the gauges of every served version", async () => {
    const registry = new Registry();
    const metrics = createQualityMetrics(registry);
    await refreshQuality(pool, metrics, { registrySchema: schema, windows: [parseWindow("5h")], now: end - HOUR });
    const values = (await registry.getSingleMetric("switchboard_quality_estimate_trusted")!.get()).values;
    expect(values.map((v) => [v.labels.model, v.labels.stage, v.labels.window, v.value]).sort()).toEqual(
      [
        [`${NAME}@${PRODUCTION}`, "production", "5h", 1],
        [`${NAME}@${SHADOW}`, "shadow", "5h", 0],
        [`${SOURCES_NAME}@${PRODUCTION}`, "production", "5h", 0],
      ].sort(),
    );
  });

  it("switchboard models --live prints the table; other models options still go to the training package", async () => {
    const env = { ...serviceEnv(inject("endpoints")), SWITCHBOARD_REGISTRY_SCHEMA: schema, LOG_LEVEL: "warn" };
    const cli = path.join(REPO_ROOT, "bin/switchboard.js");
    const { stdout } = await exec(process.execPath, [cli, "models", "--live", "--model", NAME, "--window", "7d", "--window", "1000"], { env });
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^model\s+stage\s+window\s+predictions\s+labelled\s+accuracy \[95 % CI\]\s+macro-F1\s+estimated ± 95 %\s+estimate$/);
    expect(lines).toHaveLength(2 + 4);
    expect(lines[2]).toMatch(new RegExp(`^${NAME}@v1\\s+production\\s+7d\\s+3000\\s+2500\\s+0\\.\\d{3} \\[0\\.\\d{3}, 0\\.\\d{3}\\]\\s+0\\.\\d{3}\\s+0\\.\\d{3} ± 0\\.\\d{3}\\s+trusted$`));
    expect(lines[3]).toMatch(new RegExp(`^${NAME}@v1\\s+production\\s+1000\\s+1000\\s+500\\s+.*trusted$`));
    expect(lines[4]).toMatch(new RegExp(`^${NAME}@v2\\s+shadow\\s+7d\\s+3000\\s+2500\\s+.*not trusted: over-confident: `));
    await expect(exec(process.execPath, [cli, "models", "--live", "--window", "2w"], { env })).rejects.toMatchObject({
      stderr: expect.stringMatching(/window "2w": expected a duration/),
    });
    // Without --live the command is the training package's, whose own parser rejects --window.
    await expect(exec(process.execPath, [cli, "models", "--window", "1h"], { env })).rejects.toMatchObject({
      stderr: expect.stringMatching(/unrecognized arguments: --window 1h/),
    });
  });
});
