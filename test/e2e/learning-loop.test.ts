import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { postgresOptions, schemaRegistryOptions } from "../../config/security.js";
import { loadConfig } from "../../config/settings.js";
import type { InquiryClassified, InquiryResponse, ModelDrift, ModelLifecycle } from "../../schemas/types.generated.js";
import { createTopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { bitextSample, type LabelledRequest } from "../integration/kb-fixture.js";
import { python } from "../integration/models-fixture.js";
import { get, post, startApi, tailTopic, testKey, until, type ApiProcess, type Tail } from "../support/api.js";
import { quietLog } from "../support/topics.js";
import { preparePipeline, startPipeline, type Pipeline } from "./pipeline.js";

/**
 * The learning loop through the deployment `switchboard up` runs (the triage chain, the sinks,
 * drift, retrain and the API), on a registry of its own whose production models were trained on
 * a few hundred rows: live traffic raises a drift event (the API's inquiries are not the data
 * set's templates, and then the intent mix moves to two intents), which retrains
 * intent on more data and the agents' labels (given through the API); the candidate passes the
 * gate, scores live traffic as the shadow, is judged on the inquiries agents labelled, and is
 * promoted; the processors swap on the lifecycle record and new inquiries are answered by it.
 * Every inquiry is answered once, whichever version classified it.
 */

const endpoints = inject("endpoints");
const run = randomUUID().slice(0, 8);
const registrySchema = `loop_e2e_${run}`;
const WINDOW = 100;
const SHIFTED_INTENTS = new Set(["cancel_order", "track_order"]);

let db: pg.Pool;
let pipeline: Pipeline;
let api: ApiProcess;
let token: string;
let modelsDir: string;
let drift: Tail<ModelDrift>;
let lifecycle: Tail<ModelLifecycle>;
let classified: Tail<InquiryClassified>;
let responses: Tail<InquiryResponse>;
const sent = new Map<string, LabelledRequest>();

const trainingEnv = () => ({ DATABASE_URL: endpoints.databaseUrl, SWITCHBOARD_REGISTRY_SCHEMA: registrySchema, SWITCHBOARD_MODELS_DIR: modelsDir });
const production = async (model: string) =>
  (await db.query<{ version: string }>(`SELECT version FROM ${pg.escapeIdentifier(registrySchema)}.versions WHERE model = $1 AND stage = 'production'`, [model])).rows[0]?.version;

/** Sends inquiries through the API and waits until each is answered. */
async function ask(requests: readonly LabelledRequest[]): Promise<string[]> {
  const ids: string[] = [];
  for (const request of requests) {
    const response = await post(`${api.url}/v1/inquiries`, token, { body: request.text, customer: { id: `loop-${run}` }, metadata: { test_run: run } }, { "idempotency-key": randomUUID() });
    expect(response.status).toBe(202);
    const id = ((await response.json()) as { inquiry_id: string }).inquiry_id;
    sent.set(id, request);
    ids.push(id);
  }
  const answered = await until(async () => {
    const done = new Set(responses.records().map((r) => r.value.inquiry_id));
    return ids.every((id) => done.has(id)) ? true : undefined;
  }, 240_000, 500);
  expect(answered, "every inquiry answered").toBe(true);
  return ids;
}

/**
 * An agent confirms or corrects intent and category of each inquiry, as the console would. The
 * label endpoint reads the archive, which the sink writes after the response is on Kafka (later
 * still while a retraining holds the cores), so an agent sees an inquiry there first.
 */
async function label(ids: readonly string[]): Promise<void> {
  const archived = await until(async () => {
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM switchboard.predictions WHERE inquiry_id = ANY($1) AND task IN ('intent', 'category') AND predicted_at IS NOT NULL`,
      [ids],
    );
    return Number(rows[0]!.n) === 2 * ids.length ? true : undefined;
  }, 240_000, 500);
  expect(archived, "the inquiries' predictions archived").toBe(true);
  for (const id of ids) {
    const truth = sent.get(id)!;
    const response = await post(`${api.url}/v1/inquiries/${id}/labels`, token, { intent: truth.intent, category: truth.category });
    expect(response.status, `labels of ${id}`).toBe(202);
  }
}

const lifecycleOf = (model: string) => lifecycle.records().map((r) => r.value).filter((r) => r.model.startsWith(`${model}@`));

beforeAll(async () => {
  await preparePipeline(endpoints);
  db = new pg.Pool(postgresOptions(endpoints));
  const config = loadConfig();
  // The production versions of this test's registry: a few hundred rows each, so more data and labels can beat them.
  modelsDir = mkdtempSync(path.join(os.tmpdir(), "switchboard-loop-"));
  symlinkSync(path.join(config.modelsDir, "embedder"), path.join(modelsDir, "embedder"));
  await python(["-m", "training", "migrate"], trainingEnv());
  await python(["-m", "training", "export-embedder"], trainingEnv());
  // respond's reply guardrail: it does not start without a production toxicity model.
  await python(["-m", "training", "export-toxicity"], trainingEnv());
  await python(["-m", "training", "train", "--task", "intent", "--family", "linear", "--limit", "400", "--seed", "1"], trainingEnv());
  for (const model of ["sentiment", "urgency"]) await python(["-m", "training", "train", "--model", model, "--family", "linear", "--limit", "400", "--seed", "1"], trainingEnv());

  const kafka = createKafka(endpoints, `loop-e2e-${run}`, quietLog);
  const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  drift = await tailTopic<ModelDrift>(kafka, codec, "models.drift", () => true);
  lifecycle = await tailTopic<ModelLifecycle>(kafka, codec, "models.lifecycle", () => true);
  classified = await tailTopic<InquiryClassified>(kafka, codec, "inquiries.classified", (v) => sent.has(v.inquiry_id));
  responses = await tailTopic<InquiryResponse>(kafka, codec, "inquiries.responses", (v) => sent.has(v.inquiry_id));

  const env = {
    SWITCHBOARD_REGISTRY_SCHEMA: registrySchema,
    SWITCHBOARD_MODELS_DIR: modelsDir,
    SWITCHBOARD_MODEL_POLL_MS: "600000", // only the lifecycle record may explain a swap
    SWITCHBOARD_DRIFT_WINDOW_ROWS: String(WINDOW),
    SWITCHBOARD_DRIFT_RAISE_AFTER: "2",
    SWITCHBOARD_DRIFT_TEXT_INTERVAL_MS: "0",
    SWITCHBOARD_RETRAIN_NEW_LABELS: "0",
    SWITCHBOARD_RETRAIN_POLL_MS: "500",
    SWITCHBOARD_LIFECYCLE_RELAY_POLL_MS: "300",
    SWITCHBOARD_RETRAIN_COOLDOWN_MS: "0",
    SWITCHBOARD_RETRAIN_LIMIT: "2000",
    SWITCHBOARD_RETRAIN_MAX_SECONDS: "600",
    SWITCHBOARD_RETRAIN_SHADOW_INQUIRIES: "80",
    SWITCHBOARD_RETRAIN_SHADOW_MIN_LABELLED: "40",
    SWITCHBOARD_RETRAIN_SHADOW_TIMEOUT_MS: "600000",
    // On a shared 2-core machine both versions' latencies are mostly waiting for a core (a CI run:
    // shadow p95 46 ms against 24 ms); the latency bound has its own test (retrain.test.ts).
    SWITCHBOARD_RETRAIN_SHADOW_MAX_LATENCY_RATIO: "5",
  };
  pipeline = await startPipeline(endpoints, env, "chained");
  api = await startApi(endpoints, env);
  ({ token } = await testKey(endpoints));
}, 1_800_000);

afterAll(async () => {
  await Promise.all([drift, lifecycle, classified, responses].map((t) => t?.close()));
  await api?.stop();
  await pipeline?.stop();
  if (db) {
    await db.query(`DELETE FROM switchboard.retrain_requests WHERE job_id IN (SELECT id FROM switchboard.retrain_jobs WHERE registry = $1)`, [registrySchema]);
    await db.query(`DELETE FROM switchboard.retrain_jobs WHERE registry = $1`, [registrySchema]);
    await db.query(`DELETE FROM switchboard.lifecycle_relay WHERE registry = $1`, [registrySchema]);
    await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(registrySchema)} CASCADE`);
    await db.end();
  }
  if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
});

