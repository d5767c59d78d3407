import { randomUUID } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka, Producer } from "kafkajs";
import pg from "pg";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { toInquiry, SAMPLE_INQUIRIES } from "../../cli/samples/index.js";
import { schemaRegistryOptions } from "../../config/security.js";
import { loadConfig } from "../../config/settings.js";
import { loadModelVersion, type ServedModel } from "../../models/index.js";
import { modelInput, predictionId } from "../../processors/feedback.js";
import { classify } from "../../processors/classify.js";
import { sentiment } from "../../processors/sentiment.js";
import { urgency } from "../../processors/urgency/index.js";
import { registerSchema, targetFor } from "../../schemas/registry.js";
import type {
  InquiryClassified,
  InquiryCleaned,
  InquirySentiment,
  InquiryUrgency,
  LifecycleEvent,
  ModelLifecycle,
  PredictionFeedback,
} from "../../schemas/types.generated.js";
import type { Endpoints } from "../../stack/index.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { createRuntimeMetrics } from "../../streams/metrics.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import { createResources, type Resources } from "../../streams/resources.js";
import { startProcessor, type RunningProcessor } from "../../streams/runtime.js";
import { createTopics } from "../../streams/topics.js";
import { findProcessor, TRIAGE, type ProcessorDeclaration, type Topology } from "../../streams/topology.js";
import { createPool } from "../../storage/postgres.js";
import { quietLog, readCommitted } from "../support/topics.js";
import { capturedLog, eventually, python, tempModelsDir, train } from "./models-fixture.js";

/**
 * Lifecycle-driven hot swap and shadow serving, as a processor runs them: the sentiment processor
 * in the real runtime on topics of its own, its models from a registry schema of this run's own
 * (written by the training CLI), woken by records on a models.lifecycle topic of its own, with
 * the registry poll set to ten minutes so that only a record can explain a swap.
 */

const id = `lifecycle-${randomUUID().slice(0, 8)}`;
const topic = (schema: string, partitions = 3) => ({
  name: `test.${id}.${schema}`,
  description: schema,
  partitions,
  retentionMs: 86_400_000,
  compacted: false,
  valueSchema: schema,
});
const cleanedTopic = topic("inquiries.cleaned");
const sentimentTopic = topic("inquiries.sentiment");
const feedbackTopic = topic("predictions.feedback");
const lifecycleTopic = topic("models.lifecycle", 1);
const processor: ProcessorDeclaration = {
  name: `test-${id}`,
  description: "sentiment under test",
  inputs: [cleanedTopic.name],
  outputs: [sentimentTopic.name, feedbackTopic.name],
  metricsPort: 0,
  concurrency: 32,
};
const topology: Topology = {
  name: `test-${id}`,
  topics: [cleanedTopic, sentimentTopic, feedbackTopic, lifecycleTopic],
  processors: [processor],
  chains: [],
  connectors: [],
};

/** A swap this long after its record is a failure: the poll (ten minutes) is far off, a linear version loads in well under a second. */
const SWAP_BOUND_MS = 5_000;

function cleaned(inquiryId: string, n: number): InquiryCleaned {
  const sample = toInquiry(SAMPLE_INQUIRIES[n % SAMPLE_INQUIRIES.length]!);
  return {
    inquiry_id: inquiryId,
    envelope: sample.envelope,
    subject: sample.subject,
    text: sample.body,
    language: "en",
    language_confidence: 0.99,
    redaction_count: 0,
    entities: [],
    cleaned_at: Date.now(),
  };
}

