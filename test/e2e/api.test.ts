import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SAMPLE_INQUIRIES } from "../../cli/samples/index.js";
import { loadConfig } from "../../config/settings.js";
import { parseManifest } from "../../models/manifest.js";
import { productionVersionDir } from "../../models/registry.js";
import type { PredictionFeedback } from "../../schemas/types.generated.js";
import { createTopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { get, post, startApi, tailTopic, testKey, until, type ApiProcess, type Tail } from "../support/api.js";
import { quietLog } from "../support/topics.js";
import { preparePipeline, startPipeline, type Pipeline } from "./pipeline.js";
import { postgresOptions, schemaRegistryOptions } from "../../config/security.js";

/** What GET /v1/inquiries/{id} answers (its schema is INQUIRY_STATE). */
interface State {
  status: string;
  received_at: string | null;
  inquiry: { text: string; subject: string | null; channel: string; customer: { id: string | null; tier: string | null } } | null;
  predictions: { prediction_id: string; task: string; model: string; predicted_label: string; confidence: number; label: string | null; label_source: string }[];
  routing: { department: string; queue: string; priority_score: number; intent: string | null } | null;
  response: { strategy: string; text: string; department: string } | null;
}

const endpoints = inject("endpoints");
const runId = `api-e2e-${randomUUID().slice(0, 8)}`;
let pipeline: Pipeline;
let api: ApiProcess;
let token: string;
let feedback: Tail<PredictionFeedback>;
const sent = new Map<string, (typeof SAMPLE_INQUIRIES)[number]>();

const stateOf = async (id: string) => (await (await get(`${api.url}/v1/inquiries/${id}`, token)).json()) as State;

beforeAll(async () => {
  await preparePipeline(endpoints);
  pipeline = await startPipeline(endpoints);
  api = await startApi(endpoints);
  ({ token } = await testKey(endpoints));
  const kafka = createKafka(endpoints, runId, quietLog);
  const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  feedback = await tailTopic<PredictionFeedback>(kafka, codec, "predictions.feedback", (v) => sent.has(v.inquiry_id));
}, 1_800_000);

afterAll(async () => {
  await feedback?.close();
  await api?.stop();
  await pipeline?.stop();
});

describe("the REST API, end to end", () => {
  it("inquiries sent over HTTP come out routed and answered, and GET shows predictions with model@version, the decision and the reply", { timeout: 300_000 }, async () => {
    for (const sample of SAMPLE_INQUIRIES.slice(0, 12)) {
      const body = { subject: sample.subject, body: sample.body, content_type: sample.content_type ?? "text", customer: sample.customer, metadata: { test_run: runId } };
      const response = await post(`${api.url}/v1/inquiries`, token, body, { "idempotency-key": randomUUID() });
      expect(response.status).toBe(202);
      sent.set(((await response.json()) as { inquiry_id: string }).inquiry_id, sample);
    }
    for (const [id, sample] of sent) {
      const state = await until(async () => {
        const current = await stateOf(id);
        return current.status === "responded" && current.routing && current.inquiry && current.predictions.length === 4 ? current : undefined;
      }, 180_000, 500);
      expect(state, `inquiry ${id} was not answered`).toBeDefined();
      expect(state!.inquiry).toMatchObject({ channel: "api", customer: { id: sample.customer.id ?? null, tier: sample.customer.tier ?? null } });
      expect(state!.predictions.map((p) => p.task).sort()).toEqual(["category", "intent", "sentiment", "urgency"]);
      for (const prediction of state!.predictions) {
        expect(prediction.model).toMatch(/^[a-z_]+@.+/);
        expect(prediction.label_source).toBe("model");
      }
      expect(state!.routing!.department).not.toBe("");
      expect(state!.routing!.queue).not.toBe("");
      expect(state!.routing!.intent).toBe(state!.predictions.find((p) => p.task === "intent")!.predicted_label);
      expect(state!.response!.text.length).toBeGreaterThan(0);
      expect(state!.response!.department).toBe(state!.routing!.department);
      // Only redacted text is kept: the customer's address is not in what GET shows.
      if (sample.customer.email) expect(JSON.stringify(state)).not.toContain(sample.customer.email);
    }
  });

  it("search finds them by text, with filters and pages", { timeout: 120_000 }, async () => {
    const [id, sample] = [...sent].find(([, s]) => s.subject?.includes("48213"))!;
    const state = await stateOf(id);
    const found = await until(async () => {
      const response = await get(`${api.url}/v1/inquiries?q=${encodeURIComponent("48213 arrived")}&department=${state.routing!.department}&size=5`, token);
      const page = (await response.json()) as { total: number; results: { inquiry_id: string; department: string | null; highlights: string[] }[] };
      return page.results.some((r) => r.inquiry_id === id) ? page : undefined;
    }, 60_000, 1_000);
    expect(found, `search did not find ${sample.subject}`).toBeDefined();
    const hit = found!.results.find((r) => r.inquiry_id === id)!;
    expect(hit.department).toBe(state.routing!.department);
    expect(hit.highlights.join(" ")).toMatch(/<em>/);
    // Filters narrow: the same words in another department find nothing of ours.
    const elsewhere = (await (await get(`${api.url}/v1/inquiries?q=48213&department=no-such-department`, token)).json()) as { total: number };
    expect(elsewhere.total).toBe(0);
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const recent = (await (await get(`${api.url}/v1/inquiries?from=${from}&size=2&page=1`, token)).json()) as { total: number; results: unknown[]; size: number };
    expect(recent.total).toBeGreaterThanOrEqual(sent.size);
    expect(recent.results).toHaveLength(2);
  });

  it("a label becomes a predictions.feedback record from an agent, joined to its prediction, and lands in PostgreSQL", { timeout: 120_000 }, async () => {
    const [id] = [...sent][0]!;
    const before = await stateOf(id);
    const predicted = before.predictions.find((p) => p.task === "intent")!;
    const config = loadConfig();
    const db = new pg.Pool(postgresOptions(endpoints));
    try {
      const manifest = parseManifest(readFileSync(path.join(await productionVersionDir(db, "intent", config.modelsDir), "manifest.json"), "utf8"));
      const trueIntent = manifest.labels.find((l) => l !== predicted.predicted_label)!;
      const response = await post(`${api.url}/v1/inquiries/${id}/labels`, token, { intent: trueIntent, sentiment: "negative", department: before.routing!.department });
      expect(response.status).toBe(202);
      const accepted = (await response.json()) as { labels: { task: string; prediction_id: string; predicted_label: string; label: string }[] };
      expect(accepted.labels.find((l) => l.task === "intent")).toMatchObject({ prediction_id: predicted.prediction_id, predicted_label: predicted.predicted_label, label: trueIntent });

      const onTopic = await until(async () => {
        const labels = feedback.records().filter((r) => r.value.inquiry_id === id && r.value.label_source === "agent");
        return labels.length === 3 ? labels : undefined;
      }, 30_000);
      expect(onTopic).toBeDefined();
      const intentLabel = onTopic!.find((r) => r.value.task === "intent")!.value;
      expect(intentLabel).toMatchObject({ prediction_id: predicted.prediction_id, model: predicted.model, predicted_label: predicted.predicted_label, label: trueIntent });
      expect(onTopic!.find((r) => r.value.task === "department")!.value).toMatchObject({ model: "route@rules", label: before.routing!.department });

      const stored = await until(async () => {
        const { rows } = await db.query<{ label: string; label_source: string; predicted_label: string }>(
          "SELECT label, label_source, predicted_label FROM switchboard.predictions WHERE prediction_id = $1 AND label IS NOT NULL",
          [predicted.prediction_id],
        );
        return rows[0];
      }, 30_000, 500);
      expect(stored).toEqual({ label: trueIntent, label_source: "agent", predicted_label: predicted.predicted_label });
      const after = await stateOf(id);
      expect(after.predictions.find((p) => p.task === "intent")).toMatchObject({ label: trueIntent, label_source: "agent" });

      // Refusals: unknown classes, unknown inquiries, an inquiry not predicted yet.
      const unknownIntent = await post(`${api.url}/v1/inquiries/${id}/labels`, token, { intent: "not_an_intent" });
      expect(unknownIntent.status).toBe(422);
      expect(await unknownIntent.json()).toMatchObject({ field: "intent" });
      expect((await post(`${api.url}/v1/inquiries/${id}/labels`, token, { department: "nowhere" })).status).toBe(422);
      expect((await post(`${api.url}/v1/inquiries/${id}/labels`, token, { sentiment: "furious" })).status).toBe(422);
      expect((await post(`${api.url}/v1/inquiries/${id}/labels`, token, {})).status).toBe(422);
      expect((await post(`${api.url}/v1/inquiries/${randomUUID()}/labels`, token, { sentiment: "neutral" })).status).toBe(404);
      const bare = `${runId}-unpredicted`;
      await db.query(
        `INSERT INTO switchboard.inquiries (inquiry_id, channel, source_id, text, language, language_confidence, redaction_count, received_at, cleaned_at)
         VALUES ($1, 'api', $1, 'text', 'en', 1, 0, now(), now())`,
        [bare],
      );
      const early = await post(`${api.url}/v1/inquiries/${bare}/labels`, token, { sentiment: "neutral" });
      expect(early.status).toBe(409);
      expect(await early.json()).toMatchObject({ error: "not_predicted_yet" });
      await db.query("DELETE FROM switchboard.inquiries WHERE inquiry_id = $1", [bare]);
    } finally {
      await db.end();
    }
  });
});
