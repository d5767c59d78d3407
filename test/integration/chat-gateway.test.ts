import { randomUUID } from "node:crypto";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka, Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Redis } from "ioredis";
import { redisOptions, schemaRegistryOptions } from "../../config/security.js";
import { compareReplyIds } from "../../connectors/chat/store.js";
import { mintChatToken } from "../../connectors/chat/tokens.js";
import type { AgentReply, InquiryEnvelope, InquiryReceived, InquiryResponse } from "../../schemas/types.generated.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { post, setupServices, startApi, tailTopic, testKey, until, type ApiProcess, type Tail } from "../support/api.js";
import { startChat, testChatSecret, testChatToken, type ChatProcess } from "../support/chat.js";
import { ChatClient } from "../support/chat-client.js";
import { quietLog } from "../support/topics.js";

/**
 * The chat gateway against the real stack: two instances of `switchboard run chat` sharing Redis
 * and the delivery consumer group, real WebSockets, records read from and written to Kafka.
 * Replies are written to inquiries.responses and inquiries.replies here (as respond and the
 * API would write them), so that each case controls what arrives and when.
 */

const endpoints = inject("endpoints");
const runId = `chat-gw-${randomUUID().slice(0, 8)}`;
let one: ChatProcess;
let two: ChatProcess;
let kafka: Kafka;
let codec: TopicCodec;
let producer: Producer;
let received: Tail<InquiryReceived>;
const sessions = new Set<string>();
const clients: ChatClient[] = [];

/** Short limits, so that each is reached in a test: 5 messages a minute, 8 KiB frames, 64 KiB unsent per socket. */
const GATEWAY_ENV = {
  SWITCHBOARD_CHAT_RATE_LIMIT: "5",
  SWITCHBOARD_CHAT_RATE_WINDOW_MS: "60000",
  SWITCHBOARD_CHAT_MAX_MESSAGE_BYTES: "8192",
  SWITCHBOARD_CHAT_MAX_BUFFERED_BYTES: "65536",
  SWITCHBOARD_CHAT_GUEST_SESSION_LIMIT: "3",
  SWITCHBOARD_CHAT_PAGE_PING_MS: "7000",
};

const session = (customer = {}) => {
  const made = testChatToken({ name: "Dana Whitfield", ...customer });
  sessions.add(made.sessionId);
  return made;
};

const connect = async (gateway: ChatProcess, token: string, resumeAfter: string | null = null) => {
  const client = await ChatClient.session(gateway.wsUrl, token, resumeAfter);
  clients.push(client);
  return client;
};

const envelopeFor = (sessionId: string, receivedAt = Date.now()): InquiryEnvelope => ({
  channel: "chat",
  source_id: `${sessionId}:${randomUUID()}`,
  thread_id: sessionId,
  customer: { id: null, email: null, name: "Dana Whitfield", tier: null },
  received_at: receivedAt,
  reply_to: sessionId,
  metadata: { test_run: runId },
});

const draft = (sessionId: string, inquiryId: string, text: string): InquiryResponse => ({
  inquiry_id: inquiryId,
  envelope: envelopeFor(sessionId, Date.now() - 1_000),
  strategy: "template",
  text,
  sources: [],
  department: "orders",
  model: null,
  responded_at: Date.now(),
});

const agentReply = (sessionId: string, inquiryId: string, text: string): AgentReply => ({
  reply_id: randomUUID(),
  inquiry_id: inquiryId,
  envelope: envelopeFor(sessionId, Date.now() - 2_000),
  text,
  agent: "dana-the-agent",
  edited: true,
  sent_at: Date.now(),
});

async function writeDrafts(...responses: InquiryResponse[]) {
  await producer.send({
    topic: "inquiries.responses",
    acks: -1,
    messages: responses.map((r) => ({ key: r.inquiry_id, value: codec.encode("inquiries.responses", r) })),
  });
}

async function writeAgentReplies(...replies: AgentReply[]) {
  await producer.send({
    topic: "inquiries.replies",
    acks: -1,
    messages: replies.map((r) => ({ key: r.inquiry_id, value: codec.encode("inquiries.replies", r) })),
  });
}

