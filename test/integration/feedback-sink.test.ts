import { randomUUID } from "node:crypto";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka } from "kafkajs";
import type pg from "pg";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { schemaRegistryOptions } from "../../config/security.js";
import { loadConfig } from "../../config/settings.js";
import { registerSchema, targetFor } from "../../schemas/registry.js";
import type { PredictionFeedback } from "../../schemas/types.generated.js";
import { feedback } from "../../sinks/feedback.js";
import { resolvedLabels } from "../../sinks/feedback-store.js";
import type { Endpoints } from "../../stack/index.js";
import { createTopicCodec } from "../../streams/codec.js";
import { DLQ_HEADERS } from "../../streams/dlq.js";
import { InvalidInputError } from "../../streams/errors.js";
import { createKafka } from "../../streams/kafka.js";
import { createRuntimeMetrics } from "../../streams/metrics.js";
import type { InputRecord, ProcessorImplementation } from "../../streams/processor.js";
import { createResources, type Resources } from "../../streams/resources.js";
import { startProcessor } from "../../streams/runtime.js";
import { createTopics } from "../../streams/topics.js";
import { TRIAGE, dlqTopicName, findProcessor, type Topology } from "../../streams/topology.js";
import { APP_SCHEMA, createPool } from "../../storage/postgres.js";
import { quietLog, readCommitted } from "../support/topics.js";

/**
 * The feedback sink against the real PostgreSQL (and, for the DLQ, the real runtime on Kafka):
 * predictions and labels in every order, the conflict rule of resolved_labels, replays.
 */

const run = randomUUID().slice(0, 8);
const T0 = Date.UTC(2025, 4, 12, 9, 30);
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

type Source = "agent" | "customer" | "outcome";

function prediction(inquiryId: string, overrides: Partial<PredictionFeedback> = {}): PredictionFeedback {
  return {
    prediction_id: `${inquiryId}:intent`,
    inquiry_id: inquiryId,
    task: "intent",
    model: "intent-linear@3",
    input_digest: "9f2c1b7a4e6d0c3b8a5f9e2d1c4b7a6f0e3d2c5b8a1f4e7d0c9b6a3f2e5d8c1b",
    features: { length: 92, language: "en", values: { active_features: 14 } },
    predicted_label: "track_order",
    confidence: 0.81,
    label: null,
    label_source: "model",
    occurred_at: T0,
    stage: "production",
    ...overrides,
  };
}

/** A label as the API and the webhooks write it: the prediction's fields repeated, its own source and time. */
const label = (inquiryId: string, source: Source, value: string, at: number): PredictionFeedback =>
  prediction(inquiryId, { label: value, label_source: source, occurred_at: at });

const delivery = (value: PredictionFeedback, offset = 0): InputRecord<PredictionFeedback> => ({
  topic: "predictions.feedback",
  partition: 0,
  offset: String(offset),
  key: value.inquiry_id,
  value,
  headers: {},
  timestamp: Date.now(),
});

