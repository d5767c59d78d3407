import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SCOPES, ensureDemoApiKey, lookUpApiKey, revokeApiKey } from "../../connectors/api/keys.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { createPool } from "../../storage/postgres.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { CLI, get, post, setupServices, startApi, tailTopic, testKey, until, type ApiProcess, type Tail } from "../support/api.js";
import { quietLog, serviceEnv } from "../support/topics.js";
import { schemaRegistryOptions } from "../../config/security.js";

const run = promisify(execFile);
const endpoints = inject("endpoints");
const runId = `api-http-${randomUUID().slice(0, 8)}`;
let api: ApiProcess;
let key: { id: string; token: string };
let kafka: Kafka;
let codec: TopicCodec;
let received: Tail<InquiryReceived>;

const inquiries = () => `${api.url}/v1/inquiries`;
const sample = (extra: Record<string, unknown> = {}) => ({
  subject: "Lamp never arrived",
  body: "Hello, I ordered a floor lamp (order 88231) three weeks ago and it still has not arrived. Can you check?",
  customer: { id: "cust-17", email: "dana.whitfield@example.com", name: "Dana Whitfield", tier: "premium" },
  metadata: { test_run: runId },
  ...extra,
});

async function refusal(response: Response) {
  return { status: response.status, ...((await response.json()) as { error: string; field?: string; reason?: string; message: string }) };
}

beforeAll(async () => {
  await setupServices(endpoints);
  api = await startApi(endpoints, { SWITCHBOARD_API_KEY_CACHE_MS: "1000" });
  key = await testKey(endpoints);
  kafka = createKafka(endpoints, runId, quietLog);
  codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  received = await tailTopic<InquiryReceived>(kafka, codec, "inquiries.received", (v) => v.envelope.metadata.test_run === runId);
});

afterAll(async () => {
  await received?.close();
  await api?.stop();
});

