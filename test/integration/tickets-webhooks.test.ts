import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import Fastify, { type FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import type { Consumer, Kafka } from "kafkajs";
import type pg from "pg";
import pino from "pino";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { REPO_ROOT, loadConfig, type Config } from "../../config/settings.js";
import type { ConnectorDependencies } from "../../connectors/connector.js";
import { createIntake, type Intake } from "../../connectors/intake.js";
import { ROUTE_MODEL } from "../../connectors/labels.js";
import { createConnectorMetrics } from "../../connectors/metrics.js";
import type { JsonObject } from "../../connectors/tickets/events.js";
import { ticketWebhooks } from "../../connectors/tickets/index.js";
import { signatureHeaders, type Desk } from "../../connectors/tickets/signatures.js";
import { predictionId } from "../../processors/feedback.js";
import { registerSchema, targetFor } from "../../schemas/registry.js";
import type { InquiryReceived, PredictionFeedback } from "../../schemas/types.generated.js";
import { writeArchive, type InquiryRow, type PredictionRow, type RoutingDecisionRow } from "../../sinks/archive-store.js";
import type { Endpoints } from "../../stack/index.js";
import { APP_SCHEMA, createPool, migrate } from "../../storage/postgres.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import { TRIAGE, findConnector } from "../../streams/topology.js";
import { quietLog } from "../support/topics.js";
import { redisOptions, schemaRegistryOptions } from "../../config/security.js";

/**
 * The ticket webhooks as the API process serves them: the plugin in a real Fastify app, a real
 * Kafka intake (records read back from inquiries.received and predictions.feedback), Redis for
 * replays and idempotency, the PostgreSQL archive for labels. Ticket ids are unique to the run.
 */

const run = randomUUID().slice(0, 8);
const SECRETS: Record<Desk, string> = {
  zendesk: `zd-${run}-signing-secret`,
  freshdesk: `fd-${run}-signing-secret`,
  generic: `gn-${run}-signing-secret`,
};
const MAX_BYTES = 65_536;
const config = loadConfig({
  SWITCHBOARD_ZENDESK_WEBHOOK_SECRET: SECRETS.zendesk,
  SWITCHBOARD_FRESHDESK_WEBHOOK_SECRET: SECRETS.freshdesk,
  SWITCHBOARD_GENERIC_WEBHOOK_SECRET: SECRETS.generic,
  SWITCHBOARD_WEBHOOK_MAX_BYTES: String(MAX_BYTES),
});
const TOPICS = ["inquiries.received", "predictions.feedback"] as const;
const api = findConnector("api")!.connector;

/** Everything the webhooks log, to check no personal data reaches the logs. */
const logLines: string[] = [];
const log = pino(
  { level: "debug" },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

interface Collected {
  readonly topic: string;
  readonly value: InquiryReceived | PredictionFeedback;
}

/** Reads both topics from their ends at the start of the run, decoded. */
async function collect(kafka: Kafka, codec: TopicCodec): Promise<{ records: Collected[]; consumer: Consumer }> {
  const admin = kafka.admin();
  await admin.connect();
  const starts = await Promise.all(TOPICS.map(async (topic) => ({ topic, offsets: await admin.fetchTopicOffsets(topic) })));
  await admin.disconnect();
  const records: Collected[] = [];
  const consumer = kafka.consumer({ groupId: `tickets-webhooks-test-${run}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [...TOPICS], fromBeginning: false });
  // Tests start once the consumer has its partitions, so no wait for a record includes the group join.
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      records.push({ topic, value: (await codec.decode(topic, message.value)) as Collected["value"] });
    },
  });
  for (const { topic, offsets } of starts) for (const { partition, high } of offsets) consumer.seek({ topic, partition, offset: high });
  await joined;
  return { records, consumer };
}

async function until<T>(find: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const fixture = (name: string): JsonObject =>
  JSON.parse(readFileSync(path.join(REPO_ROOT, "test/fixtures/tickets", `${name}.json`), "utf8")) as JsonObject;

/** A fixture with fields replaced by dotted path. */
function withFields(payload: JsonObject, fields: Readonly<Record<string, unknown>>): JsonObject {
  const copy = structuredClone(payload) as Record<string, unknown>;
  for (const [field, value] of Object.entries(fields)) {
    const keys = field.split(".");
    let node = copy;
    for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
    node[keys.at(-1)!] = value;
  }
  return copy;
}

const zendesk = (name: string, ticket: string, fields: Record<string, unknown> = {}) =>
  withFields(fixture(`zendesk-${name}`), { id: `${name}-${randomUUID()}`, "detail.id": ticket, subject: `zen:ticket:${ticket}`, ...fields });
const freshdesk = (name: string, ticket: string, fields: Record<string, unknown> = {}) =>
  withFields(fixture(`freshdesk-${name}`), { "freshdesk_webhook.ticket_id": ticket, ...fields });
const generic = (name: string, ticket: string, fields: Record<string, unknown> = {}) =>
  withFields(fixture(`generic-${name}`), { id: `evt-${randomUUID()}`, "ticket.id": ticket, ...fields });
const ticketId = (label: string) => `${label}-${run}-${randomUUID().slice(0, 6)}`;

interface Sent {
  readonly status: number;
  readonly body: JsonObject;
  readonly headers: Record<string, unknown>;
  /** The exact request, for replays. */
  readonly request: { readonly headers: Record<string, string>; readonly body: Buffer };
}

async function post(app: FastifyInstance, desk: Desk, headers: Record<string, string>, body: Buffer): Promise<Sent> {
  const response = await app.inject({ method: "POST", url: `/v1/webhooks/${desk}`, headers, payload: body });
  return { status: response.statusCode, body: response.json<JsonObject>(), headers: response.headers, request: { headers, body } };
}

function send(
  app: FastifyInstance,
  desk: Desk,
  payload: JsonObject | Buffer,
  { at = Date.now(), contentType = "application/json", secret = SECRETS[desk] }: { at?: number; contentType?: string; secret?: string } = {},
): Promise<Sent> {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload));
  return post(app, desk, { "content-type": contentType, ...signatureHeaders(desk, secret, body, at) }, body);
}

let endpoints: Endpoints;
let kafka: Kafka;
let consumer: Consumer;
let records: Collected[];
let intake: Intake;
let redis: Redis;
let pool: pg.Pool;
let registry: Registry;
let app: FastifyInstance;
const seeded: string[] = [];
const closers: (() => Promise<unknown>)[] = [];

function dependencies(overrides: Partial<ConnectorDependencies> & { config?: Config } = {}): ConnectorDependencies {
  const own = new Registry();
  return {
    topology: TRIAGE,
    declaration: api,
    config,
    endpoints,
    log,
    intake,
    metrics: createConnectorMetrics(own),
    registry: own,
    ...overrides,
  };
}

async function webhookApp(deps: ConnectorDependencies, services: { redis: Redis; pool: pg.Pool } = { redis, pool }): Promise<FastifyInstance> {
  const server = Fastify();
  await ticketWebhooks(deps, services)(server);
  await server.ready();
  closers.push(() => server.close());
  return server;
}

beforeAll(async () => {
  endpoints = inject("endpoints");
  kafka = createKafka(endpoints, `tickets-webhooks-test-${run}`, quietLog);
  await createTopics(kafka, TRIAGE, quietLog);
  for (const topic of TOPICS) await registerSchema(endpoints, targetFor(topic, topic));
  const codec = await createTopicCodec(
    new SchemaRegistry(schemaRegistryOptions(endpoints)),
    TRIAGE.topics.filter((t) => (TOPICS as readonly string[]).includes(t.name)),
  );
  ({ records, consumer } = await collect(kafka, codec));
  intake = await createIntake(TRIAGE, api, endpoints, log);
  redis = new Redis(endpoints.redisUrl, { ...redisOptions(endpoints), maxRetriesPerRequest: 1 });
  pool = createPool(endpoints, "tickets-webhooks-test");
  await migrate(pool, quietLog);
  registry = new Registry();
  app = await webhookApp(dependencies({ metrics: createConnectorMetrics(registry), registry }));
});

afterAll(async () => {
  for (const close of closers) await close();
  await consumer?.disconnect();
  await intake?.close();
  redis?.disconnect();
  if (pool) {
    for (const table of ["inquiries", "predictions", "routing_decisions"]) {
      await pool.query(`DELETE FROM ${APP_SCHEMA}.${table} WHERE inquiry_id = ANY($1)`, [seeded]);
    }
    await pool.end();
  }
});

const inquiryRecord = (inquiryId: string) =>
  until(() => records.find((r) => r.topic === "inquiries.received" && r.value.inquiry_id === inquiryId)?.value as InquiryReceived | undefined, `inquiry ${inquiryId}`);
const labelRecord = (inquiryId: string, task: string, source: string) =>
  until(
    () =>
      records.find((r) => {
        const v = r.value as PredictionFeedback;
        return r.topic === "predictions.feedback" && v.inquiry_id === inquiryId && v.task === task && v.label_source === source;
      })?.value as PredictionFeedback | undefined,
    `${task} ${source} label of ${inquiryId}`,
  );

describe("ticket messages become inquiries", () => {
  it("zendesk: a new ticket is one inquiry with the ticket's fields; its first comment is the same inquiry", async () => {
    const ticket = ticketId("zd");
    const created = await send(app, "zendesk", zendesk("ticket-created", ticket));
    expect(created.status).toBe(202);
    const inquiryId = created.body.inquiry_id as string;
    expect(created.headers.location).toBe(`/v1/inquiries/${inquiryId}`);
    const inquiry = await inquiryRecord(inquiryId);
    expect(inquiry).toMatchObject({
      subject: "Dining table delivery missed",
      content_type: "text",
      envelope: {
        channel: "ticket",
        source_id: `zendesk:${ticket}:opening`,
        thread_id: `zendesk:${ticket}`,
        customer: { id: "zendesk:8447388090494", email: null, name: null, tier: null },
        reply_to: null,
        metadata: { desk: "zendesk", ticket_id: ticket, priority: "high", status: "new", group_id: "360011000008", via: "web_form" },
      },
    });
    expect(inquiry.body).toContain("Linden oak dining table (order HH-2025-10422)");

    const description = ((fixture("zendesk-ticket-created").detail as JsonObject).description as string);
    const firstComment = await send(app, "zendesk", zendesk("comment-added", ticket, { "event.comment.body": description }));
    expect(firstComment).toMatchObject({ status: 200, body: { status: "duplicate", inquiry_id: inquiryId } });

    const followUp = await send(app, "zendesk", zendesk("comment-added", ticket));
    expect(followUp.status).toBe(202);
    expect(followUp.body.inquiry_id).not.toBe(inquiryId);
    expect((await inquiryRecord(followUp.body.inquiry_id as string)).envelope).toMatchObject({
      source_id: `zendesk:${ticket}:31807762240017`,
      thread_id: `zendesk:${ticket}`,
      metadata: { comment_id: "31807762240017", event_type: "comment_added" },
    });

    const byStaff = zendesk("comment-added", ticket, { "event.comment.author.is_staff": true, "event.comment.id": 1 });
    expect(await send(app, "zendesk", byStaff)).toMatchObject({ status: 200, body: { status: "ignored", reason: "agent_comment" } });
  });

  it("freshdesk: a new ticket (HTML) and the requester's reply are inquiries; the reply loses its author prefix", async () => {
    const ticket = ticketId("fd");
    const created = await send(app, "freshdesk", freshdesk("ticket-created", ticket));
    expect(created.status).toBe(202);
    expect(await inquiryRecord(created.body.inquiry_id as string)).toMatchObject({
      subject: "Charged twice for my order",
      content_type: "html",
      envelope: {
        source_id: `freshdesk:${ticket}:opening`,
        customer: { email: "priya.raman@example.com", name: "Priya Raman", id: null },
        metadata: { desk: "freshdesk", ticket_type: "Payment", tags: "billing,duplicate-charge" },
      },
    });
    const reply = await send(app, "freshdesk", freshdesk("customer-reply", ticket));
    expect(reply.status).toBe(202);
    const inquiry = await inquiryRecord(reply.body.inquiry_id as string);
    expect(inquiry.body).toBe('<div dir="ltr">I attached the card statement. The second charge is still there today, a week later. When will I get it back?</div>');
    expect(inquiry.envelope.source_id).toMatch(new RegExp(`^freshdesk:${ticket}:reply-[0-9a-f]{16}$`));
  });

  it("generic: a new ticket and a customer's comment are inquiries; an agent's comment is not", async () => {
    const ticket = ticketId("gn");
    const created = await send(app, "generic", generic("ticket-created", ticket));
    expect(created.status).toBe(202);
    expect(await inquiryRecord(created.body.inquiry_id as string)).toMatchObject({
      content_type: "html",
      envelope: {
        source_id: `generic:${ticket}:opening`,
        customer: { id: "cust-77120", email: "jonas.weber@example.org", name: "Jonas Weber", tier: "premium" },
        metadata: { desk: "generic", tags: "returns,textiles", group: "general" },
      },
    });
    const comment = await send(app, "generic", generic("comment-added", ticket));
    expect(comment.status).toBe(202);
    expect((await inquiryRecord(comment.body.inquiry_id as string)).envelope.source_id).toBe(`generic:${ticket}:cm_90007`);
    const byAgent = generic("comment-added", ticket, { "comment.author": "agent", "comment.id": "cm_90008" });
    expect(await send(app, "generic", byAgent)).toMatchObject({ status: 200, body: { reason: "agent_comment" } });
  });

  it("a redelivery (same event, signed anew) answers the same inquiry id and publishes nothing", async () => {
    const payload = generic("ticket-created", ticketId("redelivery"));
    const first = await send(app, "generic", payload);
    expect(first.status).toBe(202);
    const again = await send(app, "generic", payload, { at: Date.now() + 2_000 });
    expect(again).toMatchObject({ status: 200, body: { status: "duplicate", inquiry_id: first.body.inquiry_id } });
    await inquiryRecord(first.body.inquiry_id as string);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(records.filter((r) => r.value.inquiry_id === first.body.inquiry_id)).toHaveLength(1);
  });
});

describe("bad input is refused with its reason", () => {
  const valid = () => generic("ticket-created", ticketId("refused"));

  it("a bad, missing or stale signature is 401; the same signed request twice is 409 replayed", async () => {
    const signed = await send(app, "generic", valid());
    expect(signed.status).toBe(202);
    const tampered = Buffer.from(signed.request.body.toString().replace("sage green", "sage greeN"));
    expect(await post(app, "generic", signed.request.headers, tampered)).toMatchObject({ status: 401, body: { error: "bad_signature" } });
    expect(await send(app, "generic", valid(), { secret: "not-the-secret-at-all" })).toMatchObject({ status: 401, body: { error: "bad_signature" } });
    expect(await post(app, "generic", { "content-type": "application/json" }, Buffer.from(JSON.stringify(valid())))).toMatchObject({
      status: 401,
      body: { error: "missing_signature" },
    });
    expect(await send(app, "zendesk", zendesk("ticket-created", ticketId("stale")), { at: Date.now() - 10 * 60_000 })).toMatchObject({
      status: 401,
      body: { error: "stale_timestamp" },
    });
    expect(await post(app, "generic", signed.request.headers, signed.request.body)).toMatchObject({ status: 409, body: { error: "replayed" } });
  });

  it("malformed JSON, invalid UTF-8, a non-object, an unknown shape, binary text, too large, wrong content type", async () => {
    expect(await send(app, "generic", Buffer.from('{"event": "ticket.created",'))).toMatchObject({ status: 400, body: { error: "malformed_json" } });
    expect(await send(app, "generic", Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]))).toMatchObject({ status: 400, body: { error: "invalid_utf8" } });
    expect(await send(app, "generic", Buffer.from("[1, 2]"))).toMatchObject({ status: 400, body: { error: "not_an_object" } });
    const unknown = await send(app, "zendesk", { hello: "world" });
    expect(unknown).toMatchObject({ status: 422, body: { error: "unsupported_shape" } });
    expect(unknown.body.problems).toEqual([
      "type: a non-empty string or number is required",
      "id: a non-empty string or number is required",
      "detail.id: a non-empty string or number is required",
    ]);
    const binary = String.fromCharCode(...randomBytes(2_000));
    expect(await send(app, "generic", withFields(valid(), { "comment.body": binary }))).toMatchObject({ status: 422, body: { error: "binary_body" } });
    const huge = withFields(valid(), { "comment.body": "The cushions are the wrong colour. ".repeat(2_000) });
    expect(await send(app, "generic", huge)).toMatchObject({ status: 413, body: { error: "too_large" } });
    expect(await send(app, "generic", valid(), { contentType: "text/plain" })).toMatchObject({ status: 415, body: { error: "unsupported_media_type" } });
    expect(await send(app, "generic", valid(), { contentType: "application/octet-stream" })).toMatchObject({ status: 415 });
  });

  it("a desk without a secret refuses everything", async () => {
    const unconfigured = await webhookApp(dependencies({ config: loadConfig({}) }));
    expect(await send(unconfigured, "zendesk", zendesk("ticket-created", ticketId("off")))).toMatchObject({
      status: 404,
      body: { error: "desk_disabled", message: expect.stringContaining("SWITCHBOARD_ZENDESK_WEBHOOK_SECRET") },
    });
  });

  it("counts every refusal by reason", async () => {
    const counted = await registry.getSingleMetric("switchboard_connector_rejected_total")!.get();
    const reasons = new Set(counted.values.map((v) => v.labels.reason));
    for (const reason of ["bad_signature", "missing_signature", "stale_timestamp", "replayed", "malformed_json", "invalid_utf8", "too_large", "unsupported_media_type", "unsupported_shape"]) {
      expect(reasons).toContain(reason);
    }
  });
});

describe("when a service is down", () => {
  it("Kafka: 503 with Retry-After, and the same request goes through once Kafka is back", async () => {
    const silent = pino({ level: "silent" });
    const deadIntake = await createIntake(TRIAGE, api, { ...endpoints, kafkaBrokers: ["127.0.0.1:1"] }, silent, { timeoutMs: 1_500 });
    closers.push(() => deadIntake.close());
    const down = await webhookApp(dependencies({ intake: deadIntake }));
    const refused = await send(down, "generic", generic("ticket-created", ticketId("kafka-down")));
    expect(refused).toMatchObject({ status: 503, body: { error: "unavailable_kafka" } });
    expect(refused.headers["retry-after"]).toBe("5");
    // Neither the claim on the event nor the signature sticks: the desk's retry is taken.
    expect(await post(app, "generic", refused.request.headers, refused.request.body)).toMatchObject({ status: 202 });
  });

  it("Redis: 503 with Retry-After", async () => {
    const deadRedis = new Redis("redis://127.0.0.1:1", { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true });
    deadRedis.on("error", () => undefined);
    closers.push(async () => deadRedis.disconnect());
    const down = await webhookApp(dependencies(), { redis: deadRedis, pool });
    const refused = await send(down, "generic", generic("ticket-created", ticketId("redis-down")));
    expect(refused).toMatchObject({ status: 503, body: { error: "unavailable_redis" } });
    expect(refused.headers["retry-after"]).toBe("5");
  });
});

describe("ticket updates become labels", () => {
  const T0 = Date.UTC(2025, 4, 12, 9, 30);
  const iso = (ms: number) => new Date(ms).toISOString();
  const ARCHIVED_TEXT = "I ordered the [PRODUCT] dining table and the delivery window passed.";

  /** An archived first inquiry of a ticket, as the archive sink writes it, with the predictions given. */
  async function archiveTicket(desk: Desk, ticket: string, parts: { routed?: string; intent?: string; category?: string }): Promise<string> {
    const inquiryId = randomUUID();
    seeded.push(inquiryId);
    const inquiry: InquiryRow = {
      inquiry_id: inquiryId,
      channel: "ticket",
      source_id: `${desk}:${ticket}:opening`,
      thread_id: `${desk}:${ticket}`,
      customer_id: null,
      customer_tier: null,
      subject: "Dining table delivery missed",
      text: ARCHIVED_TEXT,
      language: "en",
      language_confidence: 0.98,
      redaction_count: 0,
      entities: [],
      received_at: iso(T0),
      cleaned_at: iso(T0 + 40),
    };
    const prediction = (task: string, label: string, model: string): PredictionRow => ({
      prediction_id: predictionId(inquiryId, task),
      inquiry_id: inquiryId,
      task,
      model,
      predicted_label: label,
      confidence: 0.71,
      input_digest: `digest-${task}`,
      features: { length: 70, language: "en", values: { active_features: 12 } },
      predicted_at: iso(T0 + 90),
      label: null,
      label_source: "model",
      labeled_at: null,
    });
    const decision = (department: string): RoutingDecisionRow => ({
      inquiry_id: inquiryId,
      department,
      queue: department,
      priority_score: 45,
      escalated: false,
      escalation_reason: null,
      human_review: false,
      review_reasons: [],
      missing_parts: [],
      intent: parts.intent ?? null,
      category: parts.category ?? null,
      sentiment: "negative",
      urgency: "high",
      urgency_drivers: [],
      routed_at: iso(T0 + 120),
    });
    await writeArchive(pool, {
      inquiries: [inquiry],
      predictions: [
        ...(parts.intent ? [prediction("intent", parts.intent, "intent-linear@3")] : []),
        ...(parts.category ? [prediction("category", parts.category, "category-linear@3")] : []),
      ],
      routingDecisions: parts.routed ? [decision(parts.routed)] : [],
      responses: [],
    });
    return inquiryId;
  }

  it("zendesk: a group change is an agent department label joined to route's decision; a redelivery is no second label", async () => {
    const ticket = ticketId("zd-labels");
    const inquiryId = await archiveTicket("zendesk", ticket, { routed: "logistics", intent: "delivery_period", category: "DELIVERY" });
    const change = zendesk("group-changed", ticket, { "event.current": "360011000001" });
    const accepted = await send(app, "zendesk", change);
    expect(accepted).toMatchObject({
      status: 202,
      body: { status: "accepted", inquiry_id: inquiryId, labels: 1, recorded: [{ task: "department", label: "billing", label_source: "agent" }] },
    });
    expect(await labelRecord(inquiryId, "department", "agent")).toEqual({
      prediction_id: predictionId(inquiryId, "department"),
      inquiry_id: inquiryId,
      task: "department",
      model: ROUTE_MODEL,
      input_digest: "",
      features: { length: ARCHIVED_TEXT.length, language: "en", values: {} },
      predicted_label: "logistics",
      confidence: 1,
      label: "billing",
      label_source: "agent",
      occurred_at: Date.parse("2025-05-12T10:14:55.402Z"),
      stage: "production",
    });
    expect(await send(app, "zendesk", change, { at: Date.now() + 1_000 })).toMatchObject({ status: 200, body: { status: "duplicate", inquiry_id: inquiryId } });

    expect(await send(app, "zendesk", zendesk("intent-changed", ticket))).toMatchObject({ status: 202, body: { recorded: [{ task: "intent", label: "track_order" }] } });
    expect(await labelRecord(inquiryId, "intent", "agent")).toMatchObject({
      prediction_id: predictionId(inquiryId, "intent"),
      model: "intent-linear@3",
      predicted_label: "delivery_period",
      confidence: 0.71,
      input_digest: "digest-intent",
      features: { length: 70, language: "en", values: { active_features: 12 } },
      label: "track_order",
    });

    // Solved: the group at that moment confirms the department; Zendesk's ticket types map to no category.
    const solved = await send(app, "zendesk", zendesk("ticket-solved", ticket));
    expect(solved).toMatchObject({
      status: 202,
      body: { recorded: [{ task: "department", label: "logistics", label_source: "outcome" }], unmapped: [{ field: "type", value: "QUESTION" }] },
    });
    expect(await labelRecord(inquiryId, "department", "outcome")).toMatchObject({ predicted_label: "logistics", label: "logistics" });

    const byTrigger = zendesk("group-changed", ticket, { "detail.actor_id": "-1" });
    expect(await send(app, "zendesk", byTrigger)).toMatchObject({ status: 200, body: { reason: "system_change" } });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const labels = records.filter((r) => r.topic === "predictions.feedback" && r.value.inquiry_id === inquiryId);
    expect(labels.map((r) => `${(r.value as PredictionFeedback).task}/${(r.value as PredictionFeedback).label_source}`).sort()).toEqual([
      "department/agent",
      "department/outcome",
      "intent/agent",
    ]);
  });

  it("freshdesk: resolved gives outcome labels for department, category and intent", async () => {
    const ticket = ticketId("fd-labels");
    const inquiryId = await archiveTicket("freshdesk", ticket, { routed: "billing", intent: "payment_issue", category: "PAYMENT" });
    const resolved = await send(app, "freshdesk", freshdesk("ticket-resolved", ticket));
    expect(resolved).toMatchObject({ status: 202, body: { inquiry_id: inquiryId, labels: 3, skipped: [] } });
    expect(await labelRecord(inquiryId, "department", "outcome")).toMatchObject({ predicted_label: "billing", label: "billing" });
    expect(await labelRecord(inquiryId, "category", "outcome")).toMatchObject({ predicted_label: "PAYMENT", label: "REFUND", model: "category-linear@3" });
    expect(await labelRecord(inquiryId, "intent", "outcome")).toMatchObject({ predicted_label: "payment_issue", label: "get_refund" });
  });

  it("generic: not ready until the ticket's inquiry is routed (409 Retry-After); then tasks without a prediction are skipped", async () => {
    const ticket = ticketId("gn-labels");
    const inquiryId = await archiveTicket("generic", ticket, {});
    const update = generic("ticket-updated", ticket);
    const early = await send(app, "generic", update);
    expect(early).toMatchObject({ status: 409, body: { error: "not_ready" } });
    expect(early.headers["retry-after"]).toBe("30");

    await writeArchive(pool, {
      inquiries: [],
      predictions: [],
      routingDecisions: [
        {
          inquiry_id: inquiryId,
          department: "logistics",
          queue: "logistics",
          priority_score: 20,
          escalated: false,
          escalation_reason: null,
          human_review: true,
          review_reasons: ["missing predictions"],
          missing_parts: ["classified"],
          intent: null,
          category: null,
          sentiment: null,
          urgency: null,
          urgency_drivers: [],
          routed_at: iso(T0 + 5_000),
        },
      ],
      responses: [],
    });
    const later = await send(app, "generic", update, { at: Date.now() + 1_000 });
    expect(later).toMatchObject({
      status: 202,
      body: { inquiry_id: inquiryId, labels: 1, recorded: [{ task: "department", label: "orders", label_source: "agent" }], skipped: ["category", "intent"] },
    });
    expect(await labelRecord(inquiryId, "department", "agent")).toMatchObject({ predicted_label: "logistics", label: "orders", occurred_at: Date.parse("2025-05-16T09:02:44Z") });
  });

  it("an unknown ticket or an unmapped value gives no label", async () => {
    expect(await send(app, "zendesk", zendesk("group-changed", ticketId("never-seen")))).toMatchObject({ status: 200, body: { reason: "unknown_ticket" } });
    const unmapped = await send(app, "zendesk", zendesk("group-changed", ticketId("unmapped"), { "event.current": "999" }));
    expect(unmapped).toMatchObject({ status: 200, body: { status: "ignored", reason: "unmapped_value" } });
  });
});

describe("personal data", () => {
  it("never reaches the logs", () => {
    const logs = logLines.join("\n");
    expect(logs).toContain("ticket inquiry accepted");
    for (const secret of ["priya.raman@example.com", "Priya Raman", "jonas.weber@example.org", "Jonas Weber", "Marta", "Linden oak", "card statement", ...Object.values(SECRETS)]) {
      expect(logs).not.toContain(secret);
    }
  });
});