/** Every order of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe("feedback sink (PostgreSQL)", () => {
  let db: pg.Pool;
  let resources: Resources;
  let sink: ProcessorImplementation;
  const { processor: declaration } = findProcessor("feedback");
  const newInquiryId = () => `feedback-test-${run}-${randomUUID().slice(0, 8)}`;

  /** As the runtime does: each record through process(), one flush() per `batchSize` records. */
  const deliver = async (records: readonly PredictionFeedback[], batchSize = records.length) => {
    for (let start = 0; start < records.length; start += batchSize) {
      for (const record of records.slice(start, start + batchSize)) expect(await sink.process(delivery(record), { log: quietLog })).toEqual([]);
      await sink.flush!();
    }
  };
  const resolved = async (inquiryId: string) => (await resolvedLabels(db, [`${inquiryId}:intent`])).get(`${inquiryId}:intent`);
  const labelsOf = async (inquiryId: string) =>
    (
      await db.query(`SELECT label, label_source, labeled_at FROM ${APP_SCHEMA}.labels WHERE inquiry_id = $1 ORDER BY labeled_at, label_source`, [inquiryId])
    ).rows;
  const predictionOf = async (inquiryId: string) =>
    (await db.query(`SELECT * FROM ${APP_SCHEMA}.feedback_predictions WHERE inquiry_id = $1`, [inquiryId])).rows;

  beforeAll(async () => {
    const endpoints = inject("endpoints");
    db = createPool(endpoints, "feedback-test");
    resources = createResources(loadConfig(), endpoints, quietLog, "feedback-test");
    sink = await feedback(declaration, { topology: TRIAGE, config: loadConfig(), endpoints, log: quietLog, resources });
  });

  afterAll(async () => {
    await sink?.close?.();
    await resources?.close();
    if (!db) return;
    for (const table of ["labels", "feedback_predictions"]) {
      await db.query(`DELETE FROM ${APP_SCHEMA}.${table} WHERE inquiry_id LIKE $1`, [`feedback-test-${run}-%`]);
    }
    await db.end();
  });

  /**
   * The conflict rule's cases: each delivered in every order, one record per flush and all in one
   * flush, into rows of their own; the resolved label must not depend on the order.
   */
  const CASES: ReadonlyArray<{ name: string; records: (id: string) => PredictionFeedback[]; wins: [Source, string, number]; kept: number; disputed: boolean }> = [
    {
      name: "a label days before its prediction",
      records: (id) => [label(id, "agent", "cancel_order", T0 - 2 * DAY), prediction(id)],
      wins: ["agent", "cancel_order", T0 - 2 * DAY],
      kept: 1,
      disputed: false,
    },
    {
      name: "two agent labels: the later one given wins",
      records: (id) => [prediction(id), label(id, "agent", "cancel_order", T0 + MINUTE), label(id, "agent", "change_order", T0 + 3 * DAY)],
      wins: ["agent", "change_order", T0 + 3 * DAY],
      kept: 2,
      disputed: true,
    },
    {
      name: "a customer's rating, then an older agent label: the agent wins",
      records: (id) => [prediction(id), label(id, "customer", "track_order", T0 + 2 * DAY), label(id, "agent", "cancel_order", T0 + MINUTE)],
      wins: ["agent", "cancel_order", T0 + MINUTE],
      kept: 2,
      disputed: true,
    },
    {
      name: "an outcome only",
      records: (id) => [prediction(id), label(id, "outcome", "track_order", T0 + 5 * DAY)],
      wins: ["outcome", "track_order", T0 + 5 * DAY],
      kept: 1,
      disputed: false,
    },
    {
      name: "an outcome over an older and a newer customer rating",
      records: (id) => [
        label(id, "customer", "cancel_order", T0 + MINUTE),
        label(id, "outcome", "track_order", T0 + DAY),
        label(id, "customer", "change_order", T0 + 2 * DAY),
      ],
      wins: ["outcome", "track_order", T0 + DAY],
      kept: 3,
      disputed: true,
    },
  ];

  for (const { name, records, wins, kept, disputed } of CASES) {
    it(`resolves ${name}, whatever order the records arrive in`, async () => {
      const orders = permutations(records("order"));
      for (const [i, order] of orders.entries()) {
        for (const batchSize of [1, order.length]) {
          const id = newInquiryId();
          const ofInquiry = order.map((record) => ({ ...record, inquiry_id: id, prediction_id: `${id}:intent` }));
          await deliver(ofInquiry, batchSize);
          const [source, value, at] = wins;
          expect(await resolved(id), `order ${i}, ${batchSize} per flush`).toMatchObject({
            label: value,
            label_source: source,
            labeled_at: new Date(at),
            judged_model: "intent-linear@3",
            judged_label: "track_order",
            label_count: kept,
            disputed,
          });
          expect(await labelsOf(id)).toHaveLength(kept);
          const hasPrediction = ofInquiry.some((r) => r.label_source === "model");
          expect(await predictionOf(id)).toMatchObject([{ predicted_label: "track_order", predicted_at: hasPrediction ? new Date(T0) : null }]);
        }
      }
    });
  }

  it("the latest agent label wins over customer and outcome labels given after it; every label is kept", async () => {
    const id = newInquiryId();
    await deliver([
      label(id, "agent", "cancel_order", T0 + MINUTE),
      label(id, "outcome", "track_order", T0 + DAY),
      label(id, "customer", "track_order", T0 + 2 * DAY),
      prediction(id),
    ]);
    expect(await resolved(id)).toMatchObject({ label: "cancel_order", label_source: "agent", label_count: 3, disputed: true });
    expect((await labelsOf(id)).map((l) => l.label_source)).toEqual(["agent", "outcome", "customer"]);
    const { rows } = await db.query(`SELECT label, label_source, correct, predicted_at FROM ${APP_SCHEMA}.labelled_predictions WHERE inquiry_id = $1`, [id]);
    expect(rows).toEqual([{ label: "cancel_order", label_source: "agent", correct: false, predicted_at: new Date(T0) }]);
  });

  it("an unlabelled prediction has no resolved label and is no training example", async () => {
    const id = newInquiryId();
    await deliver([prediction(id)]);
    expect(await resolved(id)).toBeUndefined();
    expect((await db.query(`SELECT 1 FROM ${APP_SCHEMA}.labelled_predictions WHERE inquiry_id = $1`, [id])).rowCount).toBe(0);
    expect(await predictionOf(id)).toHaveLength(1);
  });

  it("a replayed record changes nothing: no row rewritten, no label twice, in one flush or across several", async () => {
    const id = newInquiryId();
    const records = [
      prediction(id),
      label(id, "customer", "track_order", T0 + MINUTE),
      label(id, "agent", "cancel_order", T0 + 2 * MINUTE),
      label(id, "outcome", "cancel_order", T0 + DAY),
    ];
    // xmin is the transaction that wrote a row's current version: unchanged means not rewritten.
    const versions = async () =>
      (
        await db.query(
          `SELECT 'p' AS kind, xmin::text FROM ${APP_SCHEMA}.feedback_predictions WHERE inquiry_id = $1
           UNION ALL SELECT label_id, xmin::text FROM ${APP_SCHEMA}.labels WHERE inquiry_id = $1 ORDER BY 1`,
          [id],
        )
      ).rows;
    await deliver(records);
    const before = await versions();
    expect(before).toHaveLength(4);
    await deliver(records);
    await deliver([...records].reverse(), 1);
    await deliver([...records, ...records]);
    expect(await versions()).toEqual(before);
    expect(await resolved(id)).toMatchObject({ label: "cancel_order", label_source: "agent", label_count: 3 });
  });

  it("a newer prediction (the inquiry reprocessed) replaces the older one; an older one replayed does not; labels keep what they judged", async () => {
    const id = newInquiryId();
    await deliver([prediction(id), label(id, "agent", "cancel_order", T0 + MINUTE)]);
    const newer = prediction(id, { model: "intent-linear@4", predicted_label: "cancel_order", confidence: 0.9, occurred_at: T0 + DAY });
    await deliver([newer]);
    await deliver([prediction(id)]);
    // A label's copy of the prediction never replaces the prediction itself.
    await deliver([label(id, "customer", "cancel_order", T0 + 2 * DAY)]);
    expect(await predictionOf(id)).toMatchObject([{ model: "intent-linear@4", predicted_label: "cancel_order", predicted_at: new Date(T0 + DAY) }]);
    expect(await resolved(id)).toMatchObject({ label: "cancel_order", judged_model: "intent-linear@3", judged_label: "track_order" });
  });

  it("stores each prediction's stage: a shadow version's prediction is a row of its own beside production's, which its labels join", async () => {
    const id = newInquiryId();
    const shadow = prediction(id, {
      prediction_id: `${id}:intent@shadow`,
      model: "intent-linear@4",
      predicted_label: "cancel_order",
      features: { length: 92, language: "en", values: { latency_ms: 3.5 } },
      stage: "shadow",
    });
    await deliver([prediction(id), shadow, label(id, "agent", "cancel_order", T0 + MINUTE)]);
    const rows = (
      await db.query(`SELECT prediction_id, model, stage, features FROM ${APP_SCHEMA}.feedback_predictions WHERE inquiry_id = $1 ORDER BY stage`, [id])
    ).rows;
    expect(rows).toEqual([
      expect.objectContaining({ prediction_id: `${id}:intent`, model: "intent-linear@3", stage: "production" }),
      expect.objectContaining({ prediction_id: `${id}:intent@shadow`, model: "intent-linear@4", stage: "shadow", features: shadow.features }),
    ]);
    // The label judged production's prediction; the shadow is compared with it through the inquiry.
    expect(await resolved(id)).toMatchObject({ label: "cancel_order", judged_model: "intent-linear@3" });
    const { rows: compared } = await db.query(
      `SELECT s.model, s.predicted_label = l.label AS correct FROM ${APP_SCHEMA}.feedback_predictions s
         JOIN ${APP_SCHEMA}.labelled_predictions l ON l.inquiry_id = s.inquiry_id AND l.task = s.task
        WHERE s.inquiry_id = $1 AND s.task = 'intent' AND s.stage = 'shadow'`,
      [id],
    );
    expect(compared).toEqual([{ model: "intent-linear@4", correct: true }]);
  });

  it("refuses, for the DLQ, a record the tables cannot hold or that contradicts itself, naming the prediction and the reason", async () => {
    const id = newInquiryId();
    const refused: Array<[PredictionFeedback, RegExp]> = [
      [prediction(id, { label_source: "agent" }), /agent record of prediction .+:intent \(inquiry .+\): a label record \(source agent\) without a label/],
      [label(id, "customer", "   ", T0), /a label record \(source customer\) without a label/],
      [prediction(id, { label: "cancel_order" }), /a model prediction that carries a label/],
      [prediction(id, { confidence: Number.NaN }), /confidence: NaN is not a finite number/],
      [label(id, "agent", "cancel\u0000order", T0), /label: contains a NUL character/],
      [prediction(id, { occurred_at: Date.parse("9999-12-31T23:59:59.999Z") + 1 }), /occurred_at: .* not a time between/],
      [prediction(id, { prediction_id: "" }), /prediction_id is empty/],
    ];
    for (const [record, reason] of refused) {
      const refusal = expect(async () => sink.process(delivery(record), { log: quietLog })).rejects;
      await refusal.toBeInstanceOf(InvalidInputError);
      await refusal.toThrow(reason);
    }
    await sink.flush!();
    expect(await predictionOf(id)).toEqual([]);
  });

  it("refuses a declaration with an input that is not predictions.feedback", async () => {
    const endpoints = inject("endpoints");
    await expect(
      feedback({ ...declaration, inputs: ["inquiries.routed"] }, { topology: TRIAGE, config: loadConfig(), endpoints, log: quietLog, resources }),
    ).rejects.toThrow(/reads only predictions.feedback records, not input topic\(s\) inquiries.routed/);
  });
});