describe("POST /v1/inquiries", () => {
  it("answers 202 with the inquiry id once Kafka has the record, which carries what was sent, channel api and the request id", async () => {
    const before = Date.now();
    const response = await post(inquiries(), key.token, sample());
    expect(response.status).toBe(202);
    const accepted = (await response.json()) as { inquiry_id: string; status: string; received_at: string };
    expect(accepted.status).toBe("received");
    expect(response.headers.get("location")).toBe(`/v1/inquiries/${accepted.inquiry_id}`);
    expect(Number(response.headers.get("ratelimit-remaining"))).toBeGreaterThan(0);
    // Acknowledged before the answer: the record is on the topic already (allow for the consumer's fetch).
    const record = await until(async () => received.records().find((r) => r.key === accepted.inquiry_id), 10_000);
    expect(record?.value).toMatchObject({
      inquiry_id: accepted.inquiry_id,
      subject: "Lamp never arrived",
      content_type: "text",
      envelope: {
        channel: "api",
        thread_id: null,
        reply_to: null,
        customer: { id: "cust-17", email: "dana.whitfield@example.com", name: "Dana Whitfield", tier: "premium" },
        metadata: { test_run: runId },
      },
    });
    expect(record!.value.envelope.source_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(record!.value.envelope.received_at).toBeGreaterThanOrEqual(before);
    expect(new Date(accepted.received_at).getTime()).toBe(record!.value.envelope.received_at);
  });

  it("status reads received right away, before the archive has the inquiry", async () => {
    const { inquiry_id: id } = (await (await post(inquiries(), key.token, sample())).json()) as { inquiry_id: string };
    const response = await get(`${inquiries()}/${id}`, key.token);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ inquiry_id: id, status: "received", inquiry: null, predictions: [], routing: null, response: null });
  });

  it("refuses malformed JSON (400), invalid UTF-8 (400), an oversized body (413), other content types (415), each with a reason", async () => {
    expect(await refusal(await post(inquiries(), key.token, '{"body": "unterminated'))).toMatchObject({ status: 400, error: "malformed_json" });
    expect(await refusal(await post(inquiries(), key.token, ""))).toMatchObject({ status: 400, error: "malformed_json" });
    const latin1 = Buffer.concat([Buffer.from('{"body": "caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    expect(await refusal(await post(inquiries(), key.token, latin1))).toMatchObject({ status: 400, error: "invalid_utf8" });
    const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
    expect(await refusal(await post(inquiries(), key.token, binary))).toMatchObject({ status: 400, error: "invalid_utf8" });
    const huge = JSON.stringify(sample({ body: "x".repeat(300 * 1024) }));
    expect(await refusal(await post(inquiries(), key.token, huge))).toMatchObject({ status: 413, error: "too_large" });
    const asText = await fetch(inquiries(), { method: "POST", headers: { authorization: `Bearer ${key.token}`, "content-type": "text/plain" }, body: "help" });
    expect(await refusal(asText)).toMatchObject({ status: 415, error: "unsupported_media_type" });
    const asForm = await fetch(inquiries(), { method: "POST", headers: { authorization: `Bearer ${key.token}`, "content-type": "application/x-www-form-urlencoded" }, body: "body=help" });
    expect(await refusal(asForm)).toMatchObject({ status: 415 });
    const latin1Json = await post(inquiries(), key.token, JSON.stringify(sample()), { "content-type": "application/json; charset=iso-8859-1" });
    expect(await refusal(latin1Json)).toMatchObject({ status: 415, error: "unsupported_charset" });
  });

  it("refuses an invalid body with 422 naming the field and the reason, and writes nothing", async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ subject: "x" }, "body", /required/],
      [{ body: 42 }, "body", /string/],
      [{ body: "   \n " }, "body", /blank/],
      [{ body: "ok", content_type: "markdown" }, "content_type", /one of: text, html/],
      [{ body: "ok", customer: { email: "not an address" } }, "customer.email", /email/],
      [{ body: "ok", customer: { phone: "123" } }, "customer.phone", /not a field/],
      [{ body: "ok", channel: "email" }, "channel", /not a field/],
      [{ body: "ok", metadata: { n: 1 } }, "metadata.n", /string/],
      [{ body: "binary \u0000\u0001 data" }, "body", /control characters/],
      [{ body: "ok", subject: "s".repeat(1_001) }, "subject", /1000/],
      [[{ body: "ok" }], "$", /object/],
    ];
    for (const [body, field, reason] of cases) {
      const answer = await refusal(await post(inquiries(), key.token, body));
      expect(answer, JSON.stringify(body).slice(0, 80)).toMatchObject({ status: 422, error: "validation_failed", field });
      expect(answer.reason).toMatch(reason);
    }
    // Half a surrogate pair is valid JSON but not text.
    const lone = await refusal(await post(inquiries(), key.token, '{"body": "broken \\ud83d here"}'));
    expect(lone).toMatchObject({ status: 422, field: "body" });
    expect(lone.reason).toMatch(/surrogate/);
  });

  it("takes HTML, thread and reply address through to the record", async () => {
    const response = await post(inquiries(), key.token, sample({ body: "<p>Where is <b>my</b> order?</p>", content_type: "html", thread_id: "t-9", reply_to: "dana@example.com" }));
    expect(response.status).toBe(202);
    const { inquiry_id: id } = (await response.json()) as { inquiry_id: string };
    const record = await until(async () => received.records().find((r) => r.key === id), 10_000);
    expect(record?.value).toMatchObject({ content_type: "html", envelope: { thread_id: "t-9", reply_to: "dana@example.com" } });
  });
});

