import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { ImapFlow } from "imapflow";
import { Redis } from "ioredis";
import type { Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PENDING_SETTLE_MS, recordKey } from "../../connectors/email/ingest.js";
import type { RefusalReason } from "../../connectors/email/mime.js";
import { PROCESSED_KEYWORD, REFUSED_KEYWORD, reasonKeyword } from "../../connectors/email/session.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { setupServices, tailTopic, type Tail } from "../support/api.js";
import { deepNesting, manyHeaders, withAttachment } from "../support/email-bombs.js";
import { expectInquiryMatches } from "../support/email-expect.js";
import { isRefusal, loadEmailFixtures, uniquify, type ExpectedInquiry } from "../support/email-fixtures.js";
import {
  expectedInquiry,
  imapClient,
  killEmailConnectors,
  messagesIn,
  startEmailConnector,
  testMailboxes,
  waitFor,
} from "../support/email.js";
import { quietLog } from "../support/topics.js";
import { redisOptions, schemaRegistryOptions } from "../../config/security.js";

/**
 * The email connector as it runs (`switchboard run email`, its own process) against the real
 * Dovecot, Kafka and Redis: fixtures appended over IMAP, inquiries read back from
 * inquiries.received, the mailbox inspected for flags and moves.
 */

const endpoints = inject("endpoints");
const fixtures = loadEmailFixtures();
let kafka: Kafka;
let codec: TopicCodec;
let imap: ImapFlow;
let redis: Redis;
let received: Tail<InquiryReceived>;
const wanted = new Set<string>();

const countOf = (id: string) => received.records().filter((r) => r.key === id).length;

async function deliver(mailbox: string, messages: readonly Buffer[]): Promise<void> {
  await imap.mailboxCreate(mailbox);
  for (const raw of messages) await imap.append(mailbox, raw);
}

/** Inquiry ids of messages (those that are not refused), registered so the tail keeps their records. */
async function idsOf(messages: readonly Buffer[]): Promise<string[]> {
  const ids: string[] = [];
  for (const raw of messages) {
    const inquiry = await expectedInquiry(raw);
    if (inquiry) ids.push(inquiry.inquiry_id);
  }
  for (const id of ids) wanted.add(id);
  return ids;
}

beforeAll(async () => {
  await setupServices(endpoints);
  kafka = createKafka(endpoints, `email-test-${randomUUID().slice(0, 8)}`, quietLog);
  codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  received = await tailTopic<InquiryReceived>(kafka, codec, "inquiries.received", (v) => wanted.has(v.inquiry_id));
  imap = await imapClient(endpoints.imapUrl);
  redis = new Redis(endpoints.redisUrl, redisOptions(endpoints));
});

afterAll(async () => {
  await killEmailConnectors();
  await received?.close();
  await imap?.logout();
  redis?.disconnect();
});

