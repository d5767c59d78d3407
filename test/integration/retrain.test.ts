import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka } from "kafkajs";
import pg from "pg";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { requestRetraining } from "../../cli/retrain.js";
import { schemaRegistryOptions } from "../../config/security.js";
import { loadConfig, type Config } from "../../config/settings.js";
import { predictionId } from "../../processors/feedback.js";
import { retrain } from "../../processors/retrain.js";
import { JobStore } from "../../retrain/jobs.js";
import { createRetrainMetrics } from "../../retrain/metrics.js";
import { RegistryReader } from "../../retrain/registry.js";
import { createJobRunner } from "../../retrain/runner.js";
import { trainingCli } from "../../retrain/training-cli.js";
import { registerSchema, targetFor } from "../../schemas/registry.js";
import type { ModelDrift, ModelLifecycle } from "../../schemas/types.generated.js";
import type { Endpoints } from "../../stack/index.js";
import { APP_SCHEMA, createPool } from "../../storage/postgres.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { createRuntimeMetrics } from "../../streams/metrics.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import { createResources, type Resources } from "../../streams/resources.js";
import { startProcessor, type RunningProcessor } from "../../streams/runtime.js";
import { createTopics } from "../../streams/topics.js";
import type { Topology } from "../../streams/topology.js";
import { quietLog, readCommitted } from "../support/topics.js";
import { python, tempModelsDir } from "./models-fixture.js";

/**
 * The retrain processor on the real stack: its own topics and registry schema, the real training
 * CLI (sentiment, linear, 600 rows), shadow predictions written as the feedback sink stores them.
 * A request trains, shadows and promotes; a worse shadow is rejected; drift asks for a job (one
 * for two records) whose shadow never collects enough and is rejected for it; a CLI rollback is
 * relayed; a shadow started by hand is watched and judged; a job left running by a dead process
 * fails as interrupted; enough new labels ask for a retraining.
 */
