import { randomUUID } from "node:crypto";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { schemaRegistryOptions } from "../../config/security.js";
import { loadConfig } from "../../config/settings.js";
import { predictionId } from "../../processors/feedback.js";
import type { PredictionFeedback, ResponseStrategy } from "../../schemas/types.generated.js";
import { labelRecord } from "../../connectors/labels.js";
import { writeArchive } from "../../sinks/archive-store.js";
import { feedback } from "../../sinks/feedback.js";
import { resolvedLabels } from "../../sinks/feedback-store.js";
import { APP_SCHEMA, createPool } from "../../storage/postgres.js";
import { createTopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import { createResources, type Resources } from "../../streams/resources.js";
import { TRIAGE, allTopics, findProcessor } from "../../streams/topology.js";
import { get, post, setupServices, startApi, tailTopic, testKey, until, type ApiProcess, type Tail } from "../support/api.js";
import { quietLog } from "../support/topics.js";

/**
 * A customer's thumbs up or down through the real API process: what it publishes to
 * predictions.feedback, and what the feedback sink resolves from it in PostgreSQL.
 */

const endpoints = inject("endpoints");
const runId = `rating-${randomUUID().slice(0, 8)}`;
const T0 = Date.UTC(2025, 4, 12, 9, 30);
let api: ApiProcess;
let ingest: string;
let reader: string;
let db: pg.Pool;
let resources: Resources;
let sink: ProcessorImplementation;
let published: Tail<PredictionFeedback>;

const rate = (inquiryId: string, body: unknown, token = ingest) => post(`${api.url}/v1/inquiries/${inquiryId}/reply-rating`, token, body);

/** An inquiry as the archive holds it: the cleaned inquiry, its intent prediction and, unless null, its reply. */
async function archived(strategy: ResponseStrategy | null): Promise<string> {
  const inquiryId = `${runId}-${randomUUID().slice(0, 8)}`;
  await writeArchive(db, {
    inquiries: [
      {
        inquiry_id: inquiryId,
        channel: "api",
        source_id: `req-${inquiryId}`,
        thread_id: null,
        customer_id: "cust-17",
        customer_tier: "premium",
        subject: "Order 48213 never arrived",
        text: "Hi, I ordered a kettle two weeks ago (order [ORDER]) and it has not arrived.",
        language: "en",
        language_confidence: 0.97,
        redaction_count: 0,
        entities: [],
        received_at: new Date(T0).toISOString(),
        cleaned_at: new Date(T0 + 40).toISOString(),
      },
    ],
    predictions: [
      {
        prediction_id: predictionId(inquiryId, "intent"),
        inquiry_id: inquiryId,
        task: "intent",
        model: "intent-linear@3",
        predicted_label: "track_order",
        confidence: 0.88,
        input_digest: "9f2c1b7a4e6d0c3b8a5f9e2d1c4b7a6f0e3d2c5b8a1f4e7d0c9b6a3f2e5d8c1b",
        features: { length: 70, language: "en", values: {} },
        predicted_at: new Date(T0 + 60).toISOString(),
        label: null,
        label_source: "model",
        labeled_at: null,
      },
    ],
    routingDecisions: [],
    responses:
      strategy === null
        ? []
        : [
            {
              inquiry_id: inquiryId,
              strategy,
              text: "Your order left our warehouse yesterday and should arrive within two days.",
              sources: ["track_order"],
              department: "shipping",
              model: null,
              responded_at: new Date(T0 + 120).toISOString(),
            },
          ],
  });
  return inquiryId;
}

/** The records the API published for `inquiryId` once `count` arrived, stored by the feedback sink as its runtime would. */
async function publishedAndStored(inquiryId: string, count: number): Promise<PredictionFeedback[]> {
  const records = await until(async () => {
    const found = published.records().filter((r) => r.value.inquiry_id === inquiryId);
    return found.length >= count ? found.map((r) => r.value) : undefined;
  }, 15_000);
  expect(records, `${count} records of ${inquiryId} on predictions.feedback`).toBeDefined();
  await store(records!);
  return records!;
}

async function store(records: readonly PredictionFeedback[]): Promise<void> {
  for (const [offset, value] of records.entries()) {
    await sink.process({ topic: "predictions.feedback", partition: 0, offset: String(offset), key: value.inquiry_id, value, headers: {}, timestamp: Date.now() }, { log: quietLog });
  }
  await sink.flush!();
}

beforeAll(async () => {
  await setupServices(endpoints);
  api = await startApi(endpoints);
  ({ token: ingest } = await testKey(endpoints, ["ingest"], "rating-ingest"));
  ({ token: reader } = await testKey(endpoints, ["read"], "rating-reader"));
  db = createPool(endpoints, "rating-test");
  resources = createResources(loadConfig(), endpoints, quietLog, "rating-test");
  sink = await feedback(findProcessor("feedback").processor, { topology: TRIAGE, config: loadConfig(), endpoints, log: quietLog, resources });
  const kafka = createKafka(endpoints, runId, quietLog);
  const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  published = await tailTopic<PredictionFeedback>(kafka, codec, "predictions.feedback", (v) => v.inquiry_id.startsWith(runId));
});

afterAll(async () => {
  await published?.close();
  await api?.stop();
  await sink?.close?.();
  await resources?.close();
  if (!db) return;
  for (const table of ["inquiries", "predictions", "responses", "labels", "feedback_predictions"]) {
    await db.query(`DELETE FROM ${APP_SCHEMA}.${table} WHERE inquiry_id LIKE $1`, [`${runId}-%`]);
  }
  await db.end();
});

describe("POST /v1/inquiries/{id}/reply-rating", () => {
  it("thumbs up on a template reply: the reply judged helpful and the intent it was drafted for confirmed, as customer labels", async () => {
    const id = await archived("template");
    const response = await rate(id, { rating: "up" });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({
      inquiry_id: id,
      labels: [
        { prediction_id: predictionId(id, "response"), task: "response", model: "respond@template", predicted_label: "helpful", label: "helpful" },
        { prediction_id: predictionId(id, "intent"), task: "intent", model: "intent-linear@3", predicted_label: "track_order", label: "track_order" },
      ],
    });
    const records = await publishedAndStored(id, 2);
    expect(records.map((r) => [r.task, r.label_source, r.label])).toEqual([
      ["response", "customer", "helpful"],
      ["intent", "customer", "track_order"],
    ]);
    const resolved = await resolvedLabels(db, [predictionId(id, "response"), predictionId(id, "intent")]);
    expect(resolved.get(predictionId(id, "response"))).toMatchObject({ label: "helpful", label_source: "customer", judged_model: "respond@template" });
    expect(resolved.get(predictionId(id, "intent"))).toMatchObject({ label: "track_order", label_source: "customer", judged_label: "track_order" });
  });

  it("thumbs down judges only the reply; the customer's later rating replaces the earlier one, both kept", async () => {
    const id = await archived("template");
    expect((await rate(id, { rating: "up" })).status).toBe(202);
    await publishedAndStored(id, 2);
    // Ratings a millisecond apart are two labels, not one.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const down = await rate(id, { rating: "down" });
    expect(down.status).toBe(202);
    expect(((await down.json()) as { labels: { task: string; label: string }[] }).labels.map((l) => [l.task, l.label])).toEqual([["response", "unhelpful"]]);
    await publishedAndStored(id, 3);
    const resolved = await resolvedLabels(db, [predictionId(id, "response"), predictionId(id, "intent")]);
    expect(resolved.get(predictionId(id, "response"))).toMatchObject({ label: "unhelpful", label_count: 2, disputed: true });
    // The intent's confirmation from the first rating stands: a thumbs down says nothing about the intent.
    expect(resolved.get(predictionId(id, "intent"))).toMatchObject({ label: "track_order", label_count: 1 });
  });

  it("GET /v1/inquiries/{id} shows the label the conflict rule chose: an agent's over the customer's later confirmation", async () => {
    const id = await archived("template");
    await store([await labelRecord(db, { inquiryId: id, task: "intent", label: "cancel_order", source: "agent", at: Date.now() - 60_000 })]);
    expect((await rate(id, { rating: "up" })).status).toBe(202);
    await publishedAndStored(id, 2);
    const state = (await (await get(`${api.url}/v1/inquiries/${id}`, reader)).json()) as { predictions: { task: string; predicted_label: string; label: string | null; label_source: string }[] };
    expect(state.predictions.find((p) => p.task === "intent")).toMatchObject({ predicted_label: "track_order", label: "cancel_order", label_source: "agent" });
    expect((await resolvedLabels(db, [predictionId(id, "intent")])).get(predictionId(id, "intent"))).toMatchObject({ label_count: 2, disputed: true });
  });

  it("thumbs up on a retrieval reply confirms no intent: the article may help whatever the intent was", async () => {
    const id = await archived("retrieval");
    const response = await rate(id, { rating: "up" });
    expect(response.status).toBe(202);
    expect(((await response.json()) as { labels: { task: string; model: string }[] }).labels).toMatchObject([{ task: "response", model: "respond@retrieval" }]);
  });

  it("refuses an inquiry without a reply (409), an unknown one (404), another rating (422) and a key without the ingest scope (403)", async () => {
    const unanswered = await archived(null);
    const early = await rate(unanswered, { rating: "up" });
    expect(early.status).toBe(409);
    expect(early.headers.get("retry-after")).toBe("2");
    expect(await early.json()).toMatchObject({ error: "no_reply_yet" });
    expect((await rate(`${runId}-nobody`, { rating: "up" })).status).toBe(404);
    const wrong = await rate(unanswered, { rating: "meh" });
    expect(wrong.status).toBe(422);
    expect(await wrong.json()).toMatchObject({ field: "rating" });
    expect((await rate(unanswered, { rating: "up", stars: 5 })).status).toBe(422);
    expect((await rate(unanswered, { rating: "up" }, reader)).status).toBe(403);
    // Nothing refused was published.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(published.records().filter((r) => r.value.inquiry_id === unanswered)).toEqual([]);
  });

  it("is in the OpenAPI document", async () => {
    const document = (await (await get(`${api.url}/openapi.json`, reader)).json()) as { paths: Record<string, { post?: { tags?: string[] } }> };
    expect(document.paths["/v1/inquiries/{id}/reply-rating"]?.post?.tags).toEqual(["labels"]);
  });
});
