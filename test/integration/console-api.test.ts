import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Producer } from "kafkajs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runnableProcessor, spawnProcessor, stopProcessor, waitHealthy, type ProcessorProcess } from "../../cli/processes.js";
import { postgresOptions, schemaRegistryOptions } from "../../config/security.js";
import { predictionId } from "../../processors/feedback.js";
import type { AgentReply, InquiryCleaned, InquiryResponse, InquiryRouted, PredictionFeedback } from "../../schemas/types.generated.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics, findProcessor } from "../../streams/topology.js";
import { freePort, setupServices, startApi, tailTopic, testKey, until, type ApiProcess, type Tail } from "../support/api.js";
import { quietLog, serviceEnv } from "../support/topics.js";

/**
 * The agent console's API against the real services: sign-in and the session cookie, CSRF
 * refusal, no data without authentication; the review queue, its live feed, an inquiry's review
 * detail and agents' replies over rows the real archive sink (its own process) writes from
 * records on the pipeline's topics; the model page's data against the real registry.
 */

const endpoints = inject("endpoints");
const run = randomUUID().slice(0, 8);
// Departments of this run only, so the queue's filters and order are checked on rows of ours.
const BILLING = `console-${run}-billing`;
const SHIPPING = `console-${run}-shipping`;
/**
 * The records are dated an hour ahead: a triage pipeline running beside this test (another
 * test's) reads the same topics and archives its own decisions for these inquiries, dated now;
 * the archive keeps the newer record, so ours stay what the test checks.
 */
const T0 = Date.now() + 3_600_000;

let api: ApiProcess;
let archive: ProcessorProcess;
let db: pg.Pool;
let codec: TopicCodec;
let producer: Producer;
let token: string;
let readOnly: string;
let replies: Tail<AgentReply>;
const kafka = createKafka(endpoints, `console-test-${run}`, quietLog);

interface Spec {
  readonly id: string;
  readonly department: string;
  readonly queue: string;
  readonly priority: number;
  readonly review: boolean;
  readonly escalated: boolean;
  readonly channel: "chat" | "api";
  readonly signals?: readonly string[];
}

const specs: Spec[] = [
  { id: `${run}-a`, department: BILLING, queue: "billing-en", priority: 40, review: true, escalated: false, channel: "api" },
  { id: `${run}-b`, department: BILLING, queue: "billing-vip", priority: 90, review: false, escalated: true, channel: "chat", signals: ["outage", "asap"] },
  { id: `${run}-c`, department: SHIPPING, queue: "shipping-en", priority: 65, review: true, escalated: true, channel: "chat" },
  { id: `${run}-d`, department: SHIPPING, queue: "shipping-en", priority: 99, review: false, escalated: false, channel: "api" },
  { id: `${run}-e`, department: BILLING, queue: "billing-en", priority: 65, review: true, escalated: false, channel: "api" },
];

function envelope(spec: Spec) {
  return {
    channel: spec.channel,
    source_id: `src-${spec.id}`,
    thread_id: spec.channel === "chat" ? `session-${spec.id}` : null,
    customer: { id: `cust-${spec.id}`, email: "dana.whitfield@example.com", name: "Dana Whitfield", tier: "premium" },
    received_at: T0,
    reply_to: spec.channel === "chat" ? `session-${spec.id}` : "dana.whitfield@example.com",
    metadata: {},
  } as const;
}