describe("API keys", () => {
  it("401 without a key or with a bad one, 403 without the scope; X-Api-Key works too", async () => {
    const bare = await fetch(inquiries(), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(sample()) });
    expect(await refusal(bare)).toMatchObject({ status: 401, error: "missing_api_key" });
    expect(bare.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await refusal(await post(inquiries(), `${key.token.slice(0, -2)}xx`, sample()))).toMatchObject({ status: 401, error: "invalid_api_key" });
    expect(await refusal(await post(inquiries(), "not-even-a-key", sample()))).toMatchObject({ status: 401, error: "invalid_api_key" });
    const reader = await testKey(endpoints, ["read"], "reader");
    expect(await refusal(await post(inquiries(), reader.token, sample()))).toMatchObject({ status: 403, error: "insufficient_scope" });
    expect(await refusal(await post(`${inquiries()}/x/labels`, reader.token, { intent: "track_order" }))).toMatchObject({ status: 403 });
    const ingester = await testKey(endpoints, ["ingest"], "ingester");
    expect((await get(`${inquiries()}/anything`, ingester.token)).status).toBe(403);
    const viaHeader = await fetch(`${inquiries()}/${randomUUID()}`, { headers: { "x-api-key": reader.token } });
    expect(await refusal(viaHeader)).toMatchObject({ status: 404, error: "not_found" });
  });

  it("switchboard api-keys create, list and revoke; a revoked key is refused within the cache time", async () => {
    const env = { ...serviceEnv(endpoints), LOG_LEVEL: "warn" };
    const name = `cli-${runId}`;
    const { stdout: created } = await run(process.execPath, [CLI, "api-keys", "create", "--name", name, "--scopes", "read"], { env });
    const token = /(sb_[0-9a-f]{12}_[A-Za-z0-9_-]{43})/.exec(created)![1]!;
    const id = token.slice(3, 15);
    expect((await get(`${inquiries()}/${randomUUID()}`, token)).status).toBe(404);
    const { stdout: listed } = await run(process.execPath, [CLI, "api-keys", "list"], { env });
    expect(listed).toContain(id);
    expect(listed).toContain(name);
    expect(listed).not.toContain(token.slice(16));
    await run(process.execPath, [CLI, "api-keys", "revoke", id], { env });
    // SWITCHBOARD_API_KEY_CACHE_MS is 1000 in this process.
    const refused = await until(async () => ((await get(`${inquiries()}/${randomUUID()}`, token)).status === 401 ? true : undefined), 5_000);
    expect(refused).toBe(true);
    await expect(run(process.execPath, [CLI, "api-keys", "revoke", id], { env })).rejects.toThrow(/no live API key/);
    await expect(run(process.execPath, [CLI, "api-keys", "create", "--name", "x", "--scopes", "admin"], { env })).rejects.toThrow(/unknown: admin/);
  });
});

describe("the demo key for the local user", () => {
  it("ensureDemoApiKey creates a key with every scope once, keeps it in a private file, and replaces it when revoked", async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "switchboard-demo-key-")), "api-key");
    const pool = createPool(endpoints, "test-demo-key");
    try {
      const first = await ensureDemoApiKey(pool, file);
      expect(first.created).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect((await post(inquiries(), first.token, sample())).status).toBe(202);
      expect(await ensureDemoApiKey(pool, file)).toEqual({ token: first.token, created: false });
      await revokeApiKey(pool, first.token.slice(3, 15));
      const second = await ensureDemoApiKey(pool, file);
      expect(second.created).toBe(true);
      expect(second.token).not.toBe(first.token);
      expect(readFileSync(file, "utf8").trim()).toBe(second.token);
      expect((await lookUpApiKey(pool, second.token))?.scopes).toEqual(SCOPES);
    } finally {
      await pool.end();
    }
  });

  it("gives a key made before a scope existed (the console's agent) every scope, keeping the key", async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "switchboard-demo-key-")), "api-key");
    const older = await testKey(endpoints, ["ingest", "read", "label"], "local demo");
    writeFileSync(file, `${older.token}\n`, { mode: 0o600 });
    const pool = createPool(endpoints, "test-demo-key");
    try {
      expect(await ensureDemoApiKey(pool, file)).toEqual({ token: older.token, created: false });
      expect((await lookUpApiKey(pool, older.token))?.scopes).toEqual(SCOPES);
    } finally {
      await pool.end();
    }
  });
});