describe("the learning loop, end to end", () => {
  it("a shifted stream raises drift; retraining on it and on agents' labels goes through the gate and the shadow to production, and the new version answers", { timeout: 1_500_000 }, async () => {
    const first = (await production("intent"))!;
    const pool = bitextSample(2_400, 3);
    const mixed = pool.filter((_, i) => i % 3 === 0);
    const shifted = pool.filter((r) => SHIFTED_INTENTS.has(r.intent));

    // Agents label what the weak model answered; then the intent mix moves.
    await label(await ask(mixed.slice(0, 150)));
    await ask(shifted.slice(0, 3 * WINDOW));
    const raised = await until(async () => drift.records().map((r) => r.value).find((d) => d.model === `intent@${first}` && d.feature === "label" && d.severity !== "info"), 120_000, 500);
    expect(raised, "a drift event of the intent mix").toBeDefined();
    expect(raised!).toMatchObject({ task: "intent", sample_size: WINDOW });
    expect(raised!.value).toBeGreaterThan(raised!.threshold);

    // The drift event asks for a retraining: trained on more data and the labels, gated, shadowed.
    const shadowStarted = await until(async () => lifecycleOf("intent").find((r) => r.event === "shadow_started" || r.event === "rejected"), 900_000, 1_000);
    expect(shadowStarted, "a retrained intent candidate").toBeDefined();
    expect(shadowStarted!.event, shadowStarted!.reason ?? "").toBe("shadow_started");
    const candidate = shadowStarted!.model.split("@")[1]!;
    const trained = lifecycleOf("intent").find((r) => r.event === "trained" && r.model === `intent@${candidate}`)!;
    expect(trained.lineage).toMatchObject({ trigger: "drift" });
    expect(Number(trained.lineage["feedback_rows"])).toBeGreaterThan(0);
    expect(lifecycleOf("intent").map((r) => r.event)).toEqual(expect.arrayContaining(["trained", "evaluated", "shadow_started"]));

    // Live traffic beside production; agents label it; the shadow is judged on those and promoted.
    await label(await ask(mixed.slice(150, 300)));
    const decided = await until(async () => lifecycleOf("intent").find((r) => r.model === `intent@${candidate}` && (r.event === "promoted" || r.event === "rejected")), 600_000, 1_000);
    expect(decided, "the shadow judged").toBeDefined();
    expect(decided!.event, decided!.reason ?? "").toBe("promoted");
    expect(await production("intent")).toBe(candidate);
    const shadowScored = await db.query<{ n: string }>(`SELECT count(*) AS n FROM switchboard.feedback_predictions WHERE model = $1 AND stage = 'shadow'`, [`intent@${candidate}`]);
    expect(Number(shadowScored.rows[0]!.n)).toBeGreaterThanOrEqual(80);

    // The processors swapped on the record: what comes next is classified by the new version.
    await sleep(3_000);
    const after = await ask(mixed.slice(300, 340));
    const byInquiry = new Map(classified.records().map((r) => [r.value.inquiry_id, r.value.model]));
    expect(after.map((id) => byInquiry.get(id))).toEqual(after.map(() => `intent@${candidate}`));

    // Once each, whichever version classified them.
    const answers = responses.records().map((r) => r.value.inquiry_id);
    expect(new Set(answers).size).toBe(answers.length);
    expect(new Set(answers)).toEqual(new Set(sent.keys()));
    const state = (await (await get(`${api.url}/v1/inquiries/${after[0]}`, token)).json()) as { predictions: { task: string; model: string }[] };
    expect(state.predictions.find((p) => p.task === "intent")!.model).toBe(`intent@${candidate}`);
  });
});