async function publish(spec: Spec, at = T0): Promise<void> {
  const env = envelope(spec);
  const text = `Inquiry ${spec.id}: my invoice is wrong and the service is down, please fix it asap.`;
  const cleaned: InquiryCleaned = {
    inquiry_id: spec.id,
    envelope: env,
    subject: `Subject of ${spec.id}`,
    text,
    language: "en",
    language_confidence: 0.98,
    redaction_count: 0,
    entities: [],
    cleaned_at: at + 10,
  };
  const signals = spec.signals ?? [];
  const urgency: PredictionFeedback = {
    prediction_id: predictionId(spec.id, "urgency"),
    inquiry_id: spec.id,
    task: "urgency",
    model: "urgency@test-1",
    input_digest: "0".repeat(64),
    features: { length: text.length, language: "en", values: Object.fromEntries(signals.map((s) => [`signal_${s}`, 1])) },
    predicted_label: "medium",
    confidence: 0.71,
    label: null,
    label_source: "model",
    occurred_at: at + 20,
    stage: "production",
  };
  const intent: PredictionFeedback = { ...urgency, prediction_id: predictionId(spec.id, "intent"), task: "intent", model: "intent@test-1", predicted_label: "check_invoice", confidence: 0.55, features: { length: text.length, language: "en", values: {} } };
  const routed: InquiryRouted = {
    inquiry_id: spec.id,
    envelope: env,
    text,
    language: "en",
    entities: [],
    department: spec.department,
    queue: spec.queue,
    priority_score: spec.priority,
    escalated: spec.escalated,
    escalation_reason: spec.escalated ? "critical urgency" : null,
    human_review: spec.review,
    review_reasons: spec.review ? ["low_confidence:intent"] : [],
    missing_parts: [],
    intent: "check_invoice",
    category: "INVOICE",
    sentiment: "negative",
    urgency: signals.length ? "critical" : "medium",
    urgency_drivers: signals.length
      ? [
          { name: "signal:asap", weight: 3.3 },
          { name: "signal:outage", weight: 2.68 },
        ]
      : [],
    routed_at: at + 30,
  };
  const response: InquiryResponse = {
    inquiry_id: spec.id,
    envelope: env,
    strategy: "template",
    text: `Drafted reply to ${spec.id}: we are looking into your invoice.`,
    sources: ["kb-invoice"],
    department: spec.department,
    model: null,
    responded_at: at + 40,
  };
  const message = <T>(topic: string, value: T) => ({ topic, messages: [{ key: spec.id, value: codec.encode(topic, value) }] });
  await producer.sendBatch({
    acks: -1,
    topicMessages: [
      message("inquiries.cleaned", cleaned),
      { topic: "predictions.feedback", messages: [urgency, intent].map((value) => ({ key: spec.id, value: codec.encode("predictions.feedback", value) })) },
      message("inquiries.routed", routed),
      message("inquiries.responses", response),
    ],
  });
}

/** The archive holds every part of these inquiries. */
async function archived(ids: readonly string[]): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM switchboard.routing_decisions d
       JOIN switchboard.inquiries i USING (inquiry_id) JOIN switchboard.responses r USING (inquiry_id)
      WHERE d.inquiry_id = ANY($1) AND (extract(epoch FROM d.routed_at) * 1000)::bigint = $2`,
    [ids, T0 + 30],
  );
  return rows[0]!.n === ids.length;
}

interface QueueBody {
  total: number;
  cursor: string;
  items: { inquiry_id: string; priority_score: number; department: string; queue: string; subject: string | null; snippet: string | null; escalated: boolean; human_review: boolean; strategy: string | null }[];
  departments: { department: string; open: number; queues: { queue: string; open: number }[] }[];
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function signIn(key: string): Promise<string> {
  const response = await fetch(`${api.url}/console/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: key }) });
  expect(response.status).toBe(204);
  const cookie = response.headers.get("set-cookie") ?? "";
  expect(cookie).toMatch(/^sb_console=[A-Za-z0-9_-]{43}; /);
  expect(cookie).toMatch(/HttpOnly/);
  expect(cookie).toMatch(/SameSite=Strict/);
  expect(cookie).toMatch(/Path=\//);
  return cookie.split(";")[0]!;
}

/** A Server-Sent Events stream, parsed: every event received so far. */
async function openEvents(url: string, headers: Record<string, string>) {
  const controller = new AbortController();
  const response = await fetch(url, { headers: { ...headers, accept: "text/event-stream" }, signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const events: { event: string; id?: string; data: string }[] = [];
  const comments: string[] = [];
  let ended = false;
  const reading = (async () => {
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut: number;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event: { event: string; id?: string; data: string } = { event: "message", data: "" };
          let isEvent = false;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments.push(line.slice(1).trim());
            else if (line.startsWith("event: ")) {
              event.event = line.slice(7);
              isEvent = true;
            } else if (line.startsWith("id: ")) event.id = line.slice(4);
            else if (line.startsWith("data: ")) {
              event.data += line.slice(6);
              isEvent = true;
            }
          }
          if (isEvent) events.push(event);
        }
      }
    } catch {
      // Aborted by the test.
    }
    ended = true;
  })();
  return { events, comments, ended: () => ended, reading, close: () => controller.abort() };
}

