import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { venvPython } from "../../cli/python-env.js";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig, REPO_ROOT, type Config } from "../../config/settings.js";
import { drift } from "../../processors/drift.js";
import type { ModelDrift, PredictionFeedback } from "../../schemas/types.generated.js";
import type { InputRecord, ProcessorImplementation } from "../../streams/processor.js";
import { createResources, type Resources } from "../../streams/resources.js";
import { TRIAGE, findProcessor } from "../../streams/topology.js";
import { APP_SCHEMA, createPool } from "../../storage/postgres.js";
import { productionVersion, referenceStream, type ProductionVersion, type Shift } from "../support/reference-stream.js";
import { quietLog } from "../support/topics.js";

/**
 * The drift processor on the real PostgreSQL and the production versions of the registry:
 * streams drawn from a version's own reference raise nothing; shifted ones raise one event
 * within a bounded number of records; a restart resumes the window; a redelivered record is not
 * counted twice and produces again the drift records its first delivery did.
 */

const run = randomUUID().slice(0, 8);
const WINDOW = 500;
const config: Config = { ...loadConfig(), driftWindowRows: WINDOW, driftWindowMs: 0, driftRaiseAfter: 3, driftClearAfter: 3, driftCooldownMs: 3_600_000 };
const { processor: declaration } = findProcessor("drift");

