import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { ImapFlow } from "imapflow";
import { Redis } from "ioredis";
import type { Kafka, Producer } from "kafkajs";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { recordKey, replyKey } from "../../connectors/email/ingest.js";
import type {
  AgentReply,
  InquiryClassified,
  InquiryReceived,
  InquiryResponse,
  ResponseStrategy,
} from "../../schemas/types.generated.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { setupServices, tailTopic, type Tail } from "../support/api.js";
import { loadEmailFixtures, uniquify } from "../support/email-fixtures.js";
import {
  expectedInquiry,
  imapClient,
  killEmailConnectors,
  startEmailConnector,
  testMailboxes,
  waitFor,
  type EmailConnectorProcess,
} from "../support/email.js";
import { quietLog } from "../support/topics.js";
import { redisOptions, schemaRegistryOptions } from "../../config/security.js";

/**
 * Automatic replies: the connector as its own process with SMTP_URL, an SMTP server run by the
 * test, classifications and drafted responses put on Kafka as classify and respond would. The
 * inquiries are email inquiries as the connector records them in Redis, under ids that never
 * reach inquiries.received: a pipeline running beside the test (a shared machine) has nothing to
 * answer, and what the test checks is only its own inquiries' outcomes and mail.
 */

const endpoints = inject("endpoints");
const FROM = "Hearth & Harbor Support <support@hearthandharbor.example>";
let kafka: Kafka;
let codec: TopicCodec;
let producer: Producer;
let imap: ImapFlow;
let redis: Redis;
let received: Tail<InquiryReceived>;
const wanted = new Set<string>();

/** An SMTP server that keeps what it is sent, on a port that stays the same across a restart. */
function smtpServer() {
  const mails: ParsedMail[] = [];
  let server: SMTPServer | undefined;
  let port = 0;
  const start = async () => {
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onData(stream, _session, callback) {
        simpleParser(stream).then((mail) => {
          mails.push(mail);
          callback();
        }, callback);
      },
    });
    await new Promise<void>((resolve) => server!.listen(port, "127.0.0.1", resolve));
    port = (server.server.address() as AddressInfo).port;
  };
  return {
    /** The mails about these inquiries (X-Switchboard-Inquiry). */
    mailsFor: (ids: ReadonlySet<string>) =>
      mails.filter((m) => ids.has(String(m.headers.get("x-switchboard-inquiry")))),
    start,
    port: () => port,
    stop: () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  };
}

const autoReplyRules = (enabled: boolean) =>
  readFileSync(path.join(REPO_ROOT, "config", "routing-rules.yaml"), "utf8").replace(
    /^auto_reply:[\s\S]*$/m,
    `auto_reply:\n  enabled: ${enabled}\n  strategies: [template, retrieval]\n  intents: { track_order: 0.8, delivery_options: 0.8 }\n`,
  );

/** An email inquiry as the connector published and recorded it (state, and the subject while replies are on). */
async function emailInquiry(subject: string, metadata: Record<string, string> = {}): Promise<InquiryReceived> {
  const inquiryId = randomUUID();
  const sourceId = `<${inquiryId}@mail.example.com>`;
  wanted.add(inquiryId);
  await redis
    .multi()
    .hset(recordKey(inquiryId), "state", "published")
    .expire(recordKey(inquiryId), 3_600)
    .hset(replyKey(inquiryId), "subject", subject, "to", "dana.whitfield@example.com")
    .expire(replyKey(inquiryId), 3_600)
    .exec();
  return {
    inquiry_id: inquiryId,
    envelope: {
      channel: "email",
      source_id: sourceId,
      thread_id: sourceId,
      customer: { id: null, email: "dana.whitfield@example.com", name: "Dana Whitfield", tier: null },
      received_at: Date.now(),
      reply_to: "dana.whitfield@example.com",
      metadata: { source: "imap", ...metadata },
    },
    subject,
    body: "My order has not arrived.",
    content_type: "text",
  };
}