/** A counter's value in a gateway's /metrics (summed over label sets that contain `labels`). */
async function metric(gateway: ChatProcess, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

beforeAll(async () => {
  await setupServices(endpoints);
  kafka = createKafka(endpoints, runId, quietLog);
  codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  received = await tailTopic<InquiryReceived>(kafka, codec, "inquiries.received", (v) => v.envelope.channel === "chat" && sessions.has(v.envelope.thread_id ?? ""));
  [one, two] = await Promise.all([
    // One trusts the test as its proxy (X-Forwarded-For names the client), two trusts none.
    startChat(endpoints, { instanceId: `${runId}-one`, env: { ...GATEWAY_ENV, SWITCHBOARD_CHAT_HEARTBEAT_MS: "1000", SWITCHBOARD_TRUSTED_PROXIES: "127.0.0.1,::1" } }),
    startChat(endpoints, { instanceId: `${runId}-two`, env: GATEWAY_ENV }),
  ]);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await received?.close();
  await producer?.disconnect();
  one?.kill();
  await two?.stop();
});

describe("hello", () => {
  it("answers a valid token with a welcome naming the session and the instance; an expired one closes 4002, a forged or garbled one 4001", async () => {
    const { sessionId, token } = session();
    const client = await connect(two, token);
    expect(client.frames[0]).toEqual({ type: "welcome", session_id: sessionId, instance: two.instanceId, resumed: false, ping_after_ms: 7000 });

    const expired = mintChatToken(testChatSecret(), { ttlSeconds: 60, guest: false, now: Date.now() - 120_000 });
    const forged = mintChatToken("a different secret, at least thirty-two characters", { ttlSeconds: 60, guest: false });
    const [payload] = token.split(".").slice(1);
    const altered = token.replace(payload!, Buffer.from(JSON.stringify({ sid: randomUUID(), cus: {}, iat: 0, exp: 9e9 })).toString("base64url"));
    for (const [bad, code] of [
      [expired.token, 4002],
      [forged.token, 4001],
      [altered, 4001],
      ["not a token", 4001],
      [42, 4001],
    ] as const) {
      const refused = await ChatClient.open(two.wsUrl);
      refused.send({ type: "hello", token: bad, resume_after: null });
      expect((await refused.closed).code, String(bad).slice(0, 30)).toBe(code);
      expect(refused.frames).toEqual([]);
    }
  });

  it("closes 4002 when the session expires on an open socket", async () => {
    const { token, session: short } = mintChatToken(testChatSecret(), { ttlSeconds: 2, guest: false });
    sessions.add(short.sessionId);
    const client = await connect(two, token);
    const closed = await client.closed;
    expect(closed.code).toBe(4002);
    expect(Date.now()).toBeGreaterThanOrEqual(short.expiresAt);
  });

  it("closes 4003 when the first frame is not a hello, or no hello comes within 5 s", async () => {
    const { token } = session();
    const early = await ChatClient.open(two.wsUrl);
    early.send({ type: "message", client_id: "m1", text: "hello?" });
    expect((await early.closed).code).toBe(4003);
    const garbled = await ChatClient.open(two.wsUrl);
    garbled.send("{not json");
    expect((await garbled.closed).code).toBe(4003);
    const silent = await ChatClient.open(two.wsUrl);
    const opened = Date.now();
    const closed = await silent.closed;
    expect(closed.code).toBe(4003);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(4_500);
    // The token still works afterwards: nothing was spent on the refused sockets.
    const client = await connect(two, token);
    expect(client.frames[0]?.type).toBe("welcome");
  });
});

describe("messages", () => {
  let api: ApiProcess;
  beforeAll(async () => {
    api = await startApi(endpoints, { SWITCHBOARD_CHAT_TOKEN_SECRET: testChatSecret() });
  });
  afterAll(async () => {
    await api?.stop();
  });

  it("become inquiries on inquiries.received (channel chat, thread and reply address the session, the API's customer), acked once Kafka has them; a resent client_id answers the same inquiry and publishes nothing", async () => {
    const key = await testKey(endpoints, ["ingest"]);
    const issued = await post(`${api.url}/v1/chat/sessions`, key.token, { customer: { id: "cust-17", email: "dana.whitfield@example.com", name: "Dana Whitfield", tier: "premium" } });
    expect(issued.status).toBe(201);
    const { session_id: sessionId, token, expires_at: expiresAt } = (await issued.json()) as { session_id: string; token: string; expires_at: string };
    sessions.add(sessionId);
    expect(new Date(expiresAt).getTime()).toBeGreaterThan(Date.now() + 3_600_000);
    const unauthorized = await post(`${api.url}/v1/chat/sessions`, "sb_wrong", {});
    expect(unauthorized.status).toBe(401);
    const readOnly = await testKey(endpoints, ["read"]);
    expect((await post(`${api.url}/v1/chat/sessions`, readOnly.token, {})).status).toBe(403);
    expect((await post(`${api.url}/v1/chat/sessions`, key.token, { customer: { email: "not an address" } })).status).toBe(422);
    const document = (await (await fetch(`${api.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(document.paths["/v1/chat/sessions"] ?? {})).toEqual(["post"]);
    expect(Object.keys(document.paths["/v1/chat/sessions/{sessionId}"] ?? {})).toEqual(["delete"]);

    const client = await connect(one, token);
    const clientId = client.message("Hi, my order 48213 has not arrived. Where is it?");
    const ack = await client.next((f) => f.type === "ack");
    expect(ack).toEqual({ type: "ack", client_id: clientId, inquiry_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const inquiryId = ack.inquiry_id as string;
    // Acknowledged after Kafka's acknowledgement: the record is there (allow for the tail's fetch).
    const record = await until(async () => received.records().find((r) => r.key === inquiryId), 10_000);
    expect(record?.value).toMatchObject({
      inquiry_id: inquiryId,
      subject: null,
      body: "Hi, my order 48213 has not arrived. Where is it?",
      content_type: "text",
      envelope: {
        channel: "chat",
        source_id: `${sessionId}:${clientId}`,
        thread_id: sessionId,
        reply_to: sessionId,
        customer: { id: "cust-17", email: "dana.whitfield@example.com", name: "Dana Whitfield", tier: "premium" },
      },
    });
    expect(await client.next((f) => f.type === "typing")).toEqual({ type: "typing", on: true });

    // The same client id again, on this socket and on a new one at the other instance (a reconnect that resends).
    client.message("Hi, my order 48213 has not arrived. Where is it?", clientId);
    await until(async () => (client.frames.filter((f) => f.type === "ack").length === 2 ? true : undefined), 10_000);
    const elsewhere = await connect(two, token);
    expect((await client.closed).code).toBe(4009);
    elsewhere.message("Hi, my order 48213 has not arrived. Where is it?", clientId);
    const again = await elsewhere.next((f) => f.type === "ack");
    expect(again.inquiry_id).toBe(inquiryId);
    expect(client.frames.filter((f) => f.type === "ack").map((f) => f.inquiry_id)).toEqual([inquiryId, inquiryId]);
    // A second, distinct message is a second inquiry.
    const second = elsewhere.message("And can I change the delivery address?");
    const secondAck = await elsewhere.next((f) => f.type === "ack" && f.client_id === second);
    expect(secondAck.inquiry_id).not.toBe(inquiryId);
    await until(async () => (received.records().some((r) => r.key === secondAck.inquiry_id) ? true : undefined), 10_000);
    // Nothing twice: one record per inquiry, whatever the resends.
    const ours = received.records().filter((r) => r.value.envelope.thread_id === sessionId);
    expect(ours.map((r) => r.key).sort()).toEqual([inquiryId, secondAck.inquiry_id].sort());
  });

  it("DELETE /v1/chat/sessions/{id} ends a session: its open socket closes 4010 on whichever instance holds it, and its token opens nothing more anywhere", async () => {
    const key = await testKey(endpoints, ["ingest"]);
    const { session_id: sessionId, token } = (await (await post(`${api.url}/v1/chat/sessions`, key.token, {})).json()) as { session_id: string; token: string };
    sessions.add(sessionId);
    const end = (bearer: string, id = sessionId) => fetch(`${api.url}/v1/chat/sessions/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${bearer}` } });
    const client = await connect(two, token);
    expect(client.frames[0]?.type).toBe("welcome");
    expect((await end((await testKey(endpoints, ["read"])).token)).status).toBe(403);
    expect((await end(key.token, "not-a-session")).status).toBe(422);
    expect((await end(key.token)).status).toBe(204);
    expect((await client.closed).code).toBe(4010);
    for (const gateway of [one, two]) {
      const refused = await ChatClient.open(gateway.wsUrl);
      refused.send({ type: "hello", token, resume_after: null });
      expect((await refused.closed).code).toBe(4010);
      expect(refused.frames).toEqual([]);
    }
    // Again is the same as once.
    expect((await end(key.token)).status).toBe(204);
    expect(await metric(two, "switchboard_chat_closes_total", 'reason="revoked"')).toBeGreaterThanOrEqual(2);
  });

  it("refuses an invalid frame or a text over 4000 characters with an error event and keeps the socket; a frame over the size limit closes 1009", async () => {
    const { token } = session();
    const client = await connect(two, token);
    client.send({ type: "message", client_id: "x1", text: "   " });
    client.send({ type: "message", text: "no id" });
    client.send({ type: "message", client_id: "x2", text: "a".repeat(4_001) });
    client.send({ type: "dance" });
    client.send({ type: "received", id: "not-an-id" });
    client.send(Buffer.from([1, 2, 3]));
    await until(async () => (client.frames.filter((f) => f.type === "error").length >= 6 ? true : undefined), 10_000);
    const errors = client.frames.filter((f) => f.type === "error");
    expect(errors.map((f) => [f.code, f.client_id])).toEqual([
      ["invalid_message", "x1"],
      ["invalid_message", undefined],
      ["too_long", "x2"],
      ["invalid_message", undefined],
      ["invalid_message", undefined],
      ["invalid_message", undefined],
    ]);
    expect(client.socket.readyState).toBe(client.socket.OPEN);
    client.message("still here");
    await client.next((f) => f.type === "ack");

    client.send({ type: "message", client_id: "big", text: "b".repeat(9_000) });
    expect((await client.closed).code).toBe(1009);
    await until(async () => ((await metric(two, "switchboard_chat_closes_total", 'reason="too_big"')) > 0 ? true : undefined), 5_000);
  });

  it("limits a session to 5 messages a window, across sockets and instances: the sixth gets rate_limited with retry_after_ms", async () => {
    const { token } = session();
    const first = await connect(one, token);
    const ids = [0, 1, 2].map((i) => first.message(`question ${i}`));
    await until(async () => (first.frames.filter((f) => f.type === "ack").length === 3 ? true : undefined), 10_000);
    first.close();
    const second = await connect(two, token);
    const more = [3, 4, 5].map((i) => second.message(`question ${i}`));
    const limited = await second.next((f) => f.type === "error");
    expect(limited).toMatchObject({ code: "rate_limited", client_id: more[2] });
    expect(limited.retry_after_ms).toBeGreaterThan(0);
    expect(limited.retry_after_ms).toBeLessThanOrEqual(60_000);
    await until(async () => (second.frames.filter((f) => f.type === "ack").length === 2 ? true : undefined), 10_000);
    expect(second.frames.filter((f) => f.type === "ack").map((f) => f.client_id)).toEqual(more.slice(0, 2));
    expect(ids).toHaveLength(3);
    expect(second.socket.readyState).toBe(second.socket.OPEN);
  });
});

describe("ping", () => {
  it("answers each ping with a pong at once, counted by type; pings never count against the session's message limit", async () => {
    const { token } = session();
    const [pingsBefore, pongsBefore] = [await metric(two, "switchboard_chat_messages_total", 'type="ping"'), await metric(two, "switchboard_chat_messages_total", 'type="pong"')];
    const client = await connect(two, token);
    // Far more pings than the 5 messages a window allows, as an idle page sends over a long wait.
    const PINGS = 12;
    for (let i = 0; i < PINGS; i++) {
      client.send({ type: "ping" });
      await client.until(() => (client.frames.filter((f) => f.type === "pong").length === i + 1 ? true : undefined), 10_000);
    }
    expect(client.frames.map((f) => f.type)).toEqual(["welcome", ...Array<string>(PINGS).fill("pong")]);
    expect(client.frames.at(-1)).toEqual({ type: "pong" });
    // The session still has its whole window of messages.
    const ids = [0, 1, 2, 3, 4].map((i) => client.message(`question ${i}`));
    await client.until(() => (client.frames.filter((f) => f.type === "ack" || f.type === "error").length === ids.length ? true : undefined), 20_000);
    expect(client.frames.filter((f) => f.type === "error")).toEqual([]);
    expect(client.frames.filter((f) => f.type === "ack").map((f) => f.client_id).sort()).toEqual([...ids].sort());
    // A ping between messages is answered too, and the socket stays open throughout.
    client.send({ type: "ping" });
    await client.until(() => (client.frames.filter((f) => f.type === "pong").length === PINGS + 1 ? true : undefined), 10_000);
    expect(client.frames.filter((f) => f.type === "pong")).toHaveLength(PINGS + 1);
    expect(client.socket.readyState).toBe(client.socket.OPEN);
    await until(async () => ((await metric(two, "switchboard_chat_messages_total", 'type="ping"')) - pingsBefore >= PINGS + 1 ? true : undefined), 5_000);
    expect(await metric(two, "switchboard_chat_messages_total", 'type="pong"')).toBeGreaterThanOrEqual(pongsBefore + PINGS + 1);
  });

  it("takes a ping sent with the hello, before the session is open, once the hello has opened it", async () => {
    const { token } = session();
    const client = await ChatClient.open(two.wsUrl);
    clients.push(client);
    client.send({ type: "hello", token, resume_after: null });
    client.send({ type: "ping" });
    await client.next((f) => f.type === "pong");
    expect(client.frames.map((f) => f.type)).toEqual(["welcome", "pong"]);
  });
});

describe("guest sessions", () => {
  it("POST /chat/sessions issues a working session and limits the sessions per address; the page config says what the page needs", async () => {
    const page = await fetch(`${two.url}/chat`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const config = await (await fetch(`${two.url}/chat/config.json`)).json();
    expect(config).toEqual({ gateways: [], guest_sessions: true, max_message_bytes: 8192, max_text_chars: 4000 });
    for (const body of [JSON.stringify({ name: "" }), "{not json", JSON.stringify({ name: "x".repeat(201) })]) {
      const bad = await fetch(`${two.url}/chat/sessions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(bad.status, body.slice(0, 20)).toBe(400);
    }
    const answers: Response[] = [];
    for (let i = 0; i < 5; i++) {
      answers.push(await fetch(`${two.url}/chat/sessions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Guest" }) }));
    }
    const statuses = answers.map((a) => a.status);
    // Other tests' guests share the address's window: at most three of ours get through, and then none.
    const firstRefused = statuses.indexOf(429);
    expect(firstRefused).toBeGreaterThanOrEqual(0);
    expect(firstRefused).toBeLessThanOrEqual(3);
    expect(statuses.slice(firstRefused).every((s) => s === 429)).toBe(true);
    expect(Number(answers[firstRefused]!.headers.get("retry-after"))).toBeGreaterThan(0);
    if (firstRefused > 0) {
      const created = (await answers[0]!.json()) as { session_id: string; token: string; expires_at: string };
      const client = await connect(one, created.token);
      expect(client.frames[0]).toMatchObject({ type: "welcome", session_id: created.session_id });
    }
  });

  it("counts the client address X-Forwarded-For names behind a trusted proxy, and the connection's own address otherwise", async () => {
    // Documentation addresses (RFC 5737) unique to the run: no other test's guests share their windows.
    const octet = () => 1 + Math.floor(Math.random() * 250);
    const [customerA, customerB] = [`198.51.100.${octet()}`, `203.0.113.${octet()}`];
    const guest = (gateway: ChatProcess, forwardedFor: string) =>
      fetch(`${gateway.url}/chat/sessions`, { method: "POST", headers: { "content-type": "application/json", "x-forwarded-for": forwardedFor }, body: "{}" }).then((r) => r.status);
    const behindProxy: number[] = [];
    for (let i = 0; i < 4; i++) behindProxy.push(await guest(one, customerA));
    expect(behindProxy, `customer ${customerA} through the trusted proxy: three sessions a window, then refused`).toEqual([201, 201, 201, 429]);
    expect(await guest(one, customerB), `another customer through the same proxy has a window of its own`).toBe(201);
    // Not trusted: whatever the header says, every request counts against the connection's address.
    const untrusted: number[] = [];
    for (let i = 0; i < 4; i++) untrusted.push(await guest(two, `192.0.2.${octet()}`));
    expect(untrusted, "four sessions from one address past a limit of three").toContain(429);
  });
});

describe("replies", () => {
  it("delivers a drafted reply and an agent's reply for the session on its socket once each, however often the record is read; typing goes off with the reply", async () => {
    const { sessionId, token } = session();
    const client = await connect(two, token);
    client.message("My kettle arrived broken");
    const ack = await client.next((f) => f.type === "ack");
    const inquiryId = ack.inquiry_id as string;
    const drafted = draft(sessionId, inquiryId, "Sorry to hear that: we will send a new kettle today.");
    // Twice: as a consumer that crashed before its commit would read it again.
    await writeDrafts(drafted, drafted);
    const reply = await client.next((f) => f.type === "reply");
    expect(reply).toEqual({
      type: "reply",
      id: expect.stringMatching(/^\d+-\d+$/),
      inquiry_id: inquiryId,
      text: drafted.text,
      author: "assistant",
      agent: null,
      strategy: "template",
      sent_at: new Date(drafted.responded_at).toISOString(),
    });
    await client.next((f) => f.type === "typing" && f.on === false);
    const byAgent = agentReply(sessionId, inquiryId, "Hello Dana, a courier picks up the broken one tomorrow.");
    await writeAgentReplies(byAgent, byAgent);
    const second = await client.next((f) => f.type === "reply" && f.author === "agent");
    expect(second).toMatchObject({ inquiry_id: inquiryId, text: byAgent.text, agent: "dana-the-agent", strategy: null });
    expect(String(second.id) > String(reply.id) || second.id !== reply.id).toBe(true);
    // Another session's reply never shows here, and nothing comes twice.
    const other = session();
    await writeDrafts(draft(other.sessionId, randomUUID(), "not for Dana"));
    const marker = draft(sessionId, randomUUID(), "the last one");
    await writeDrafts(marker);
    await client.next((f) => f.type === "reply" && f.text === "the last one");
    expect(client.replies().map((f) => f.text)).toEqual([drafted.text, byAgent.text, "the last one"]);
    expect(await metric(two, "switchboard_chat_reply_latency_seconds_count")).toBeGreaterThan(0);
  });

  it("closes a client that stops reading with 4008 once its unsent bytes pass the limit; the replies wait in the mailbox and a resume delivers every one it missed, once, in order", async () => {
    const { sessionId, token } = session();
    const client = await connect(two, token);
    // The client stops reading: the kernel's buffers fill, then the gateway's.
    client.socket.pause();
    const texts = Array.from({ length: 200 }, (_, i) => `reply ${String(i).padStart(3, "0")} ${"x".repeat(40_000)}`);
    const writing = (async () => {
      // Agents' replies to one inquiry: one partition, so the mailbox has them in the order written.
      const inquiryId = randomUUID();
      for (let i = 0; i < texts.length; i += 20) await writeAgentReplies(...texts.slice(i, i + 20).map((text) => agentReply(sessionId, inquiryId, text)));
    })();
    // Watched while the replies are still being written: the gateway cuts a client that does not read its close within seconds.
    const slow = await until(async () => ((await metric(two, "switchboard_chat_sockets", 'state="closing"')) > 0 ? true : undefined), 30_000, 100);
    expect(slow).toBe(true);
    // Reading again, the client gets what the gateway had written, then the close.
    client.socket.resume();
    expect((await client.closed).code).toBe(4008);
    await until(async () => ((await metric(two, "switchboard_chat_closes_total", 'reason="slow_client"')) > 0 ? true : undefined), 5_000);
    await writing;
    const got = client.replies();
    // Bounded: the gateway stopped writing at its limit (8 MB of replies were waiting, more than the kernel's socket buffers hold).
    expect(got.length).toBeLessThan(texts.length);
    expect(got.map((f) => f.text)).toEqual(texts.slice(0, got.length));
    const resumed = await connect(two, token, (got.at(-1)?.id as string | undefined) ?? null);
    expect(resumed.frames[0]).toMatchObject({ type: "welcome", resumed: true });
    // It reads as it goes, so its buffer stays under the limit.
    await resumed.until(() => (resumed.replies().length >= texts.length - got.length ? true : undefined), 30_000);
    expect(resumed.replies().map((f) => f.text)).toEqual(texts.slice(got.length));
    const ids = [...got, ...resumed.replies()].map((f) => f.id as string);
    expect(new Set(ids).size).toBe(texts.length);
  });

  it("cuts a socket that answers no ping within a heartbeat", async () => {
    const { token } = session();
    const before = await metric(one, "switchboard_chat_closes_total", 'reason="heartbeat"');
    const client = await connect(one, token);
    client.socket.pause();
    const cut = await until(async () => ((await metric(one, "switchboard_chat_closes_total", 'reason="heartbeat"')) > before ? true : undefined), 10_000);
    expect(cut).toBe(true);
    client.socket.resume();
    expect((await client.closed).code).toBe(1006);
  });
});

describe("Kafka unavailable", () => {
  let cut: ChatProcess;
  beforeAll(async () => {
    // A gateway whose brokers are unreachable: sessions open (Redis is there), Kafka refuses everything.
    cut = await startChat(endpoints, { instanceId: `${runId}-cut`, env: { ...GATEWAY_ENV, KAFKA_BROKERS: "127.0.0.1:1" }, waitForHealth: false });
  });
  afterAll(() => cut?.kill());

  it("reports itself unhealthy, refuses a message with unavailable (nothing lost silently), and a resend of it at a healthy instance publishes it once", async () => {
    const health = await fetch(`${cut.url}/healthz`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { checks: Record<string, boolean> }).checks).toMatchObject({ redis: true, delivery: false });
    expect(await metric(cut, "switchboard_chat_delivery_joined")).toBe(0);
    expect(await metric(two, "switchboard_chat_delivery_joined")).toBe(1);
    const { sessionId, token } = session();
    const client = await connect(cut, token);
    const clientId = client.message("Is anyone there?");
    const refused = await client.next((f) => f.type === "error", 30_000);
    expect(refused).toMatchObject({ code: "unavailable", client_id: clientId });
    expect(refused.retry_after_ms).toBeGreaterThan(0);
    expect(client.frames.some((f) => f.type === "ack")).toBe(false);

    const healthy = await connect(two, token);
    healthy.message("Is anyone there?", clientId);
    const ack = await healthy.next((f) => f.type === "ack");
    await until(async () => (received.records().some((r) => r.key === ack.inquiry_id) ? true : undefined), 10_000);
    healthy.message("Is anyone there?", clientId);
    await until(async () => (healthy.frames.filter((f) => f.type === "ack").length === 2 ? true : undefined), 10_000);
    expect(healthy.frames.filter((f) => f.type === "ack").map((f) => f.inquiry_id)).toEqual([ack.inquiry_id, ack.inquiry_id]);
    const ours = received.records().filter((r) => r.value.envelope.source_id === `${sessionId}:${clientId}`);
    expect(ours.map((r) => r.key)).toEqual([ack.inquiry_id]);
  });
});

describe("Redis unavailable", () => {
  let blind: ChatProcess;
  beforeAll(async () => {
    blind = await startChat(endpoints, { instanceId: `${runId}-blind`, env: { ...GATEWAY_ENV, REDIS_URL: "redis://127.0.0.1:1" }, waitForHealth: false });
  });
  afterAll(() => blind?.kill());

  it("reports itself unhealthy, closes a hello with 1011 (try again) and answers guest sessions with 503", async () => {
    const health = await fetch(`${blind.url}/healthz`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { checks: Record<string, boolean> }).checks).toMatchObject({ redis: false });
    const client = await ChatClient.open(blind.wsUrl);
    client.send({ type: "hello", token: session().token, resume_after: null });
    expect((await client.closed).code).toBe(1011);
    const guest = await fetch(`${blind.url}/chat/sessions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(guest.status).toBe(503);
    expect(guest.headers.get("retry-after")).toBe("5");
  });
});

describe("two instances", () => {
  it("delivers to the instance holding the socket; after that instance is killed, a resume at the other gets the replies it missed once, in order", async () => {
    const { sessionId, token } = session();
    const client = await connect(one, token);
    // Replies keyed by different inquiries land in every partition: whichever instance consumes one, the holder delivers.
    const live = Array.from({ length: 6 }, (_, i) => draft(sessionId, randomUUID(), `live ${i}`));
    for (const r of live) await writeDrafts(r);
    await client.until(() => (client.replies().length === live.length ? true : undefined), 20_000);
    // In mailbox order, which for replies to different inquiries (different partitions, read by either instance) is the order they were appended.
    expect(client.replies().map((f) => f.text).sort()).toEqual(live.map((r) => r.text).sort());
    // The customer confirmed the first three only.
    for (const f of client.replies().slice(0, 3)) client.send({ type: "received", id: f.id });

    // Replies in flight when the instance holding the socket dies: some reach the socket, some only the mailbox.
    const inFlight = Array.from({ length: 6 }, (_, i) => draft(sessionId, randomUUID(), `in flight ${i}`));
    await writeDrafts(...inFlight);
    one.kill();
    await client.closed;
    const beforeKill = client.replies();
    const lastSeen = beforeKill.at(-1)!.id as string;
    // Written while the customer is away, some into partitions the dead instance held until the group notices.
    // Agents' replies to one inquiry share its partition: the mailbox has them in the order they were sent.
    const missed = [
      ...Array.from({ length: 4 }, (_, i) => draft(sessionId, randomUUID(), `missed ${i}`)),
      ...Array.from({ length: 3 }, (_, i) => agentReply(sessionId, live[0]!.inquiry_id, `missed from an agent ${i}`)),
    ];
    for (const r of missed) {
      if ("reply_id" in r) await writeAgentReplies(r);
      else await writeDrafts(r);
    }
    const seen = new Set(beforeKill.map((f) => f.text as string));
    const owed = [...inFlight, ...missed].map((r) => r.text).filter((text) => !seen.has(text));
    const back = await connect(two, token, lastSeen);
    expect(back.frames[0]).toMatchObject({ type: "welcome", session_id: sessionId, instance: two.instanceId, resumed: true });
    // The dead instance's partitions move to the other after the Kafka session timeout (6 s in tests).
    await back.until(() => (back.replies().length >= owed.length ? true : undefined), 45_000);
    const texts = back.replies().map((f) => f.text as string);
    expect([...texts].sort()).toEqual([...owed].sort());
    expect(texts.filter((t) => t.startsWith("missed from an agent"))).toEqual(["missed from an agent 0", "missed from an agent 1", "missed from an agent 2"]);
    const ids = back.replies().map((f) => f.id as string);
    expect(ids).toEqual([...ids].sort(compareReplyIds));
    expect(ids.every((id) => compareReplyIds(id, lastSeen) > 0)).toBe(true);
    // No second copy comes later either (a redelivered record finds its reply in the mailbox).
    const marker = draft(sessionId, randomUUID(), "marker");
    await writeDrafts(marker);
    await back.next((f) => f.type === "reply" && f.text === "marker", 20_000);
    expect(back.replies()).toHaveLength(owed.length + 1);

    // Without a cursor of its own, a client resumes after what it confirmed (the gateway's cursor in Redis).
    const last = back.replies().at(-1)!.id as string;
    for (const f of back.replies()) back.send({ type: "received", id: f.id });
    const redis = new Redis(endpoints.redisUrl, redisOptions(endpoints));
    try {
      expect(await until(async () => ((await redis.hget(`switchboard:chat:{${sessionId}}:session`, "acked")) === last ? true : undefined), 5_000)).toBe(true);
    } finally {
      redis.disconnect();
    }
    const fresh = await connect(two, token, null);
    expect((await back.closed).code).toBe(4009);
    await writeDrafts(draft(sessionId, randomUUID(), "after the receipts"));
    await fresh.next((f) => f.type === "reply", 20_000);
    expect(fresh.replies().map((f) => f.text)).toEqual(["after the receipts"]);
    expect(await metric(two, "switchboard_chat_resumes_total")).toBeGreaterThan(0);
  });
});

describe("shutdown", () => {
  it("on SIGTERM closes every socket with 1001 (reconnect elsewhere) and exits 0", async () => {
    const client = await connect(two, session().token);
    const waiting = await ChatClient.open(two.wsUrl);
    await two.stop();
    expect((await client.closed).code).toBe(1001);
    expect((await waiting.closed).code).toBe(1001);
    expect(two.proc.child.exitCode).toBe(0);
  });
});
