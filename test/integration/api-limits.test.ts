import { randomUUID } from "node:crypto";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { createTopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { get, post, setupServices, startApi, tailTopic, testKey, type ApiProcess, type Tail } from "../support/api.js";
import { quietLog } from "../support/topics.js";
import { schemaRegistryOptions } from "../../config/security.js";

const endpoints = inject("endpoints");
const runId = `api-limits-${randomUUID().slice(0, 8)}`;
let api: ApiProcess;
let limited: ApiProcess;
let received: Tail<InquiryReceived>;

const inquiry = (text: string) => ({ body: text, metadata: { test_run: runId } });
const recordsWith = (id: string) => received.records().filter((r) => r.key === id).length;
/** Long enough for a record Kafka acknowledged to reach the test's consumer. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 2_000));

beforeAll(async () => {
  await setupServices(endpoints);
  [api, limited] = await Promise.all([
    startApi(endpoints),
    startApi(endpoints, { SWITCHBOARD_API_RATE_LIMIT: "5", SWITCHBOARD_API_RATE_WINDOW_MS: "3000" }),
  ]);
  const kafka = createKafka(endpoints, runId, quietLog);
  const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  received = await tailTopic<InquiryReceived>(kafka, codec, "inquiries.received", (v) => v.envelope.metadata.test_run === runId);
});

afterAll(async () => {
  await received?.close();
  await Promise.all([api?.stop(), limited?.stop()]);
});

describe("Idempotency-Key", () => {
  it("the same key and body answer with the same inquiry and write one record; another body with that key is 409", async () => {
    const { token } = await testKey(endpoints, ["ingest"]);
    const headers = { "idempotency-key": `order-88231-${runId}` };
    const first = await post(`${api.url}/v1/inquiries`, token, inquiry("Where is my order 88231?"), headers);
    expect(first.status).toBe(202);
    const { inquiry_id: id } = (await first.json()) as { inquiry_id: string };
    // Same meaning, other key order and an explicit default: the same body.
    const again = await post(`${api.url}/v1/inquiries`, token, { metadata: { test_run: runId }, content_type: "text", body: "Where is my order 88231?" }, headers);
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(((await again.json()) as { inquiry_id: string }).inquiry_id).toBe(id);
    const other = await post(`${api.url}/v1/inquiries`, token, inquiry("A different question"), headers);
    expect(other.status).toBe(409);
    expect(await other.json()).toMatchObject({ error: "idempotency_key_reused", field: "idempotency-key" });
    await settle();
    expect(recordsWith(id)).toBe(1);
    expect(received.records().filter((r) => r.value.body === "A different question")).toHaveLength(0);
  });

  it("keys are per API key: another client's same Idempotency-Key is its own inquiry", async () => {
    const [a, b] = await Promise.all([testKey(endpoints, ["ingest"]), testKey(endpoints, ["ingest"])]);
    const headers = { "idempotency-key": `shared-${runId}` };
    const ids = await Promise.all(
      [a, b].map(async ({ token }) => ((await (await post(`${api.url}/v1/inquiries`, token, inquiry("Same words"), headers)).json()) as { inquiry_id: string }).inquiry_id),
    );
    expect(new Set(ids).size).toBe(2);
  });

  it("concurrent requests with one key: one record, every answer 202 with its id", async () => {
    const { token } = await testKey(endpoints, ["ingest"]);
    const headers = { "idempotency-key": `burst-${runId}` };
    const answers = await Promise.all(Array.from({ length: 20 }, () => post(`${api.url}/v1/inquiries`, token, inquiry("Burst of retries"), headers)));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(202));
    const ids = new Set(await Promise.all(answers.map(async (r) => ((await r.json()) as { inquiry_id: string }).inquiry_id)));
    expect(ids.size).toBe(1);
    await settle();
    expect(recordsWith([...ids][0]!)).toBe(1);
    expect(received.records().filter((r) => r.value.body === "Burst of retries")).toHaveLength(1);
  });

  it("an unusable Idempotency-Key is 422", async () => {
    const { token } = await testKey(endpoints, ["ingest"]);
    const response = await post(`${api.url}/v1/inquiries`, token, inquiry("x"), { "idempotency-key": "k".repeat(256) });
    expect(response.status).toBe(422);
    expect(await response.json()).toMatchObject({ field: "idempotency-key" });
  });
});

describe("rate limits", () => {
  it("429 with Retry-After and RateLimit headers past the limit, per key, and the window resets", async () => {
    const [a, b] = await Promise.all([testKey(endpoints, ["ingest", "read"]), testKey(endpoints, ["read"])]);
    // Align with the start of a 3 s window so all ten requests fall into one.
    await new Promise((resolve) => setTimeout(resolve, 3_000 - (Date.now() % 3_000) + 50));
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 6; i++) {
      last = i % 2 === 0 ? await post(`${limited.url}/v1/inquiries`, a.token, inquiry(`rate ${i}`)) : await get(`${limited.url}/v1/inquiries/${randomUUID()}`, a.token);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([202, 404, 202, 404, 202, 429]);
    const retryAfter = Number(last!.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3);
    expect(last!.headers.get("ratelimit-limit")).toBe("5");
    expect(last!.headers.get("ratelimit-remaining")).toBe("0");
    expect(await last!.json()).toMatchObject({ error: "rate_limited" });
    // Another key has its own budget.
    expect((await get(`${limited.url}/v1/inquiries/${randomUUID()}`, b.token)).status).toBe(404);
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1_000));
    expect((await get(`${limited.url}/v1/inquiries/${randomUUID()}`, a.token)).status).toBe(404);
    await settle();
    // A refused request wrote nothing.
    expect(received.records().filter((r) => r.value.body.startsWith("rate "))).toHaveLength(3);
  });
});