describe("retrain processor (Kafka, PostgreSQL, the training CLI)", () => {
  const id = `retrain-${randomUUID().slice(0, 8)}`;
  const schema = `retrain_test_${id.slice(8)}`;
  const topic = (schemaName: string) => `test.${id}.${schemaName}`;
  const drift = topic("models.drift");
  const requests = topic("models.retrain");
  const lifecycle = topic("models.lifecycle");
  const declare = (name: string, valueSchema: string) => ({ name, description: valueSchema, partitions: 1, retentionMs: 86_400_000, compacted: false, valueSchema });
  const topology: Topology = {
    name: `test-${id}`,
    topics: [declare(drift, "models.drift"), declare(requests, "models.retrain"), declare(lifecycle, "models.lifecycle")],
    processors: [{ name: `test-${id}`, description: "retrain under test", inputs: [drift, requests], outputs: [lifecycle], metricsPort: 0 }],
    chains: [],
    connectors: [],
  };
  const SHADOW_TIMEOUT_MS = 25_000;
  let endpoints: Endpoints;
  let db: pg.Pool;
  let kafka: Kafka;
  let codec: TopicCodec;
  let resources: Resources;
  let implementation: ProcessorImplementation;
  let running: RunningProcessor;
  let start: () => Promise<void>;
  let modelsDir: string;
  let env: NodeJS.ProcessEnv;
  let first: string;
  const gateEnv = { SWITCHBOARD_GATE_MIN_GAIN: process.env.SWITCHBOARD_GATE_MIN_GAIN, SWITCHBOARD_GATE_MAX_RECALL_DROP: process.env.SWITCHBOARD_GATE_MAX_RECALL_DROP };

  const production = async () =>
    (await db.query<{ version: string }>(`SELECT version FROM ${pg.escapeIdentifier(schema)}.versions WHERE model = 'sentiment' AND stage = 'production'`)).rows[0]?.version;
  const stageOf = async (version: string) =>
    (await db.query<{ stage: string }>(`SELECT stage FROM ${pg.escapeIdentifier(schema)}.versions WHERE model = 'sentiment' AND version = $1`, [version])).rows[0]?.stage;
  const latestJob = async () =>
    (
      await db.query<{ id: string; state: string; outcome: string | null; version: string | null; reason: string | null; trig: string; numbers: Record<string, number> }>(
        `SELECT * FROM ${APP_SCHEMA}.retrain_jobs WHERE registry = $1 AND model = 'sentiment' ORDER BY id DESC LIMIT 1`,
        [schema],
      )
    ).rows[0];
  const untilJob = async (done: (job: NonNullable<Awaited<ReturnType<typeof latestJob>>>) => boolean, what: string, timeout = 90_000) => {
    let job: Awaited<ReturnType<typeof latestJob>>;
    const reached = async () => {
      job = await latestJob();
      return job ? done(job) : false;
    };
    await expect.poll(reached, { timeout, interval: 200, message: what }).toBe(true);
    return job!;
  };

  const produce = async (topicName: string, key: string, value: ModelDrift) => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic: topicName, acks: -1, messages: [{ key, value: codec.encode(topicName, value) }] });
    await producer.disconnect();
  };
  /** As `switchboard retrain --model sentiment --reason ...` does, to this test's topic. */
  const requestRetrain = (reason: string) => requestRetraining(endpoints, schema, quietLog, { model: "sentiment", reason, requestedBy: "retrain-test" }, topology.topics[1]!);

  /** Lifecycle records of one version, in topic order. */
  const lifecycleOf = async (version: string, expected: number): Promise<ModelLifecycle[]> => {
    const all = await readCommitted(kafka, lifecycle, expected, { timeoutMs: 30_000, settleMs: 1_000 });
    const records = await Promise.all(all.map(async (r) => (await codec.decode(lifecycle, r.value)) as ModelLifecycle));
    return records.filter((r) => r.model === `sentiment@${version}`);
  };

  /**
   * `pairs` inquiries scored by production and by the shadow, as the feedback sink stores them;
   * the first `labelled` carry an agent label, which production predicted right for the first
   * `productionRight` and the shadow for the first `shadowRight`.
   */
  const scoreShadow = async (shadowVersion: string, o: { pairs: number; labelled: number; productionRight: number; shadowRight: number; shadowConfidence: number; shadowLatencyMs: number }) => {
    const productionModel = `sentiment@${(await production())!}`;
    for (let i = 0; i < o.pairs; i++) {
      const inquiryId = `${id}-${shadowVersion}-${i}`;
      const truth = "negative";
      const row = (predictionIdOf: string, model: string, stage: string, label: string, confidence: number, latency: number) =>
        db.query(
          `INSERT INTO ${APP_SCHEMA}.feedback_predictions (prediction_id, inquiry_id, task, model, predicted_label, confidence, input_digest, features, predicted_at, stage)
           VALUES ($1, $2, 'sentiment', $3, $4, $5, 'digest', $6, now(), $7)`,
          [predictionIdOf, inquiryId, model, label, confidence, { length: 40, language: "en", values: { latency_ms: latency } }, stage],
        );
      await row(predictionId(inquiryId, "sentiment"), productionModel, "production", i < o.productionRight ? truth : "positive", 0.8, 5);
      await row(predictionId(inquiryId, "sentiment@shadow"), `sentiment@${shadowVersion}`, "shadow", i < o.shadowRight ? truth : "positive", o.shadowConfidence, o.shadowLatencyMs);
      if (i < o.labelled) {
        await db.query(
          `INSERT INTO ${APP_SCHEMA}.labels (label_id, prediction_id, inquiry_id, task, label, label_source, labeled_at, judged_model, judged_label)
           VALUES ($1, $2, $3, 'sentiment', $4, 'agent', now(), $5, $6)`,
          [`${inquiryId}-label`, predictionId(inquiryId, "sentiment"), inquiryId, truth, productionModel, i < o.productionRight ? truth : "positive"],
        );
      }
    }
  };

  /** A job runner of this registry outside the processor, as another instance would be. */
  const standaloneRunner = (
    owner: string,
    o: { cooldownMs: number; maxSeconds: number; newLabels: number },
    python: () => Promise<string> = async () => "python3",
  ) =>
    createJobRunner({
      pool: db,
      store: new JobStore(db, schema),
      registry: new RegistryReader(db, schema),
      cli: trainingCli(python, env, quietLog),
      metrics: createRetrainMetrics(),
      log: quietLog,
      owner,
      staleAfterMs: 60_000,
      maxMemoryMb: 3_072,
      limit: 600,
      shadow: { inquiries: 20, minLabelled: 10, maxConfidenceDrop: 0.05, maxLatencyRatio: 1.5, timeoutMs: 60_000 },
      ...o,
    });

  beforeAll(async () => {
    endpoints = inject("endpoints");
    db = createPool(endpoints, "retrain-test");
    kafka = createKafka(endpoints, id, quietLog);
    await createTopics(kafka, topology, quietLog);
    for (const t of topology.topics) await registerSchema(endpoints, targetFor(t.name, t.valueSchema));
    codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), topology.topics);
    modelsDir = tempModelsDir("retrain");
    env = { DATABASE_URL: endpoints.databaseUrl, SWITCHBOARD_REGISTRY_SCHEMA: schema, SWITCHBOARD_MODELS_DIR: modelsDir };
    // Every candidate passes the gate (the same 600 rows retrained barely differ), so the shadow evaluation decides.
    process.env.SWITCHBOARD_GATE_MIN_GAIN = "-1";
    process.env.SWITCHBOARD_GATE_MAX_RECALL_DROP = "1";
    await python(["-m", "training", "migrate"], env);
    await python(["-m", "training", "train", "--model", "sentiment", "--family", "linear", "--limit", "600", "--seed", "1", "--json"], env);
    first = (await production())!;

    const config: Config = {
      ...loadConfig(),
      registrySchema: schema,
      modelsDir,
      logLevel: "warn",
      retrainPollMs: 300,
      lifecycleRelayPollMs: 300,
      retrainCooldownMs: 0,
      retrainNewLabels: 0,
      retrainLimit: 600,
      retrainStaleAfterMs: 3_000,
      retrainMaxSeconds: 300,
      retrainShadowInquiries: 20,
      retrainShadowMinLabelled: 10,
      retrainShadowTimeoutMs: SHADOW_TIMEOUT_MS,
    };
    resources = createResources(config, endpoints, quietLog, "retrain-test");
    start = async () => {
      const processor = topology.processors[0]!;
      implementation = await retrain(processor, { topology, config, endpoints, log: quietLog, resources });
      running = await startProcessor(
        topology,
        processor,
        implementation,
        { kafka, registry: new SchemaRegistry(schemaRegistryOptions(endpoints)), metrics: createRuntimeMetrics(new Registry()), log: quietLog },
        { maxAttempts: 3, retryBackoffMs: 50, maxRecordBytes: 1_048_576, instanceId: "test", sessionTimeoutMs: 6_000, commitIntervalMs: 200, fromBeginning: true },
      );
    };
    await start();
  });

  afterAll(async () => {
    await running?.stop();
    await resources?.close();
    for (const [key, value] of Object.entries(gateEnv)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    if (db) {
      await db.query(`DELETE FROM ${APP_SCHEMA}.labels WHERE inquiry_id LIKE $1`, [`${id}-%`]);
      await db.query(`DELETE FROM ${APP_SCHEMA}.feedback_predictions WHERE inquiry_id LIKE $1`, [`${id}-%`]);
      await db.query(`DELETE FROM ${APP_SCHEMA}.retrain_requests WHERE job_id IN (SELECT id FROM ${APP_SCHEMA}.retrain_jobs WHERE registry = $1)`, [schema]);
      await db.query(`DELETE FROM ${APP_SCHEMA}.retrain_jobs WHERE registry = $1`, [schema]);
      await db.query(`DELETE FROM ${APP_SCHEMA}.lifecycle_relay WHERE registry = $1`, [schema]);
      await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await db.end();
    }
    if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
  });

  let second: string;

  it("a request trains on the feedback, shadows the candidate and promotes it once it beats production; every step on models.lifecycle in order", async () => {
    await expect(requestRetraining(endpoints, schema, quietLog, { model: "nope", reason: "x", requestedBy: "retrain-test" }, topology.topics[1]!)).rejects.toThrow(
      `the registry (${schema}) has no model nope: train it first (switchboard train --model nope)`,
    );
    await requestRetrain("retrain test: end to end");
    const shadowing = await untilJob((job) => job.state === "shadow" || job.state === "failed", "the job to reach its shadow evaluation");
    expect(shadowing.reason ?? "").not.toMatch(/failed/);
    expect(shadowing.state).toBe("shadow");
    second = shadowing.version!;
    expect(await stageOf(second)).toBe("shadow");
    expect(await production()).toBe(first);

    await scoreShadow(second, { pairs: 20, labelled: 12, productionRight: 6, shadowRight: 10, shadowConfidence: 0.82, shadowLatencyMs: 6 });
    const ended = await untilJob((job) => job.state === "done" || job.state === "failed", "the shadow evaluation to end the job");
    expect(ended.outcome).toBe("promoted");
    expect(ended.reason).toMatch(/accuracy 0\.833 vs production 0\.500 on 12 labelled/);
    expect(ended.numbers).toMatchObject({ shadow_scored: 20, shadow_labelled: 12, shadow_latency_p95_ms: 6, production_latency_p95_ms: 5 });
    expect(await production()).toBe(second);

    // The first version's three (trained by hand), then the retrained one's four.
    await expect.poll(async () => (await lifecycleOf(second, 7)).map((r) => r.event), { timeout: 30_000 }).toEqual(["trained", "evaluated", "shadow_started", "promoted"]);
    const records = await lifecycleOf(second, 7);
    expect(records.map((r) => r.stage)).toEqual(["candidate", "candidate", "shadow", "production"]);
    for (const record of records) {
      expect(record.task).toBe("sentiment");
      expect(record.artifact_uri).toBe(`sentiment/${second}`);
      expect(record.lineage).toMatchObject({ trigger: "command", job: ended.id, reason: "retrain test: end to end" });
    }
    expect(records[3]!.metrics).toMatchObject({ shadow_accuracy: 10 / 12, production_accuracy: 0.5, shadow_scored: 20 });
    expect(records[3]!.reason).toBe(ended.reason!.replace(/^shadow: /, ""));
    expect((await lifecycleOf(first, 7)).map((r) => r.event)).toEqual(["trained", "evaluated", "promoted"]);
    expect(await implementation.metrics!.getSingleMetricAsString("switchboard_retrain_jobs_total")).toContain('switchboard_retrain_jobs_total{model="sentiment",outcome="promoted"} 1');
  });

  it("a worse shadow is rejected and production keeps serving", async () => {
    await requestRetrain("retrain test: a worse one");
    const shadowing = await untilJob((job) => job.version !== second && (job.state === "shadow" || job.state === "failed"), "the second job's shadow");
    expect(shadowing.state).toBe("shadow");
    const third = shadowing.version!;
    await scoreShadow(third, { pairs: 20, labelled: 12, productionRight: 10, shadowRight: 4, shadowConfidence: 0.8, shadowLatencyMs: 5 });
    const ended = await untilJob((job) => job.id === shadowing.id && (job.state === "done" || job.state === "failed"), "the second job to end");
    expect(ended.outcome).toBe("rejected");
    expect(ended.reason).toMatch(/accuracy 0\.333 vs production 0\.833 on 12 labelled/);
    expect(await production()).toBe(second);
    expect(await stageOf(third)).toBe("archived");
    await expect.poll(async () => (await lifecycleOf(third, 11)).map((r) => `${r.event}:${r.stage}`), { timeout: 30_000 }).toEqual([
      "trained:candidate",
      "evaluated:candidate",
      "shadow_started:shadow",
      "rejected:archived",
    ]);
  });

  it("critical drift of the production version asks for one job (two records join it); drift below the severity or of another version does not; a shadow that collects too little is rejected", async () => {
    const record = (model: string, severity: ModelDrift["severity"]): ModelDrift => ({
      task: "sentiment",
      model,
      feature: "language",
      window_start: Date.now() - 60_000,
      window_end: Date.now(),
      sample_size: 500,
      statistic: "chi_square",
      value: 42,
      threshold: 7.8,
      severity,
      detected_at: Date.now(),
    });
    const before = (await latestJob())!.id;
    await produce(drift, "sentiment", record(`sentiment@${second}`, "warning"));
    await produce(drift, "sentiment", record(`sentiment@${first}`, "critical"));
    await produce(drift, "sentiment", record(`sentiment@${second}`, "critical"));
    await produce(drift, "sentiment", record(`sentiment@${second}`, "critical"));
    const shadowing = await untilJob((job) => job.id !== before && (job.state === "shadow" || job.state === "failed"), "the drift job's shadow");
    expect(shadowing.trig).toBe("drift");
    expect(shadowing.state).toBe("shadow");
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${APP_SCHEMA}.retrain_requests WHERE job_id = $1`, [shadowing.id]);
    expect(rows[0]!.n).toBe(2);
    const metrics = await implementation.metrics!.getSingleMetricAsString("switchboard_retrain_requests_total");
    expect(metrics).toContain('switchboard_retrain_requests_total{model="sentiment",trigger="drift",result="ignored"} 2');
    expect(metrics).toContain('switchboard_retrain_requests_total{model="sentiment",trigger="drift",result="joined"} 1');

    const ended = await untilJob((job) => job.id === shadowing.id && (job.state === "done" || job.state === "failed"), "the unscored shadow to time out", SHADOW_TIMEOUT_MS + 30_000);
    expect(ended.outcome).toBe("rejected");
    expect(ended.reason).toMatch(/timed out .* with 0 of 20 inquiries scored beside production, 0 of 10 labelled/);
    expect(await production()).toBe(second);
    const records = await lifecycleOf(shadowing.version!, 15);
    expect(records.at(-1)?.event).toBe("rejected");
    expect(JSON.parse(records[0]!.lineage.drift!)).toMatchObject({ model: `sentiment@${second}`, severity: "critical" });
  });

  it("relays a rollback made with the CLI", async () => {
    await python(["-m", "training", "rollback", "--model", "sentiment", "--json"], env);
    await expect.poll(async () => (await lifecycleOf(first, 16)).map((r) => r.event), { timeout: 30_000 }).toEqual(["trained", "evaluated", "promoted", "rolled_back"]);
    const rolledBack = (await lifecycleOf(first, 16)).at(-1)!;
    expect(rolledBack).toMatchObject({ stage: "production", artifact_uri: `sentiment/${first}`, reason: `rollback from ${second} to ${first}` });
  });

  it("watches and judges a shadow version started by hand", async () => {
    const before = (await latestJob())!.id;
    const { stdout } = await python(["-m", "training", "train", "--model", "sentiment", "--family", "linear", "--limit", "600", "--seed", "3", "--shadow", "--json"], env);
    const shadow = String((JSON.parse(stdout.trim().split("\n").at(-1)!) as { version: string }).version);
    expect(await stageOf(shadow)).toBe("shadow");
    const adopted = await untilJob((job) => job.id !== before && job.state === "shadow", "the hand-made shadow to be adopted", 20_000);
    expect(adopted).toMatchObject({ trig: "shadow", version: shadow });
    await scoreShadow(shadow, { pairs: 20, labelled: 12, productionRight: 9, shadowRight: 9, shadowConfidence: 0.6, shadowLatencyMs: 5 });
    const ended = await untilJob((job) => job.id === adopted.id && job.state !== "shadow", "the adopted shadow to be judged", 20_000);
    expect(ended.outcome).toBe("rejected");
    expect(ended.reason).toMatch(/mean confidence 0\.600 vs 0\.800 \(drop 0\.200, bound 0\.05\)/);
    expect(await production()).toBe(first);
  });

  it("fails a job whose process died while training, saying so", async () => {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO ${APP_SCHEMA}.retrain_jobs (registry, model, state, trig, owner, heartbeat_at, started_at)
       VALUES ($1, 'sentiment', 'training', 'command', 'gone/1/dead', now() - interval '1 hour', now() - interval '1 hour') RETURNING id`,
      [schema],
    );
    const ended = await untilJob((job) => job.id === rows[0]!.id && job.state === "failed", "the dead job to be failed", 20_000);
    expect(ended.reason).toMatch(/interrupted: the process running its training \(gone\/1\/dead\) stopped before the gate decided/);
  });

  it("a shadow evaluation goes on after the processor restarts", async () => {
    await requestRetrain("retrain test: across a restart");
    const shadowing = await untilJob((job) => job.state === "shadow", "the job's shadow");
    const owner = (await db.query<{ owner: string }>(`SELECT owner FROM ${APP_SCHEMA}.retrain_jobs WHERE id = $1`, [shadowing.id])).rows[0]!.owner;
    await running.stop();
    await start();
    await scoreShadow(shadowing.version!, { pairs: 20, labelled: 12, productionRight: 8, shadowRight: 9, shadowConfidence: 0.8, shadowLatencyMs: 5 });
    const ended = await untilJob((job) => job.id === shadowing.id && job.state !== "shadow", "the restarted processor to judge the shadow", 30_000);
    expect(ended.outcome).toBe("promoted");
    const after = (await db.query<{ owner: string }>(`SELECT owner FROM ${APP_SCHEMA}.retrain_jobs WHERE id = $1`, [shadowing.id])).rows[0]!.owner;
    expect(after).not.toBe(owner);
    expect(await production()).toBe(shadowing.version);
    first = shadowing.version!;
  });

  it("enough new labels of the production version's predictions ask for a retraining; fewer do not", async () => {
    // The queued job waits an hour after the last one: the processor under test leaves it alone.
    const runner = standaloneRunner("labels-test", { cooldownMs: 3_600_000, maxSeconds: 60, newLabels: 5 });
    const label = (i: number) =>
      db.query(
        `INSERT INTO ${APP_SCHEMA}.labels (label_id, prediction_id, inquiry_id, task, label, label_source, labeled_at, judged_model, judged_label)
         VALUES ($1, $1, $1, 'sentiment', 'negative', 'agent', now(), $2, 'positive')`,
        [`${id}-labels-${i}`, `sentiment@${first}`],
      );
    const before = (await latestJob())!.id;
    for (let i = 0; i < 4; i++) await label(i);
    await runner.checkLabels();
    expect((await latestJob())!.id).toBe(before);
    await label(4);
    await runner.checkLabels();
    await runner.checkLabels();
    const job = (await latestJob())!;
    expect(job).toMatchObject({ trig: "labels", state: "queued", lineage: { trigger: "labels", labels: "5" } });
    const { rows } = await db.query<{ jobs: number }>(`SELECT count(*)::int AS jobs FROM ${APP_SCHEMA}.retrain_jobs WHERE registry = $1 AND id > $2`, [schema, before]);
    expect(rows[0]!.jobs).toBe(1);
  });

  it("a training past its time limit fails its job with the limit's message", async () => {
    // This runner alone: the processor under test would take the job too.
    await running.stop();
    const runner = standaloneRunner("limit-test", { cooldownMs: 0, maxSeconds: 0.01, newLabels: 0 });
    // Joins the labels job still waiting out its cooldown, and lets it start now.
    await runner.request({ id: `${id}-limit`, model: "sentiment", trigger: "command", reason: "time limit", requestedBy: "retrain-test", requestedAt: Date.now(), lineage: { trigger: "command" } });
    await runner.tick();
    await runner.idle();
    const job = (await latestJob())!;
    expect(job).toMatchObject({ trig: "labels", state: "failed", outcome: "failed" });
    expect(job.reason).toMatch(/^training failed \(exit code 124: time limit exceeded: the run took longer than --max-seconds 0\.01/);
  });

  it("a training stopped by a shutdown goes back to the queue", async () => {
    const runner = standaloneRunner("stop-test", { cooldownMs: 0, maxSeconds: 300, newLabels: 0 });
    await runner.request({ id: `${id}-stop`, model: "sentiment", trigger: "command", reason: "stopped", requestedBy: "retrain-test", requestedAt: Date.now(), lineage: { trigger: "command" } });
    await runner.tick();
    expect((await latestJob())!.state).toBe("training");
    await runner.stop();
    expect(await latestJob()).toMatchObject({ state: "queued", owner: null, reason: null });
  });

  it("a training whose process had not started when the shutdown came goes back to the queue without running", async () => {
    // The Python environment is still being prepared when the stop comes: nothing is running to stop yet.
    let ready!: () => void;
    const preparing = new Promise<void>((resolve) => (ready = resolve));
    const runner = standaloneRunner("stop-before-spawn-test", { cooldownMs: 0, maxSeconds: 300, newLabels: 0 }, () => preparing.then(() => "python3"));
    await runner.request({ id: `${id}-stop-before-spawn`, model: "sentiment", trigger: "command", reason: "stopped early", requestedBy: "retrain-test", requestedAt: Date.now(), lineage: { trigger: "command" } });
    await runner.tick();
    expect((await latestJob())!.state).toBe("training");
    const stopped = runner.stop();
    ready();
    await stopped;
    expect(await latestJob()).toMatchObject({ state: "queued", owner: null, reason: null });
  });
});