beforeAll(async () => {
  await setupServices(endpoints);
  db = new pg.Pool(postgresOptions(endpoints));
  codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // The real archive sink, a process of its own in the archive group, on a port of its own.
  const port = await freePort();
  archive = spawnProcessor(runnableProcessor(findProcessor("archive").processor), mkdtempSync(path.join(os.tmpdir(), "switchboard-console-archive-")), {
    ...serviceEnv(endpoints),
    LOG_LEVEL: "info",
    SWITCHBOARD_METRICS_PORT: String(port),
    SWITCHBOARD_INSTANCE_ID: `console-test-archive-${run}`,
  });
  await waitHealthy(archive, port, 120_000);
  api = await startApi(endpoints);
  ({ token } = await testKey(endpoints, ["agent", "read", "label"], `console agent ${run}`));
  ({ token: readOnly } = await testKey(endpoints, ["read"], `console reader ${run}`));
  replies = await tailTopic<AgentReply>(kafka, codec, "inquiries.replies", (value) => value.inquiry_id.startsWith(run));
}, 300_000);

afterAll(async () => {
  await replies?.close();
  await producer?.disconnect();
  await api?.stop();
  if (archive) await stopProcessor(archive);
  await db?.end();
});

describe("the agent console's API", () => {
  it("signs in with an agent key for an HttpOnly SameSite=Strict session cookie that authenticates the /v1 routes; without it, no data and the pages send you to the login", async () => {
    // No authentication: pages redirect, data is refused.
    const page = await fetch(`${api.url}/console`, { redirect: "manual" });
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/console/login?next=%2Fconsole");
    expect((await fetch(`${api.url}/console/models`, { redirect: "manual" })).status).toBe(303);
    for (const route of ["/v1/review-queue", "/v1/review-queue/events", "/v1/models", "/v1/label-classes", `/v1/inquiries/${run}-a/review`]) {
      const refused = await fetch(`${api.url}${route}`);
      expect(refused.status, route).toBe(401);
    }
    expect((await fetch(`${api.url}/v1/review-queue`, { headers: { cookie: "sb_console=" + "x".repeat(43) } })).status).toBe(401);
    const login = await fetch(`${api.url}/console/login`);
    expect(login.status).toBe(200);
    expect(await login.text()).toMatch(/<label for="api-key">API key<\/label>/);

    // A key without the agent scope cannot sign in, nor read the queue; a wrong key neither.
    const reader = await fetch(`${api.url}/console/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: readOnly }) });
    expect(reader.status).toBe(403);
    expect(reader.headers.get("set-cookie")).toBeNull();
    expect((await fetch(`${api.url}/v1/review-queue`, { headers: bearer(readOnly) })).status).toBe(403);
    expect((await fetch(`${api.url}/console/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ api_key: "sb_000000000000_" + "A".repeat(43) }) })).status).toBe(401);

    const cookie = await signIn(token);
    const pageIn = await fetch(`${api.url}/console`, { headers: { cookie }, redirect: "manual" });
    expect(pageIn.status).toBe(200);
    expect(pageIn.headers.get("content-security-policy")).toMatch(/frame-ancestors 'none'/);
    expect(await pageIn.text()).toMatch(/Review queue/);
    expect((await fetch(`${api.url}/console/models`, { headers: { cookie } })).status).toBe(200);
    // A page by its file name goes through the same check.
    expect((await fetch(`${api.url}/console/index.html`, { redirect: "manual" })).headers.get("location")).toBe("/console");
    const queue = await fetch(`${api.url}/v1/review-queue?limit=1`, { headers: { cookie } });
    expect(queue.status).toBe(200);
    // The session acts as its key: its scopes, its rate limit.
    expect(queue.headers.get("ratelimit-limit")).not.toBeNull();
    expect((await fetch(`${api.url}/v1/inquiries?size=1`, { headers: { cookie } })).status).toBe(200);

    // Sign-out needs the console's header, ends the session and clears the cookie.
    expect((await fetch(`${api.url}/console/logout`, { method: "POST", headers: { cookie } })).status).toBe(403);
    const out = await fetch(`${api.url}/console/logout`, { method: "POST", headers: { cookie, "x-switchboard-console": "1" } });
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toMatch(/^sb_console=; .*Max-Age=0/);
    expect((await fetch(`${api.url}/v1/review-queue`, { headers: { cookie } })).status).toBe(401);
    expect((await fetch(`${api.url}/console`, { headers: { cookie }, redirect: "manual" })).status).toBe(303);
  });

  it("refuses a cookie-authenticated write without X-Switchboard-Console: 1 (CSRF), and takes it with the header or a key header", async () => {
    const cookie = await signIn(token);
    const body = JSON.stringify({ text: "hello" });
    const forged = await fetch(`${api.url}/v1/inquiries/${run}-nothing/replies`, { method: "POST", headers: { cookie, "content-type": "application/json" }, body });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ error: "csrf_header_required" });
    const labels = await fetch(`${api.url}/v1/inquiries/${run}-nothing/labels`, { method: "POST", headers: { cookie, "content-type": "application/json" }, body: JSON.stringify({ sentiment: "neutral" }) });
    expect(labels.status).toBe(403);
    // With the header the request goes through to the route (which finds no such inquiry).
    const sent = await fetch(`${api.url}/v1/inquiries/${run}-nothing/replies`, { method: "POST", headers: { cookie, "content-type": "application/json", "x-switchboard-console": "1" }, body });
    expect(sent.status).toBe(404);
    // A key in a header is no browser's doing: no header needed.
    expect((await fetch(`${api.url}/v1/inquiries/${run}-nothing/replies`, { method: "POST", headers: { ...bearer(token), "content-type": "application/json" }, body })).status).toBe(404);
  });

  it("lists what the archive holds flagged or escalated, by priority, with department and queue filters, and the live feed reports new items", { timeout: 180_000 }, async () => {
    const cookie = await signIn(token);
    const start = (await (await fetch(`${api.url}/v1/review-queue?limit=1`, { headers: { cookie } })).json()) as QueueBody;
    const feed = await openEvents(`${api.url}/v1/review-queue/events?cursor=${start.cursor}`, { cookie });
    try {
      for (const spec of specs) await publish(spec);
      expect(await until(async () => ((await archived(specs.map((s) => s.id))) ? true : undefined), 90_000, 500), "the archive sink did not write the records").toBe(true);

      const ours = (body: QueueBody) => body.items.filter((item) => item.inquiry_id.startsWith(run));
      const all = (await (await fetch(`${api.url}/v1/review-queue?department=${BILLING}`, { headers: { cookie } })).json()) as QueueBody;
      // Flagged for review or escalated only (d is neither), highest priority first, ties oldest first then by id.
      expect(ours(all).map((i) => i.inquiry_id)).toEqual([`${run}-b`, `${run}-e`, `${run}-a`]);
      expect(all.total).toBe(3);
      const b = all.items[0]!;
      expect(b).toMatchObject({ department: BILLING, queue: "billing-vip", priority_score: 90, escalated: true, human_review: false, subject: `Subject of ${run}-b`, strategy: "template" });
      expect(b.snippet).toMatch(/^Inquiry /);

      // The same as PostgreSQL's own answer.
      const { rows } = await db.query<{ inquiry_id: string }>(
        `SELECT inquiry_id FROM switchboard.routing_decisions WHERE department = ANY($1) AND (human_review OR escalated) ORDER BY priority_score DESC, routed_at, inquiry_id`,
        [[BILLING, SHIPPING]],
      );
      const both = [...ours((await (await fetch(`${api.url}/v1/review-queue?department=${BILLING}`, { headers: { cookie } })).json()) as QueueBody), ...ours((await (await fetch(`${api.url}/v1/review-queue?department=${SHIPPING}`, { headers: { cookie } })).json()) as QueueBody)];
      expect(both.map((i) => i.inquiry_id).sort()).toEqual(rows.map((r) => r.inquiry_id).sort());

      const vip = (await (await fetch(`${api.url}/v1/review-queue?department=${BILLING}&queue=billing-vip`, { headers: { cookie } })).json()) as QueueBody;
      expect(vip.items.map((i) => i.inquiry_id)).toEqual([`${run}-b`]);
      const shipping = (await (await fetch(`${api.url}/v1/review-queue?department=${SHIPPING}`, { headers: { cookie } })).json()) as QueueBody;
      expect(shipping.items.map((i) => i.inquiry_id)).toEqual([`${run}-c`]);
      // The facets list every department and queue with open items, whatever the filter.
      const facet = shipping.departments.find((d) => d.department === BILLING);
      expect(facet).toEqual({ department: BILLING, open: 3, queues: [{ queue: "billing-en", open: 2 }, { queue: "billing-vip", open: 1 }] });
      expect((await fetch(`${api.url}/v1/review-queue?limit=0`, { headers: { cookie } })).status).toBe(422);

      // The feed announced the flagged ones (the unflagged d is no queue change), with heartbeats' cursor as the id.
      const announced = await until(async () => {
        const ids = new Set(feed.events.filter((e) => e.event === "changed").flatMap((e) => (JSON.parse(e.data) as { inquiry_ids: string[] }).inquiry_ids));
        return [`${run}-a`, `${run}-b`, `${run}-c`, `${run}-e`].every((id) => ids.has(id)) ? ids : undefined;
      }, 15_000);
      expect(announced, `events: ${JSON.stringify(feed.events)}`).toBeDefined();
      expect(announced!.has(`${run}-d`)).toBe(false);
      const last = feed.events.filter((e) => e.event === "changed").at(-1)!;
      expect(last.id).toBe((JSON.parse(last.data) as { cursor: string }).cursor);
    } finally {
      feed.close();
    }
  });

  it("shows an inquiry as an agent reviews it: text, predictions with model@version, the urgency signals that drove the level, the routing reasons, the drafted reply", async () => {
    const response = await fetch(`${api.url}/v1/inquiries/${run}-b/review`, { headers: bearer(token) });
    expect(response.status).toBe(200);
    const detail = (await response.json()) as {
      open: boolean;
      inquiry: { text: string; channel: string; customer: { id: string; tier: string } };
      predictions: { task: string; model: string; predicted_label: string; confidence: number }[];
      urgency: { level: string; model_level: string; model: string; signals: string[]; drivers: unknown[]; explanation: string };
      routing: { escalated: boolean; escalation_reason: string; department: string };
      response: { strategy: string; text: string };
      labels: unknown[];
      replies: unknown[];
    };
    expect(detail.open).toBe(true);
    expect(detail.inquiry).toMatchObject({ channel: "chat", customer: { id: `cust-${run}-b`, tier: "premium" } });
    expect(detail.inquiry.text).toMatch(/invoice is wrong/);
    // (A pipeline running beside this test may have added its own category and sentiment predictions.)
    expect(detail.predictions.filter((p) => p.task === "intent" || p.task === "urgency").map((p) => [p.task, p.model, p.predicted_label, p.confidence])).toEqual([
      ["intent", "intent@test-1", "check_invoice", 0.55],
      ["urgency", "urgency@test-1", "medium", 0.71],
    ]);
    expect(detail.urgency).toMatchObject({ level: "critical", model_level: "medium", model: "urgency@test-1", signals: ["outage", "asap"] });
    expect(detail.urgency.drivers).toEqual([
      { name: "signal:asap", weight: 3.3 },
      { name: "signal:outage", weight: 2.68 },
    ]);
    expect(detail.urgency.explanation).toBe(
      "critical: the model said medium, signals outage, asap; what moved it (log-odds, largest first): signal:asap +3.30, signal:outage +2.68",
    );
    expect(detail.routing).toMatchObject({ escalated: true, escalation_reason: "critical urgency", department: BILLING });
    expect(detail.response).toMatchObject({ strategy: "template", text: `Drafted reply to ${run}-b: we are looking into your invoice.` });
    expect(detail.replies).toEqual([]);
    // Only redacted data: the customer's address and name are nowhere.
    expect(JSON.stringify(detail)).not.toMatch(/dana|Whitfield/i);
    expect((await fetch(`${api.url}/v1/inquiries/${run}-missing/review`, { headers: bearer(token) })).status).toBe(404);

    const classes = (await (await fetch(`${api.url}/v1/label-classes`, { headers: bearer(token) })).json()) as Record<string, string[]>;
    expect(classes.sentiment).toEqual(["negative", "neutral", "positive"]);
    expect(classes.urgency).toEqual(["low", "medium", "high", "critical"]);
    expect(classes.intent!.length).toBeGreaterThan(5);
    expect(classes.department!.length).toBeGreaterThan(1);
  });

  it("sends an agent's reply as an AgentReply on inquiries.replies, which the archive keeps once; the inquiry leaves the queue and the feed says so", { timeout: 120_000 }, async () => {
    const cookie = await signIn(token);
    const start = (await (await fetch(`${api.url}/v1/review-queue?limit=1`, { headers: { cookie } })).json()) as QueueBody;
    const feed = await openEvents(`${api.url}/v1/review-queue/events?cursor=${start.cursor}`, { cookie });
    try {
      const replyId = randomUUID();
      const send = (text: string, id = replyId) =>
        fetch(`${api.url}/v1/inquiries/${run}-b/replies`, { method: "POST", headers: { cookie, "content-type": "application/json", "x-switchboard-console": "1" }, body: JSON.stringify({ text, reply_id: id }) });
      // The draft as it was (the browser's line endings and blanks aside): not edited.
      const asDrafted = await send(`  Drafted reply to ${run}-b: we are looking into your invoice.\r\n`);
      expect(asDrafted.status).toBe(202);
      expect(await asDrafted.json()).toMatchObject({ reply_id: replyId, inquiry_id: `${run}-b`, edited: false });
      // A retry with the same id is the same reply.
      expect((await send(`  Drafted reply to ${run}-b: we are looking into your invoice.\r\n`)).status).toBe(202);
      const editedId = randomUUID();
      const edited = await fetch(`${api.url}/v1/inquiries/${run}-c/replies`, { method: "POST", headers: { ...bearer(token), "content-type": "application/json" }, body: JSON.stringify({ text: "Fixed: your parcel is on its way.", reply_id: editedId }) });
      expect(edited.status).toBe(202);
      expect(await edited.json()).toMatchObject({ edited: true });
      expect((await send("   ")).status).toBe(422);

      const records = await until(async () => {
        const seen = replies.records();
        return seen.some((r) => r.value.reply_id === editedId) && seen.filter((r) => r.value.reply_id === replyId).length >= 2 ? seen : undefined;
      }, 30_000);
      expect(records).toBeDefined();
      const record = records!.find((r) => r.value.reply_id === replyId)!;
      expect(record.key).toBe(`${run}-b`);
      expect(record.value).toMatchObject({
        inquiry_id: `${run}-b`,
        agent: `console agent ${run}`,
        edited: false,
        // Where the chat gateway delivers it: the customer's session, which is the chat's thread.
        envelope: { channel: "chat", thread_id: `session-${run}-b`, reply_to: `session-${run}-b`, customer: { id: `cust-${run}-b`, tier: "premium", email: null, name: null } },
      });

      const stored = await until(async () => {
        const { rows } = await db.query<{ reply_id: string; inquiry_id: string; agent: string; edited: boolean; channel: string; text: string }>(
          "SELECT reply_id, inquiry_id, agent, edited, channel, text FROM switchboard.agent_replies WHERE inquiry_id = ANY($1) ORDER BY inquiry_id",
          [[`${run}-b`, `${run}-c`]],
        );
        return rows.length === 2 ? rows : undefined;
      }, 30_000, 500);
      expect(stored).toEqual([
        { reply_id: replyId, inquiry_id: `${run}-b`, agent: `console agent ${run}`, edited: false, channel: "chat", text: `  Drafted reply to ${run}-b: we are looking into your invoice.\r\n` },
        { reply_id: editedId, inquiry_id: `${run}-c`, agent: `console agent ${run}`, edited: true, channel: "chat", text: "Fixed: your parcel is on its way." },
      ]);

      // Answered: out of the queue, and the detail lists the reply.
      const billing = (await (await fetch(`${api.url}/v1/review-queue?department=${BILLING}`, { headers: { cookie } })).json()) as QueueBody;
      expect(billing.items.map((i) => i.inquiry_id)).toEqual([`${run}-e`, `${run}-a`]);
      const detail = (await (await fetch(`${api.url}/v1/inquiries/${run}-b/review`, { headers: { cookie } })).json()) as { open: boolean; replies: { reply_id: string; edited: boolean }[] };
      expect(detail.open).toBe(false);
      expect(detail.replies).toMatchObject([{ reply_id: replyId, edited: false }]);
      const left = await until(async () => {
        const ids = new Set(feed.events.filter((e) => e.event === "changed").flatMap((e) => (JSON.parse(e.data) as { inquiry_ids: string[] }).inquiry_ids));
        return ids.has(`${run}-b`) && ids.has(`${run}-c`) ? ids : undefined;
      }, 15_000);
      expect(left).toBeDefined();
    } finally {
      feed.close();
    }
  });

  it("the model page's data is the registry's: production version and held-out metrics, live quality, drift state, lifecycle events", async () => {
    const response = await fetch(`${api.url}/v1/models`, { headers: bearer(token) });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      models: {
        name: string;
        production: { version: string; model: string; held_out: { accuracy: number | null } } | null;
        quality: { stage: string; model: string; window: string; predictions: number; estimate_reason: string }[];
        drift: { state: string };
        lifecycle: { id: number; event: string; version: string | null }[];
      }[];
    };
    const { rows: production } = await db.query<{ model: string; version: string; accuracy: number | null }>(
      `SELECT v.model, v.version, (SELECT value FROM model_registry.metrics m WHERE m.model = v.model AND m.version = v.version AND m.split = 'test' AND m.metric = 'accuracy' AND m.class_label = '') AS accuracy
         FROM model_registry.versions v WHERE v.stage = 'production' ORDER BY v.model`,
    );
    expect(production.length).toBeGreaterThan(0);
    for (const row of production) {
      const model = body.models.find((m) => m.name === row.model);
      expect(model, row.model).toBeDefined();
      expect(model!.production).toMatchObject({ version: row.version, model: `${row.model}@${row.version}`, held_out: { accuracy: row.accuracy } });
      expect(["alarm", "normal", "unwatched"]).toContain(model!.drift.state);
      const { rows: decisions } = await db.query<{ id: string; action: string }>("SELECT id, action FROM model_registry.decisions WHERE model = $1 ORDER BY id DESC LIMIT 10", [row.model]);
      expect(model!.lifecycle.map((e) => [e.id, e.event])).toEqual(decisions.map((d) => [Number(d.id), d.action]));
      if (row.model !== "embedder") {
        expect(model!.quality.filter((q) => q.stage === "production").map((q) => q.window)).toEqual(["1h", "1d"]);
        expect(model!.quality[0]!.model).toBe(`${row.model}@${row.version}`);
      }
    }
    // The OpenAPI document describes the console's routes.
    const openapi = (await (await fetch(`${api.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const route of ["/v1/review-queue", "/v1/review-queue/events", "/v1/inquiries/{id}/review", "/v1/inquiries/{id}/replies", "/v1/models", "/v1/label-classes", "/console/login"]) {
      expect(openapi.paths[route], route).toBeDefined();
    }
  });

  it("ends the live feed cleanly when the API shuts down", { timeout: 60_000 }, async () => {
    const cookie = await signIn(token);
    const feed = await openEvents(`${api.url}/v1/review-queue/events`, { cookie });
    await until(async () => (feed.comments.length > 0 ? true : undefined), 5_000, 50);
    expect(feed.comments[0]).toMatch(/review queue changes after \d+/);
    const exit = new Promise<number | null>((resolve) => api.proc.child.once("exit", (code) => resolve(code)));
    await api.stop();
    expect(await exit).toBe(0);
    await feed.reading;
    expect(feed.ended()).toBe(true);
  });
});