describe("email connector", () => {
  it("turns each fixture into exactly one inquiry with the right fields, or leaves it flagged with its reason; nothing personal in the logs", async () => {
    const tag = randomUUID().slice(0, 8);
    const { mailbox, processed } = testMailboxes(tag);
    const messages = fixtures.map((f) => uniquify(f.raw, tag));
    const bombs: { raw: Buffer; reason: RefusalReason }[] = [
      { raw: deepNesting(200, `<nest.${tag}@example.net>`), reason: "too_deep" },
      { raw: manyHeaders(50_000, 8, `<headers.${tag}@example.net>`), reason: "too_many_headers" },
      { raw: withAttachment(25 * 1024 * 1024, `<big.${tag}@example.net>`), reason: "too_large" },
    ];
    const ids = await idsOf(messages);
    await deliver(mailbox, [...messages, ...bombs.map((b) => b.raw)]);
    const connector = await startEmailConnector(endpoints, mailbox, processed);
    try {
      await waitFor(() => ids.every((id) => countOf(id) >= 1), 60_000, "every fixture's inquiry");
      await waitFor(
        async () => (await messagesIn(imap, mailbox)).every((m) => m.flags.has(REFUSED_KEYWORD)),
        30_000,
        "the refused messages to be flagged",
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000)); // a second record would show up now

      const accepted = fixtures.filter((f): f is ExpectedInquiry & { raw: Buffer } => !isRefusal(f));
      expect(ids).toHaveLength(accepted.length);
      accepted.forEach((fixture, i) => {
        const records = received.records().filter((r) => r.key === ids[i]);
        expect(records, fixture.file).toHaveLength(1);
        expectInquiryMatches(records[0]!.value, fixture, tag);
        expect(records[0]!.value.envelope.metadata).toMatchObject({ source: "imap", imap_mailbox: mailbox });
      });

      // Published messages moved and flagged; refused ones stay, flagged with their reason.
      const moved = await messagesIn(imap, processed);
      expect(moved).toHaveLength(accepted.length);
      expect(moved.every((m) => m.flags.has(PROCESSED_KEYWORD))).toBe(true);
      const left = await messagesIn(imap, mailbox);
      const expectedRefusals = [
        ...fixtures.flatMap((f, i) => (isRefusal(f) ? [{ raw: messages[i]!, reason: f.refused }] : [])),
        ...bombs,
      ];
      expect(left).toHaveLength(expectedRefusals.length);
      for (const { raw, reason } of expectedRefusals) {
        const messageId = /^message-id:\s*(\S+)/im.exec(raw.toString("latin1"))?.[1];
        const stored = messageId ? left.find((m) => m.messageId === messageId) : left.find((m) => !m.messageId);
        expect(stored, `${reason} message`).toBeDefined();
        expect([...stored!.flags], reason).toEqual(expect.arrayContaining([REFUSED_KEYWORD, reasonKeyword(reason)]));
      }

      const metrics = await connector.metrics();
      for (const reason of ["no_sender", "binary", "invalid_encoding", "too_deep", "too_many_headers", "too_large"]) {
        expect(metrics).toContain(`switchboard_connector_rejected_total{connector="email",reason="${reason}"} 1`);
      }
      expect(metrics).toMatch(
        new RegExp(`switchboard_connector_accepted_total\\{connector="email",kind="inquiry"\\} ${accepted.length}\\b`),
      );
      expect(metrics).toContain('switchboard_email_imap_connected{connector="email"} 1');
      expect(metrics).toContain(`switchboard_email_delivery_seconds_count{connector="email"} ${accepted.length}`);

      const log = readFileSync(connector.proc.log, "utf8");
      expect(log).toContain('"reason":"too_large"');
      for (const fixture of accepted) {
        expect(log, fixture.file).not.toContain(fixture.customer.email);
        for (const snippet of fixture.body_contains) expect(log, fixture.file).not.toContain(snippet);
        if (fixture.subject) expect(log, fixture.file).not.toContain(fixture.subject);
      }
    } finally {
      await connector.stop();
    }
  });

  it("loses and duplicates nothing when it is SIGKILLed mid-stream, twice, and started again", async () => {
    const tag = randomUUID().slice(0, 8);
    const { mailbox, processed } = testMailboxes(tag);
    const accepted = fixtures.filter((f) => !isRefusal(f));
    const messages = Array.from({ length: 8 }, (_, round) =>
      accepted.map((f) => uniquify(f.raw, `${tag}r${round}`)),
    ).flat();
    const ids = await idsOf(messages);
    const seen = () => ids.filter((id) => countOf(id) > 0).length;
    const backlog = (messages.length * 3) / 4;
    await deliver(mailbox, messages.slice(0, backlog));
    let connector = await startEmailConnector(endpoints, mailbox, processed);
    try {
      // Killed at whatever step of a round it is in when the first inquiries show, then again later.
      await waitFor(() => seen() >= 1, 60_000, "the first inquiries");
      await connector.kill();
      connector = await startEmailConnector(endpoints, mailbox, processed);
      await waitFor(() => seen() >= 100, 120_000, "a hundred inquiries");
      await connector.kill();
      connector = await startEmailConnector(endpoints, mailbox, processed);
      // And mail keeps arriving.
      await deliver(mailbox, messages.slice(backlog));
      // Attempts a killed process left unconfirmed are settled after PENDING_SETTLE_MS (30 s).
      await waitFor(() => ids.every((id) => countOf(id) >= 1), 180_000, "every inquiry after the restarts");
      await waitFor(async () => (await messagesIn(imap, mailbox)).length === 0, 60_000, "the mailbox to be drained");
      await new Promise((resolve) => setTimeout(resolve, 3_000));

      expect(ids.filter((id) => countOf(id) !== 1)).toEqual([]);
      expect(new Set(ids).size).toBe(messages.length);
      const moved = await messagesIn(imap, processed);
      expect(moved).toHaveLength(messages.length);
      expect(moved.every((m) => m.flags.has(PROCESSED_KEYWORD))).toBe(true);
      const states = await Promise.all(ids.map((id) => redis.hget(recordKey(id), "state")));
      expect(new Set(states)).toEqual(new Set(["published"]));
    } finally {
      await connector.stop();
    }
  }, 300_000);

  it("settles a publish of unknown outcome by looking in Kafka: published once, whether or not the attempt landed", async () => {
    const tag = randomUUID().slice(0, 8);
    const { mailbox, processed } = testMailboxes(tag);
    const [landed, lost] = fixtures.filter((f) => !isRefusal(f)).map((f) => uniquify(f.raw, tag));
    const [landedId, lostId] = await idsOf([landed!, lost!]);
    // A connector claimed both and died: after Kafka acknowledged `landed` but before recording
    // it, and before `lost` was written.
    const claimedAt = Date.now();
    for (const id of [landedId!, lostId!]) {
      await redis
        .multi()
        .hset(recordKey(id), "state", "pending", "at", String(claimedAt))
        .expire(recordKey(id), 3_600)
        .exec();
    }
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({
      topic: "inquiries.received",
      messages: [{ key: landedId!, value: codec.encode("inquiries.received", (await expectedInquiry(landed!))!) }],
    });
    await producer.disconnect();
    await waitFor(() => countOf(landedId!) === 1, 10_000, "the landed record");

    await deliver(mailbox, [landed!, lost!]);
    const connector = await startEmailConnector(endpoints, mailbox, processed);
    try {
      // Left alone while the attempt could still land (PENDING_SETTLE_MS), then looked up.
      await waitFor(
        async () =>
          (await connector.metrics()).includes(
            'switchboard_email_messages_total{outcome="deferred",connector="email"}',
          ),
        15_000,
        "the claims to be respected",
      );
      expect(await messagesIn(imap, processed)).toHaveLength(0);
      await waitFor(
        async () => (await messagesIn(imap, processed)).length === 2,
        90_000,
        "both messages to be acknowledged",
      );
      expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(PENDING_SETTLE_MS);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect([countOf(landedId!), countOf(lostId!)]).toEqual([1, 1]);
      for (const id of [landedId!, lostId!]) expect(await redis.hget(recordKey(id), "state")).toBe("published");
      expect(readFileSync(connector.proc.log, "utf8")).toMatch(
        /"unknown":2,"alreadyInKafka":1,"msg":"publish attempts of unknown outcome looked up in Kafka"/,
      );
    } finally {
      await connector.stop();
    }
  });

  it("reconnects after losing the IMAP connection and takes the mail that came meanwhile; /healthz says so", async () => {
    const tag = randomUUID().slice(0, 8);
    const { mailbox, processed } = testMailboxes(tag);
    const target = new URL(endpoints.imapUrl);
    // A TCP proxy between the connector and Dovecot, cut to make the connection fail.
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const upstream = net.connect({ host: target.hostname, port: Number(target.port) });
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("error", () => undefined);
        s.on("close", () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const proxyPort = (proxy.address() as net.AddressInfo).port;
    const viaProxy = new URL(endpoints.imapUrl);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(proxyPort);

    const accepted = fixtures.filter((f) => !isRefusal(f));
    const before = uniquify(accepted[0]!.raw, `${tag}a`);
    const during = uniquify(accepted[1]!.raw, `${tag}b`);
    const [beforeId, duringId] = await idsOf([before, during]);
    await deliver(mailbox, [before]);
    const connector = await startEmailConnector(endpoints, mailbox, processed, { IMAP_URL: viaProxy.toString() });
    try {
      await waitFor(() => countOf(beforeId!) === 1, 30_000, "the first message");
      // Cut every connection and refuse new ones for a while.
      const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      await waitFor(
        async () => (await connector.health()).status === 503,
        15_000,
        "/healthz to report the lost connection",
      );
      expect((await connector.health()).body.checks.imap).toBe(false);
      await deliver(mailbox, [during]);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await new Promise<void>((resolve) => proxy.listen(proxyPort, "127.0.0.1", resolve));
      await waitFor(() => countOf(duringId!) === 1, 60_000, "the message delivered while disconnected");
      await waitFor(async () => (await connector.health()).status === 200, 15_000, "/healthz to recover");
      expect(await connector.metrics()).toMatch(/switchboard_email_imap_reconnects_total\{connector="email"\} [1-9]/);
    } finally {
      await connector.stop();
      proxy.close();
      for (const s of sockets) s.destroy();
    }
  });
});