const classified = (inquiryId: string, intent: string, confidence: number): InquiryClassified => ({
  inquiry_id: inquiryId,
  intent,
  category: "ORDER",
  confidence,
  out_of_scope: false,
  top_k: [{ label: intent, probability: confidence }],
  model: "intent-linear@test",
  classified_at: Date.now(),
});

const response = (inquiry: InquiryReceived, strategy: ResponseStrategy, text: string): InquiryResponse => ({
  inquiry_id: inquiry.inquiry_id,
  envelope: inquiry.envelope,
  strategy,
  text,
  sources: ["track_order"],
  department: "logistics",
  model: null,
  responded_at: Date.now(),
});

async function publish(topic: "inquiries.classified" | "inquiries.responses" | "inquiries.replies", key: string, value: unknown) {
  await producer.send({ topic, messages: [{ key, value: codec.encode(topic, value) }] });
}

/** Until the reply consumer groups have joined: a new group starts at the end of its topic. */
async function repliesJoined(): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await waitFor(
      async () => {
        const { groups } = await admin.describeGroups([
          "switchboard-email-classifications",
          "switchboard-email-replies",
          "switchboard-email-agent-replies",
        ]);
        return groups.every((g) => g.state === "Stable" && g.members.length === 1);
      },
      60_000,
      "the reply consumers to join",
    );
  } finally {
    await admin.disconnect();
  }
}

/** What the connector logged about each of the test's inquiries: their outcomes, in order. */
function outcomesIn(log: string): Map<string, string[]> {
  const outcomes = new Map<string, string[]>();
  for (const line of log.split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as { inquiryId?: string; outcome?: string; msg?: string };
    if (!entry.inquiryId || !wanted.has(entry.inquiryId)) continue;
    const outcome = entry.outcome ?? (entry.msg === "reply not sent; trying again" ? "retried" : undefined);
    if (outcome) outcomes.set(entry.inquiryId, [...(outcomes.get(entry.inquiryId) ?? []), outcome]);
  }
  return outcomes;
}

beforeAll(async () => {
  await setupServices(endpoints);
  kafka = createKafka(endpoints, `email-replies-${randomUUID().slice(0, 8)}`, quietLog);
  codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  received = await tailTopic<InquiryReceived>(kafka, codec, "inquiries.received", (v) => wanted.has(v.inquiry_id));
  imap = await imapClient(endpoints.imapUrl);
  redis = new Redis(endpoints.redisUrl, redisOptions(endpoints));
});

afterAll(async () => {
  await killEmailConnectors();
  await received?.close();
  await producer?.disconnect();
  await imap?.logout();
  redis?.disconnect();
});