describe("GET /v1/inquiries/{id} and the documents", () => {
  it("404 for an inquiry nobody sent; 422 for an id that cannot be one", async () => {
    expect(await refusal(await get(`${inquiries()}/${randomUUID()}`, key.token))).toMatchObject({ status: 404, error: "not_found" });
    expect(await refusal(await get(`${inquiries()}/${"x".repeat(201)}`, key.token))).toMatchObject({ status: 422, field: "id" });
  });

  it("search validates its query: 422 naming the parameter", async () => {
    expect(await refusal(await get(`${inquiries()}?page=0`, key.token))).toMatchObject({ status: 422, field: "page" });
    expect(await refusal(await get(`${inquiries()}?size=500`, key.token))).toMatchObject({ status: 422, field: "size" });
    expect(await refusal(await get(`${inquiries()}?review=maybe`, key.token))).toMatchObject({ status: 422, field: "review" });
    expect(await refusal(await get(`${inquiries()}?from=yesterday`, key.token))).toMatchObject({ status: 422, field: "from" });
    expect(await refusal(await get(`${inquiries()}?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z`, key.token))).toMatchObject({ status: 422, field: "from" });
    expect(await refusal(await get(`${inquiries()}?page=200&size=100`, key.token))).toMatchObject({ status: 422, field: "page" });
    expect(await refusal(await get(`${inquiries()}?sort=asc`, key.token))).toMatchObject({ status: 422, field: "sort" });
  });

  it("serves its OpenAPI 3.1 document, generated from the contracts, and the docs page", async () => {
    const document = (await (await fetch(`${api.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>>;
    };
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths).filter((p) => p.startsWith("/v1/inquiries")).sort()).toEqual([
      "/v1/inquiries",
      "/v1/inquiries/{id}",
      "/v1/inquiries/{id}/labels",
      "/v1/inquiries/{id}/replies",
      "/v1/inquiries/{id}/reply-rating",
      "/v1/inquiries/{id}/review",
    ]);
    const newInquiry = document.paths["/v1/inquiries"]!.post!.requestBody!.content["application/json"]!.schema;
    // The content types are the Avro enum's symbols, not a list typed again.
    const avro = JSON.parse(readFileSync(new URL("../../schemas/inquiries.received.avsc", import.meta.url), "utf8")) as { fields: { name: string; type: { symbols?: string[] } }[] };
    expect((newInquiry.properties.content_type as { enum: string[] }).enum).toEqual(avro.fields.find((f) => f.name === "content_type")!.type.symbols);
    const docs = await fetch(`${api.url}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain("swagger");
  });

  it("counts requests and refusals by reason in /metrics; /healthz checks Kafka, Redis and PostgreSQL", async () => {
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    for (const reason of ["malformed_json", "invalid_utf8", "too_large", "unsupported_media_type", "validation_failed", "missing_api_key", "invalid_api_key", "insufficient_scope", "not_found"]) {
      expect(metrics).toMatch(new RegExp(`switchboard_connector_rejected_total\\{[^}]*reason="${reason}"[^}]*\\} [1-9]`));
    }
    expect(metrics).toMatch(/switchboard_connector_accepted_total\{[^}]*kind="inquiry"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/switchboard_connector_requests_total\{[^}]*route="\/v1\/inquiries"[^}]*status="202"/);
    expect(metrics).toMatch(/switchboard_connector_request_seconds_bucket\{[^}]*route="\/v1\/inquiries"/);
    expect(await (await fetch(`${api.url}/healthz`)).json()).toEqual({ status: "ok", checks: { kafka: true, redis: true, postgres: true } });
  });

  it("logs no body, subject, email address or name", () => {
    const log = readFileSync(api.proc.log, "utf8");
    for (const secret of ["dana.whitfield@example.com", "Dana Whitfield", "floor lamp", "Lamp never arrived", "Where is"]) expect(log).not.toContain(secret);
  });
});