describe("lifecycle-driven hot swap and shadow serving (real Kafka, PostgreSQL, registry, training CLI)", () => {
  const schema = `lifecycle_test_${process.pid}_${Date.now().toString(36)}`;
  const { log, entries } = capturedLog();
  let endpoints: Endpoints;
  let pool: pg.Pool;
  let modelsDir: string;
  let env: NodeJS.ProcessEnv;
  let kafka: Kafka;
  let codec: TopicCodec;
  let producer: Producer;
  let resources: Resources;
  let implementation: ProcessorImplementation;
  let running: RunningProcessor;
  let served: ServedModel;
  let first: string;
  let second: string;
  let shadowDir: string;
  /** Every inquiry produced so far, for readCommitted's counts (the topics are read from the start). */
  const produced: InquiryCleaned[] = [];
  let shadowRecords = 0;

  const cli = (...args: string[]) => python(["-m", "training", ...args, "--model", "sentiment"], env);
  const versionOf = (directory: string) => path.basename(directory);

  async function announce(event: LifecycleEvent, version: string, stage: string): Promise<number> {
    const record: ModelLifecycle = {
      task: "sentiment",
      model: `sentiment@${version}`,
      event,
      stage,
      metrics: {},
      artifact_uri: `sentiment/${version}`,
      reason: "model-lifecycle test",
      occurred_at: Date.now(),
      lineage: {},
    };
    await producer.send({ topic: lifecycleTopic.name, messages: [{ key: "sentiment", value: codec.encode(lifecycleTopic.name, record) }] });
    return performance.now();
  }

  async function produce(values: readonly InquiryCleaned[]): Promise<void> {
    await producer.send({
      topic: cleanedTopic.name,
      messages: values.map((value) => ({ key: value.inquiry_id, value: codec.encode(cleanedTopic.name, value) })),
    });
    produced.push(...values);
  }

  /** The outputs of the inquiries `prefix` names, decoded; waits for every output of every inquiry produced so far. */
  async function outputs(prefix: string) {
    const sentimentRecords = await readCommitted(kafka, sentimentTopic.name, produced.length);
    const feedbackRecords = await readCommitted(kafka, feedbackTopic.name, produced.length + shadowRecords);
    const decode = <T>(name: string, records: { value: Buffer | null }[]) =>
      records.map((r) => codec.decodeOwn(name, r.value!) as T).filter((v) => (v as { inquiry_id: string }).inquiry_id.startsWith(prefix));
    return {
      scored: decode<InquirySentiment>(sentimentTopic.name, sentimentRecords),
      feedback: decode<PredictionFeedback>(feedbackTopic.name, feedbackRecords),
    };
  }

  /** What `directory`'s version predicts for each inquiry, outside the processor. */
  async function reference(directory: string, inquiries: readonly InquiryCleaned[]): Promise<Map<string, { label: string; confidence: number }>> {
    const model = await loadModelVersion(directory, quietLog);
    try {
      const predictions = await model.predict(inquiries.map(modelInput));
      return new Map(inquiries.map((inquiry, i) => [inquiry.inquiry_id, predictions[i]!]));
    } finally {
      await model.release();
    }
  }

  beforeAll(async () => {
    endpoints = inject("endpoints");
    pool = createPool(endpoints, "model-lifecycle-test");
    modelsDir = tempModelsDir("model-lifecycle");
    // A gate that passes every candidate: each training run changes production (or the shadow).
    env = {
      DATABASE_URL: endpoints.databaseUrl,
      SWITCHBOARD_REGISTRY_SCHEMA: schema,
      SWITCHBOARD_GATE_MIN_GAIN: "-1",
      SWITCHBOARD_GATE_MAX_RECALL_DROP: "1",
    };
    await python(["-m", "training", "migrate"], env);
    first = (await train(modelsDir, { task: "sentiment", family: "linear", limit: 600, register: true, env })).linear!;
    second = (await train(modelsDir, { task: "sentiment", family: "linear", limit: 600, seed: 1, register: true, env })).linear!;

    kafka = createKafka(endpoints, processor.name, quietLog);
    await createTopics(kafka, topology, quietLog);
    for (const t of topology.topics) await registerSchema(endpoints, targetFor(t.name, t.valueSchema));
    const registry = new SchemaRegistry(schemaRegistryOptions(endpoints));
    codec = await createTopicCodec(registry, topology.topics);
    producer = kafka.producer();
    await producer.connect();

    const config = { ...loadConfig(), registrySchema: schema, modelsDir, modelPollMs: 600_000 };
    resources = createResources(config, endpoints, log, processor.name, { lifecycleTopic });
    implementation = await sentiment(processor, { topology, config, endpoints, log: quietLog, resources });
    served = await resources.productionModel("sentiment");
    running = await startProcessor(
      topology,
      processor,
      implementation,
      { kafka, registry, metrics: createRuntimeMetrics(new Registry()), log: quietLog },
      { maxAttempts: 3, retryBackoffMs: 50, maxRecordBytes: 1_048_576, instanceId: "test", sessionTimeoutMs: 6_000, commitIntervalMs: 200 },
    );
    await eventually(() => entries.some((e) => e.msg === "following the model lifecycle"), "the lifecycle consumer to join", 60_000);
  });

  afterAll(async () => {
    await running?.stop();
    await implementation?.close?.();
    await resources?.close();
    await producer?.disconnect();
    await pool?.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await pool?.end();
    if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
  });

  it("swaps production within a bound of its lifecycle record, not waiting for the poll", async () => {
    expect(served.current.directory).toBe(second);
    await cli("rollback");
    // The registry changed, nothing said so: the served version stays (the poll is ten minutes off).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(served.current.directory).toBe(second);

    const sent = await announce("rolled_back", versionOf(first), "production");
    await eventually(() => served.current.directory === first, "the swap to the rolled-back version", SWAP_BOUND_MS);
    const tookMs = performance.now() - sent;
    expect(tookMs).toBeLessThan(SWAP_BOUND_MS);
    // A record about a version already served, or delivered again, changes nothing.
    await announce("rolled_back", versionOf(first), "production");
    await announce("trained", versionOf(second), "candidate");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await resources.metrics.getSingleMetricAsString("switchboard_model_swaps_total")).toContain(
      'switchboard_model_swaps_total{model="sentiment",stage="production",trigger="lifecycle"} 1',
    );
  });

  it("serves a registered shadow beside production: shadow records on predictions.feedback, outputs from production", async () => {
    shadowDir = (await train(modelsDir, { task: "sentiment", family: "linear", limit: 600, seed: 2, register: true, shadow: true, env })).linear!;
    expect(shadowDir).toBeDefined();
    await announce("shadow_started", versionOf(shadowDir), "shadow");
    await eventually(() => served.shadow?.directory === shadowDir, "the shadow version to be opened", SWAP_BOUND_MS);
    expect(served.current.directory).toBe(first);

    const prefix = `${id}-shadow-`;
    const inquiries = Array.from({ length: 40 }, (_, i) => cleaned(`${prefix}${i}`, i));
    shadowRecords += inquiries.length;
    await produce(inquiries);
    const { scored, feedback } = await outputs(prefix);

    const production = await reference(first, inquiries);
    const shadow = await reference(shadowDir, inquiries);
    expect(scored.map((s) => s.inquiry_id).sort()).toEqual(inquiries.map((i) => i.inquiry_id).sort());
    for (const record of scored) {
      expect(record.model).toBe(`sentiment@${versionOf(first)}`);
      expect(record.label).toBe(production.get(record.inquiry_id)!.label);
      expect(record.score).toBeCloseTo(production.get(record.inquiry_id)!.confidence, 6);
    }
    expect(feedback).toHaveLength(2 * inquiries.length);
    for (const inquiry of inquiries) {
      const own = feedback.filter((f) => f.inquiry_id === inquiry.inquiry_id);
      const main = own.find((f) => f.stage === "production")!;
      const beside = own.find((f) => f.stage === "shadow")!;
      expect(main).toMatchObject({ prediction_id: predictionId(inquiry.inquiry_id, "sentiment"), model: `sentiment@${versionOf(first)}` });
      expect(main.predicted_label).toBe(production.get(inquiry.inquiry_id)!.label);
      expect(beside).toMatchObject({
        prediction_id: predictionId(inquiry.inquiry_id, "sentiment@shadow"),
        model: `sentiment@${versionOf(shadowDir)}`,
        task: "sentiment",
        label_source: "model",
        input_digest: main.input_digest,
      });
      expect(beside.predicted_label).toBe(shadow.get(inquiry.inquiry_id)!.label);
      for (const record of [main, beside]) expect(record.features.values.latency_ms).toBeGreaterThan(0);
    }
    expect(await resources.metrics.getSingleMetricAsString("switchboard_shadow_predictions_total")).toContain(
      `switchboard_shadow_predictions_total{model="sentiment"} ${inquiries.length}`,
    );
  });

  it("promotes the shadow: production swaps to it and the shadow is dropped", async () => {
    await cli("promote", "--version", versionOf(shadowDir), "--after-shadow", "--numbers", "{}", "--reason", "model-lifecycle test");
    const sent = await announce("promoted", versionOf(shadowDir), "production");
    await eventually(() => served.current.directory === shadowDir && served.shadow === undefined, "production to be the promoted shadow", SWAP_BOUND_MS);
    expect(performance.now() - sent).toBeLessThan(SWAP_BOUND_MS);
    expect(entries.some((e) => e.msg === "shadow model version dropped" && e.shadow === versionOf(shadowDir))).toBe(true);

    const prefix = `${id}-promoted-`;
    const inquiries = Array.from({ length: 10 }, (_, i) => cleaned(`${prefix}${i}`, i));
    await produce(inquiries);
    const { scored, feedback } = await outputs(prefix);
    expect(scored.map((s) => s.model)).toEqual(inquiries.map(() => `sentiment@${versionOf(shadowDir)}`));
    expect(feedback.map((f) => f.stage)).toEqual(inquiries.map(() => "production"));
  });

  it("classify and urgency emit their shadows' feedback records too; outputs, out-of-scope threshold and signals from production", async () => {
    const trained = async (task: string, model: string, options: { seed?: number; shadow?: boolean } = {}) =>
      (await train(modelsDir, { task, model, family: "linear", limit: 600, register: true, env, ...options })).linear!;
    const intent = await trained("intent", "intent");
    // A model asked for before it has a production version is looked up again once it has one (classify's multilingual pair).
    await expect(resources.productionModel("category")).rejects.toThrow();
    const category = await trained("intent", "category");
    expect((await resources.productionModel("category")).current.version).toBe(path.basename(category));
    const urgencyDir = await trained("urgency", "urgency");
    const intentShadow = await trained("intent", "intent", { seed: 1, shadow: true });
    const urgencyShadow = await trained("urgency", "urgency", { seed: 1, shadow: true });
    const config = { ...loadConfig(), registrySchema: schema, modelsDir, modelPollMs: 600_000 };
    const deps = { topology: TRIAGE, config, endpoints, log: quietLog, resources };
    const classifier = await classify(findProcessor("classify").processor, deps);
    const scorer = await urgency(findProcessor("urgency").processor, deps);
    const inquiry = cleaned(`${id}-classify-0`, 3);
    const input = { topic: "inquiries.cleaned", partition: 0, offset: "0", key: inquiry.inquiry_id, value: inquiry, headers: {}, timestamp: Date.now() };

    const classified = await classifier.process(input, { log: quietLog });
    const intentModel = await resources.productionModel("intent");
    expect(intentModel.shadow?.directory).toBe(intentShadow);
    expect(classified.map((o) => o.topic)).toEqual(["inquiries.classified", "predictions.feedback", "predictions.feedback", "predictions.feedback"]);
    const [out, ...records] = classified.map((o) => o.value) as [InquiryClassified, ...PredictionFeedback[]];
    const byStage = (task: string) => records.filter((r) => r.task === task).map((r) => [r.stage, r.model, r.prediction_id]);
    expect(out.model).toBe(`intent@${versionOf(intent)}`);
    expect(byStage("intent")).toEqual([
      ["production", `intent@${versionOf(intent)}`, predictionId(inquiry.inquiry_id, "intent")],
      ["shadow", `intent@${versionOf(intentShadow)}`, predictionId(inquiry.inquiry_id, "intent@shadow")],
    ]);
    expect(byStage("category")).toEqual([["production", `category@${versionOf(category)}`, predictionId(inquiry.inquiry_id, "category")]]);
    const production = (await reference(intent, [inquiry])).get(inquiry.inquiry_id)!;
    expect(out.intent).toBe(production.label);
    // The intent version carries its out-of-scope operating point (chosen with CLINC150's out-of-scope queries).
    // It is measured, not served (served: false), so classify takes the configured fallback.
    const point = (JSON.parse(readFileSync(path.join(intent, "manifest.json"), "utf8")) as { operating_point: { threshold: number; served?: boolean } | null })
      .operating_point;
    expect(point?.threshold).toBeGreaterThan(0);
    expect(point?.served).toBe(false);
    expect(out.out_of_scope).toBe(production.confidence < config.outOfScopeThreshold);

    const scored = await scorer.process(input, { log: quietLog });
    expect(scored.map((o) => o.topic)).toEqual(["inquiries.urgency", "predictions.feedback", "predictions.feedback"]);
    const [level, main, beside] = scored.map((o) => o.value) as [InquiryUrgency, PredictionFeedback, PredictionFeedback];
    expect(level.model).toBe(`urgency@${versionOf(urgencyDir)}`);
    expect([main.stage, main.model, beside.stage, beside.model]).toEqual(["production", level.model, "shadow", `urgency@${versionOf(urgencyShadow)}`]);
    // The signals are the input's, the same beside either version.
    const signals = (r: PredictionFeedback) => Object.keys(r.features.values).filter((k) => k.startsWith("signal_"));
    expect(signals(beside)).toEqual(signals(main));
    for (const record of [...records, main, beside]) expect(record.features.values.latency_ms).toBeGreaterThan(0);
  });

  it("a shadow version that does not load is refused and counted; production serves alone", async () => {
    const broken = (await train(modelsDir, { task: "sentiment", family: "linear", limit: 600, seed: 3, register: true, shadow: true, env })).linear!;
    const model = path.join(broken, "model.onnx");
    writeFileSync(model, readFileSync(model).subarray(0, 1000));
    await announce("shadow_started", versionOf(broken), "shadow");
    await eventually(
      () => entries.some((e) => e.msg === "shadow model version refused; production serves alone" && e.directory === broken),
      "the broken shadow to be refused",
      SWAP_BOUND_MS,
    );
    expect(served.shadow).toBeUndefined();
    expect(await resources.metrics.getSingleMetricAsString("switchboard_model_refusals_total")).toContain(
      'switchboard_model_refusals_total{model="sentiment",stage="shadow"} 1',
    );

    const prefix = `${id}-refused-`;
    const inquiries = Array.from({ length: 5 }, (_, i) => cleaned(`${prefix}${i}`, i));
    await produce(inquiries);
    const { scored, feedback } = await outputs(prefix);
    expect(scored).toHaveLength(inquiries.length);
    expect(feedback.map((f) => [f.stage, f.model])).toEqual(inquiries.map(() => ["production", `sentiment@${versionOf(served.current.directory)}`]));
  });

  it("answers each inquiry in flight during a swap once, by one version, and its records say which", async () => {
    const before = served.current.directory;
    const prefix = `${id}-swap-`;
    let n = 0;
    const batch = () => Array.from({ length: 20 }, () => cleaned(`${prefix}${n}`, n++));
    // The rollback and its record while inquiries stream in, 20 every 50 ms; ten batches more after the swap.
    const swapping = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await cli("rollback");
      await announce("rolled_back", "unknown", "production");
    })();
    let after = 0;
    while (after < 10 && n < 20_000) {
      await produce(batch());
      if (served.current.directory !== before) after++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await swapping;
    const inquiries = produced.filter((i) => i.inquiry_id.startsWith(prefix));
    const { scored, feedback } = await outputs(prefix);

    // Once each: nothing lost, nothing twice.
    expect(scored.map((s) => s.inquiry_id).sort()).toEqual(inquiries.map((i) => i.inquiry_id).sort());
    expect(feedback.map((f) => f.inquiry_id).sort()).toEqual(inquiries.map((i) => i.inquiry_id).sort());
    const versions = new Map([before, served.current.directory].map((directory) => [`sentiment@${versionOf(directory)}`, directory]));
    const references = new Map<string, Map<string, { label: string; confidence: number }>>();
    for (const [model, directory] of versions) references.set(model, await reference(directory, inquiries));
    const feedbackOf = new Map(feedback.map((f) => [f.inquiry_id, f]));
    for (const record of scored) {
      // One version: the output's, its feedback record's, and the prediction that version makes.
      const answered = references.get(record.model);
      expect(answered, `${record.inquiry_id} answered by ${record.model}`).toBeDefined();
      expect(record.label).toBe(answered!.get(record.inquiry_id)!.label);
      expect(record.score).toBeCloseTo(answered!.get(record.inquiry_id)!.confidence, 6);
      const own = feedbackOf.get(record.inquiry_id)!;
      expect(own.model).toBe(record.model);
      expect(own.predicted_label).toBe(record.label);
      expect(own.confidence).toBe(record.score);
    }
    // The swap came mid-stream: both versions answered some.
    const counts = new Map<string, number>();
    for (const record of scored) counts.set(record.model, (counts.get(record.model) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual([...versions.keys()].sort());
  });
});