describe("feedback sink in the runtime (Kafka → PostgreSQL)", () => {
  const id = `feedback-${randomUUID().slice(0, 8)}`;
  const topicName = `test.${id}.predictions.feedback`;
  const topology: Topology = {
    name: `test-${id}`,
    topics: [{ name: topicName, description: "predictions.feedback", partitions: 3, retentionMs: 86_400_000, compacted: false, valueSchema: "predictions.feedback" }],
    processors: [{ name: `test-${id}`, description: "feedback under test", inputs: [topicName], outputs: [], metricsPort: 0 }],
    chains: [],
    connectors: [],
  };
  let endpoints: Endpoints;
  let kafka: Kafka;
  let db: pg.Pool;
  let resources: Resources;
  let sink: ProcessorImplementation;

  beforeAll(async () => {
    endpoints = inject("endpoints");
    db = createPool(endpoints, "feedback-runtime-test");
    kafka = createKafka(endpoints, id, quietLog);
    await createTopics(kafka, topology, quietLog);
    await registerSchema(endpoints, targetFor(topicName, "predictions.feedback"));
    resources = createResources(loadConfig(), endpoints, quietLog, "feedback-runtime-test");
  });

  afterAll(async () => {
    await sink?.close?.();
    await resources?.close();
    await db?.query(`DELETE FROM ${APP_SCHEMA}.labels WHERE inquiry_id LIKE $1`, [`${id}-%`]);
    await db?.query(`DELETE FROM ${APP_SCHEMA}.feedback_predictions WHERE inquiry_id LIKE $1`, [`${id}-%`]);
    await db?.end();
  });

  it("stores each record once and sends the bad ones to the DLQ with the reason", async () => {
    const registry = new SchemaRegistry(schemaRegistryOptions(endpoints));
    const codec = await createTopicCodec(registry, topology.topics);
    const good = Array.from({ length: 6 }, (_, i) => `${id}-${i}`);
    const bad = prediction(`${id}-bad`, { label_source: "outcome" });
    const records = [
      ...good.flatMap((inquiryId, i) => [label(inquiryId, "agent", "cancel_order", T0 + i), prediction(inquiryId)]),
      bad,
      // The same record produced twice (a publisher's retry) is one label.
      label(good[0]!, "agent", "cancel_order", T0),
    ];
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: topicName, messages: records.map((r) => ({ key: r.inquiry_id, value: codec.encode(topicName, r) })) });
    await producer.disconnect();

    const processor = topology.processors[0]!;
    sink = await feedback(processor, { topology, config: loadConfig(), endpoints, log: quietLog, resources });
    const running = await startProcessor(
      topology,
      processor,
      sink,
      { kafka, registry, metrics: createRuntimeMetrics(new Registry()), log: quietLog },
      { maxAttempts: 3, retryBackoffMs: 50, maxRecordBytes: 1_048_576, instanceId: "test", sessionTimeoutMs: 6_000, commitIntervalMs: 200, fromBeginning: true },
    );
    try {
      const dlq = await readCommitted(kafka, dlqTopicName(topicName), 1);
      expect(dlq.map((r) => [r.key, r.headers[DLQ_HEADERS.errorClass]])).toEqual([[`${id}-bad`, "InvalidInputError"]]);
      expect(dlq[0]!.headers[DLQ_HEADERS.errorMessage]).toMatch(/outcome record of prediction .+-bad:intent .*: a label record \(source outcome\) without a label/);
      await expect
        .poll(async () => (await db.query(`SELECT count(*)::int AS n FROM ${APP_SCHEMA}.labelled_predictions WHERE inquiry_id LIKE $1 AND predicted_at IS NOT NULL`, [`${id}-%`])).rows[0].n, {
          timeout: 30_000,
        })
        .toBe(good.length);
    } finally {
      await running.stop();
    }
    const { rows } = await db.query(`SELECT inquiry_id, count(*)::int AS labels FROM ${APP_SCHEMA}.labels WHERE inquiry_id LIKE $1 GROUP BY 1 ORDER BY 1`, [`${id}-%`]);
    expect(rows).toEqual(good.map((inquiryId) => ({ inquiry_id: inquiryId, labels: 1 })));
    // Counted once each: the label produced twice is one.
    expect(await sink.metrics!.getSingleMetricAsString("switchboard_feedback_labels_total")).toContain('switchboard_feedback_labels_total{task="intent",source="agent"} 6');
  });
});