describe("automatic replies over SMTP", () => {
  it("sends a reply only where auto_reply allows the strategy, intent and confidence; once; retries while SMTP is down; follows a rules change", async () => {
    const tag = randomUUID().slice(0, 8);
    const { mailbox, processed } = testMailboxes(tag);
    const smtp = smtpServer();
    await smtp.start();
    const rulesFile = path.join(mkdtempSync(path.join(os.tmpdir(), "switchboard-rules-")), "routing-rules.yaml");
    writeFileSync(rulesFile, autoReplyRules(true));
    let connector: EmailConnectorProcess | undefined;
    await imap.mailboxCreate(mailbox);
    try {
      connector = await startEmailConnector(endpoints, mailbox, processed, {
        SMTP_URL: `smtp://127.0.0.1:${smtp.port()}`,
        SWITCHBOARD_EMAIL_FROM: FROM,
        SWITCHBOARD_ROUTING_RULES: rulesFile,
      });
      const log = () => readFileSync(connector!.proc.log, "utf8");
      const outcomesOf = (inquiry: InquiryReceived) => outcomesIn(log()).get(inquiry.inquiry_id) ?? [];

      // With replies on, the connector keeps a message's subject with its record, for the `Re:`.
      const raw = uniquify(loadEmailFixtures()[0]!.raw, tag);
      const taken = (await expectedInquiry(raw))!;
      wanted.add(taken.inquiry_id);
      await imap.append(mailbox, raw);
      await waitFor(
        () => received.records().some((r) => r.key === taken.inquiry_id),
        30_000,
        "the delivered message's inquiry",
      );
      expect(await redis.hget(replyKey(taken.inquiry_id), "subject")).toBe("Order 48213 never arrived");
      expect(await redis.ttl(replyKey(taken.inquiry_id))).toBeLessThanOrEqual(30 * 24 * 3_600);

      await repliesJoined();
      const sent = await emailInquiry("Order 48213 never arrived");
      // The response first and its classification after: the sender waits for it.
      await publish(
        "inquiries.responses",
        sent.inquiry_id,
        response(sent, "template", "Hello Dana, your kettle is on its way: it arrives tomorrow."),
      );
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await publish("inquiries.classified", sent.inquiry_id, classified(sent.inquiry_id, "track_order", 0.95));
      const kept: [InquiryReceived, string, number, ResponseStrategy, string][] = [
        [await emailInquiry("Where is my order?"), "track_order", 0.5, "template", "low_confidence"],
        [await emailInquiry("Where is my order?"), "track_order", 0.99, "human", "strategy"],
        [
          await emailInquiry("Automatic reply: away", { auto_submitted: "true" }),
          "delivery_options",
          0.99,
          "template",
          "automatic_sender",
        ],
        [await emailInquiry("This is unacceptable"), "complaint", 0.99, "template", "intent"],
      ];
      for (const [inquiry, intent, confidence, strategy] of kept) {
        await publish("inquiries.classified", inquiry.inquiry_id, classified(inquiry.inquiry_id, intent, confidence));
        await publish("inquiries.responses", inquiry.inquiry_id, response(inquiry, strategy, "A draft for an agent."));
      }
      await waitFor(
        () => [sent, ...kept.map(([i]) => i)].every((i) => outcomesOf(i).length > 0),
        60_000,
        "every response to be decided",
      );
      expect(outcomesOf(sent)).toEqual(["sent"]);
      for (const [inquiry, , , , reason] of kept) expect(outcomesOf(inquiry), reason).toEqual([reason]);
      const mine = new Set([sent, ...kept.map(([i]) => i)].map((i) => i.inquiry_id));
      expect(smtp.mailsFor(mine)).toHaveLength(1);
      const [mail] = smtp.mailsFor(mine);
      expect(mail!.to).toMatchObject({ value: [{ address: "dana.whitfield@example.com" }] });
      expect(mail!.from).toMatchObject({
        value: [{ address: "support@hearthandharbor.example", name: "Hearth & Harbor Support" }],
      });
      expect(mail!.subject).toBe("Re: Order 48213 never arrived");
      expect(mail!.text?.trim()).toBe("Hello Dana, your kettle is on its way: it arrives tomorrow.");
      expect(mail!.inReplyTo).toBe(sent.envelope.source_id);
      expect(mail!.references).toBe(sent.envelope.source_id);
      expect(mail!.messageId).toBe(`<reply-${sent.inquiry_id}@hearthandharbor.example>`);
      expect(mail!.headers.get("auto-submitted")).toBe("auto-replied");
      expect(await redis.hget(recordKey(sent.inquiry_id), "reply")).toBe("sent");

      // The same response again (a redelivery): not sent twice.
      await publish(
        "inquiries.responses",
        sent.inquiry_id,
        response(sent, "template", "Hello Dana, your kettle is on its way: it arrives tomorrow."),
      );
      await waitFor(() => outcomesOf(sent).length === 2, 30_000, "the redelivery to be recognised");
      expect(outcomesOf(sent)).toEqual(["sent", "already_handled"]);
      expect(smtp.mailsFor(mine)).toHaveLength(1);

      // An agent answers the inquiry whose draft stayed a draft, from the console: sent, as a person's mail, once.
      const [drafted] = kept[0]!;
      const agentReply: AgentReply = {
        reply_id: randomUUID(),
        inquiry_id: drafted.inquiry_id,
        // As the API rebuilds it from the archive, which keeps no addresses.
        envelope: { ...drafted.envelope, reply_to: null, customer: { ...drafted.envelope.customer, email: null, name: null } },
        text: "Hello Dana, I checked with the carrier: your parcel is at the depot and arrives Friday.",
        agent: "Sam (support)",
        edited: true,
        sent_at: Date.now(),
      };
      const chatReply = { ...agentReply, reply_id: randomUUID(), inquiry_id: sent.inquiry_id, envelope: { ...sent.envelope, channel: "chat" as const } };
      for (const record of [agentReply, agentReply, chatReply]) await publish("inquiries.replies", record.inquiry_id, record);
      await waitFor(() => outcomesOf(drafted).filter((o) => o === "sent" || o === "already_handled").length === 2, 30_000, "the agent's reply and its redelivery");
      expect(outcomesOf(drafted)).toEqual(["low_confidence", "sent", "already_handled"]);
      const agentMails = smtp.mailsFor(new Set([drafted.inquiry_id]));
      expect(agentMails).toHaveLength(1);
      expect(agentMails[0]!.subject).toBe("Re: Where is my order?");
      expect(agentMails[0]!.to).toMatchObject({ value: [{ address: "dana.whitfield@example.com" }] });
      expect(agentMails[0]!.text?.trim()).toBe(agentReply.text);
      expect(agentMails[0]!.messageId).toBe(`<agent-reply-${agentReply.reply_id}@hearthandharbor.example>`);
      expect(agentMails[0]!.inReplyTo).toBe(drafted.envelope.source_id);
      expect(agentMails[0]!.headers.get("auto-submitted")).toBeUndefined();
      // The chat inquiry's reply is the chat gateway's to deliver: no mail for it.
      expect(smtp.mailsFor(new Set([sent.inquiry_id]))).toHaveLength(1);

      // SMTP down: the reply waits and goes once the server is back.
      await smtp.stop();
      const late = await emailInquiry("Scratched table top, order 90871");
      await publish("inquiries.classified", late.inquiry_id, classified(late.inquiry_id, "track_order", 0.9));
      await publish(
        "inquiries.responses",
        late.inquiry_id,
        response(late, "retrieval", "Hello Noor, a replacement top is on its way."),
      );
      await waitFor(() => outcomesOf(late).includes("retried"), 30_000, "a retry while SMTP is down");
      await smtp.start();
      await waitFor(
        () => smtp.mailsFor(new Set([late.inquiry_id])).length === 1,
        90_000,
        "the reply once SMTP is back",
      );
      expect(smtp.mailsFor(new Set([late.inquiry_id]))[0]!.subject).toBe("Re: Scratched table top, order 90871");
      expect(outcomesOf(late).at(-1)).toBe("sent");

      // Rules changed on disk: auto_reply off, every reply a draft.
      writeFileSync(rulesFile, autoReplyRules(false));
      await waitFor(() => log().includes("routing rules reloaded"), 30_000, "the rules to be reloaded");
      const draft = await emailInquiry("Second lamp missing");
      await publish("inquiries.classified", draft.inquiry_id, classified(draft.inquiry_id, "track_order", 0.99));
      await publish(
        "inquiries.responses",
        draft.inquiry_id,
        response(draft, "template", "Hello Marcus, the second lamp ships separately."),
      );
      await waitFor(() => outcomesOf(draft).length > 0, 30_000, "the draft outcome");
      expect(outcomesOf(draft)).toEqual(["draft"]);
      expect(smtp.mailsFor(new Set([draft.inquiry_id]))).toHaveLength(0);
      // Ids and outcomes in the log, never an address or a reply.
      expect(log()).not.toContain("dana.whitfield@example.com");
      expect(log()).not.toContain("your kettle is on its way");
    } finally {
      await connector?.stop();
      await smtp.stop();
    }
  });
});