describe("drift processor", () => {
  let db: pg.Pool;
  let resources: Resources;
  let intent: ProductionVersion;
  let sentiment: ProductionVersion;
  let topicSeq = 0;

  /** A processor with its own input topic name, so its offsets are its own. */
  const start = async (): Promise<ProcessorImplementation> => drift(declaration, { topology: TRIAGE, config, endpoints: inject("endpoints"), log: quietLog, resources });

  const forget = async (version: ProductionVersion) =>
    db.query(`DELETE FROM ${APP_SCHEMA}.drift_monitors WHERE model = $1`, [`${version.model}@${version.version}`]);

  /** Feeds records as the runtime does (one flush per `batch`); returns the drift records with the index of the record that caused each. */
  const feed = async (processor: ProcessorImplementation, topic: string, records: Iterable<PredictionFeedback>, firstOffset = 0, batch = 250) => {
    const events: { at: number; record: ModelDrift }[] = [];
    let offset = firstOffset;
    let i = 0;
    for (const value of records) {
      const input: InputRecord<PredictionFeedback> = { topic, partition: 0, offset: String(offset++), key: value.inquiry_id, value, headers: {}, timestamp: value.occurred_at };
      for (const out of await processor.process(input, { log: quietLog })) events.push({ at: i, record: out.value as ModelDrift });
      i++;
      if (i % batch === 0) await processor.flush!();
    }
    await processor.flush!();
    return events;
  };

  function* take<T>(source: Iterator<T>, n: number): Generator<T> {
    for (let i = 0; i < n; i++) yield source.next().value as T;
  }

  beforeAll(async () => {
    const endpoints = inject("endpoints");
    db = createPool(endpoints, "drift-test");
    resources = createResources(config, endpoints, quietLog, "drift-test");
    const pool = await resources.postgres();
    intent = await productionVersion(pool, "intent", config.modelsDir);
    sentiment = await productionVersion(pool, "sentiment", config.modelsDir);
  });

  afterAll(async () => {
    if (db) {
      for (const version of [intent, sentiment]) if (version) await forget(version);
      await db.query(`DELETE FROM ${APP_SCHEMA}.drift_offsets WHERE topic LIKE $1`, [`drift-test-${run}-%`]);
      await db.query(`DELETE FROM ${APP_SCHEMA}.drift_outbox WHERE topic LIKE $1`, [`drift-test-${run}-%`]);
      await db.end();
    }
    await resources?.close();
  });

  const topic = () => `drift-test-${run}-${topicSeq++}`;

  /** As the language detector abstains on 2 % of short English requests: "und" is no language shift. */
  function* withUndetermined(records: Iterable<PredictionFeedback>): Generator<PredictionFeedback> {
    let i = 0;
    for (const r of records) yield i++ % 40 === 0 ? { ...r, features: { ...r.features, language: "und" } } : r;
  }

  it("raises nothing on 50,000 predictions drawn from the model's own reference", async () => {
    for (const version of [intent, sentiment]) {
      await forget(version);
      const processor = await start();
      const events = await feed(processor, topic(), withUndetermined(take(referenceStream(version, { task: version.model, seed: 7 }), 50_000)), 0, 1_000);
      expect(events.map((e) => `${e.record.feature} ${e.record.statistic} ${e.record.value}`)).toEqual([]);
      const state = (await db.query(`SELECT state FROM ${APP_SCHEMA}.drift_monitors WHERE model = $1`, [`${version.model}@${version.version}`])).rows[0];
      expect(state.state.window.index).toBe(50_000 / WINDOW);
    }
  }, 300_000);

  const SHIFTS: readonly [Shift, string][] = [
    ["label_mix", "label"],
    ["language", "language"],
    ["length", "length"],
  ];

  it.each(SHIFTS)("raises one %s event within four windows of the shift", async (shift, feature) => {
    await forget(intent);
    const processor = await start();
    const name = topic();
    const stable = await feed(processor, name, take(referenceStream(intent, { task: "intent", seed: 11 }), 5 * WINDOW));
    expect(stable).toEqual([]);
    const shifted = await feed(
      processor,
      name,
      take(referenceStream(intent, { task: "intent", seed: 12, shift, startAt: Date.UTC(2026, 1, 1) }), 10 * WINDOW),
      5 * WINDOW,
    );
    const raised = shifted.filter((e) => e.record.feature === feature);
    expect(raised).toHaveLength(1);
    expect(raised[0]!.at).toBeLessThan(4 * WINDOW);
    expect(raised[0]!.record).toMatchObject({ task: "intent", model: `intent@${intent.version}`, sample_size: WINDOW });
    expect(["warning", "critical"]).toContain(raised[0]!.record.severity);
    expect(raised[0]!.record.value).toBeGreaterThan(raised[0]!.record.threshold);
  }, 120_000);

  it("resumes an open window after a restart", async () => {
    await forget(intent);
    const name = topic();
    const stream = referenceStream(intent, { task: "intent", seed: 21 });
    await feed(await start(), name, take(stream, 300));
    const resumed = await start();
    await feed(resumed, name, take(stream, WINDOW - 300), 300);
    const state = (await db.query(`SELECT state FROM ${APP_SCHEMA}.drift_monitors WHERE model = $1`, [`intent@${intent.version}`])).rows[0];
    expect(state.state.window).toMatchObject({ index: 1, count: 0 });
  }, 60_000);

  it("counts a redelivered record once and produces again the drift record it caused", async () => {
    await forget(intent);
    const name = topic();
    const processor = await start();
    await feed(processor, name, take(referenceStream(intent, { task: "intent", seed: 31 }), 2 * WINDOW));
    // The window that raises closes on the last record of this batch, whose Kafka transaction is taken to abort after the save.
    const shifted = [...take(referenceStream(intent, { task: "intent", seed: 32, shift: "label_mix" }), 3 * WINDOW)];
    const first = await feed(processor, name, shifted, 2 * WINDOW, 3 * WINDOW);
    expect(first.map((e) => e.record.feature)).toContain("label");
    const again = await start();
    const redelivered = await feed(again, name, shifted, 2 * WINDOW, 3 * WINDOW);
    expect(redelivered.map((e) => e.record)).toEqual(first.map((e) => e.record));
    const state = (await db.query(`SELECT state FROM ${APP_SCHEMA}.drift_monitors WHERE model = $1`, [`intent@${intent.version}`])).rows[0];
    expect(state.state.window.index).toBe(5);
  }, 60_000);

  /** Training texts of a version, drawn with another seed than the test's reference sample. */
  const trainingTexts = (version: ProductionVersion, rows: number, seed: number): string[] =>
    JSON.parse(
      execFileSync(venvPython(), ["-m", "training.reference_texts", path.join(version.directory, "manifest.json"), "--rows", String(rows), "--seed", String(seed)], {
        cwd: REPO_ROOT,
        encoding: "utf8",
        maxBuffer: 64 << 20,
      }),
    ) as string[];

  /**
   * Archives `texts` as inquiries `model` answered `daysAhead` days from now, as the archive and
   * feedback sinks would, in one statement: they are the latest the model answered, whatever
   * other tests left, and a timer run sees all of them or none.
   */
  const answered = async (model: string, texts: readonly string[], tag: string, daysAhead: number) => {
    const ids = texts.map((_, i) => `drift-test-${run}-${tag}-${i}`);
    await db.query(
      `WITH rows AS (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(id, text, n)),
            archived AS (
              INSERT INTO ${APP_SCHEMA}.inquiries (inquiry_id, channel, source_id, text, language, language_confidence, redaction_count, received_at, cleaned_at)
              SELECT id, 'api', id, text, 'en', 1, 0, now(), now() FROM rows)
       INSERT INTO ${APP_SCHEMA}.feedback_predictions (prediction_id, inquiry_id, task, model, predicted_label, confidence, input_digest, features, predicted_at)
       SELECT id, id, 'intent', $3, 'x', 0.9, '0', '{}', now() + make_interval(days => $4) + make_interval(secs => n / 1000.0) FROM rows`,
      [ids, texts, model, daysAhead],
    );
  };

  it("tests text drift with a domain classifier on a timer and produces its event in the next record's transaction", async () => {
    await forget(intent);
    const model = `intent@${intent.version}`;
    await db.query(`DELETE FROM ${APP_SCHEMA}.drift_monitors WHERE model = $1`, [`${model}#text`]);
    const textConfig: Config = { ...config, driftTextIntervalMs: 300, driftTextRows: 200 };
    const timerResources = createResources(textConfig, inject("endpoints"), quietLog, "drift-text-test");
    try {
      const processor = await drift(declaration, { topology: TRIAGE, config: textConfig, endpoints: inject("endpoints"), log: quietLog, resources: timerResources });
      const name = topic();
      const stream = referenceStream(intent, { task: "intent", seed: 51 });
      let offset = 0;
      const textValue = async () => (await processor.metrics!.getSingleMetric("switchboard_drift_statistic")!.get()).values.find((v) => v.labels["feature"] === "text")?.value;
      const testsRun = async () => (await processor.metrics!.getSingleMetric("switchboard_drift_text_tests_total")!.get()).values.reduce((s, v) => s + v.value, 0);
      /** After a timer run that started once the rows were in (the second run from now), the next record's outputs. */
      const nextTest = async () => {
        const before = await testsRun();
        for (let waited = 0; waited < 60_000 && (await testsRun()) < before + 2; waited += 50) await new Promise((r) => setTimeout(r, 50));
        const events = await feed(processor, name, take(stream, 1), offset++);
        return { auc: (await textValue())!, events: events.map((e) => e.record).filter((r) => r.feature === "text") };
      };
      await answered(model, trainingTexts(intent, 200, 5), "same", 1);
      await feed(processor, name, take(stream, 1), offset++); // the version is watched from its first record
      const stable = await nextTest();
      expect(stable.events).toEqual([]);
      expect(stable.auc).toBeLessThan(0.6);
      // Long help-desk emails where the model was trained on one-line chat requests.
      const urgency = await productionVersion(db, "urgency", config.modelsDir);
      await answered(model, trainingTexts(urgency, 200, 6), "other", 2);
      const shifted = await nextTest();
      expect(shifted.auc).toBeGreaterThan(0.9);
      expect(shifted.auc).toBeGreaterThan(shifted.events[0]!.threshold);
      expect(shifted.events).toHaveLength(1);
      expect(shifted.events[0]).toMatchObject({ feature: "text", statistic: "domain_classifier_auc", severity: "critical", sample_size: 200 });
    } finally {
      await timerResources.close();
      await db.query(`DELETE FROM ${APP_SCHEMA}.feedback_predictions WHERE inquiry_id LIKE $1`, [`drift-test-${run}-%`]);
      await db.query(`DELETE FROM ${APP_SCHEMA}.inquiries WHERE inquiry_id LIKE $1`, [`drift-test-${run}-%`]);
      await db.query(`DELETE FROM ${APP_SCHEMA}.drift_monitors WHERE model = $1`, [`${model}#text`]);
    }
  }, 180_000);

  it("does not count labels, and leaves versions the registry does not know unwatched", async () => {
    const processor = await start();
    const [prediction] = [...take(referenceStream(intent, { task: "intent", seed: 41 }), 1)];
    const label = { ...prediction!, label: "cancel_order", label_source: "agent" as const };
    const unknown = { ...prediction!, model: `intent@not-a-version-${run}` };
    expect(await feed(processor, topic(), [label, unknown])).toEqual([]);
  });
});
