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
import { recordKey } from "../../connectors/email/ingest.js";
import type { InquiryClassified, InquiryReceived, InquiryResponse, ResponseStrategy } from "../../schemas/types.generated.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { setupServices, tailTopic, type Tail } from "../support/api.js";
import { loadEmailFixtures, uniquify } from "../support/email-fixtures.js";
import { expectedInquiry, imapClient, killEmailConnectors, startEmailConnector, testMailboxes, waitFor, type EmailConnectorProcess } from "../support/email.js";
import { quietLog } from "../support/topics.js";

/**
 * Automatic replies: mail taken in by the connector (IMAP, the real Dovecot), its classification
 * and drafted response put on Kafka as classify and respond would, and the reply caught by an
 * SMTP server the test runs. Sent only where the rules allow it, once per inquiry.
 */

const endpoints = inject("endpoints");
const fixtures = new Map(loadEmailFixtures().map((f) => [f.file, f.raw]));
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
    mails,
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

async function publish(topic: "inquiries.classified" | "inquiries.responses", key: string, value: unknown) {
  await producer.send({ topic, messages: [{ key, value: codec.encode(topic, value) }] });
}

/** Delivers fixtures (run-unique) and waits for their inquiries, by file name. */
async function takeIn(mailbox: string, tag: string, files: readonly string[]): Promise<Map<string, InquiryReceived>> {
  const raws = files.map((file) => uniquify(fixtures.get(file)!, tag));
  const expected = await Promise.all(raws.map(expectedInquiry));
  for (const e of expected) wanted.add(e!.inquiry_id);
  await imap.mailboxCreate(mailbox);
  for (const raw of raws) await imap.append(mailbox, raw);
  await waitFor(() => expected.every((e) => received.records().some((r) => r.key === e!.inquiry_id)), 30_000, "the inquiries");
  return new Map(files.map((file, i) => [file, received.records().find((r) => r.key === expected[i]!.inquiry_id)!.value]));
}

/** Until both reply consumer groups have joined: a new group starts at the end of its topic. */
async function repliesJoined(): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await waitFor(
      async () => {
        const { groups } = await admin.describeGroups(["switchboard-email-classifications", "switchboard-email-replies"]);
        return groups.every((g) => g.state === "Stable" && g.members.length === 1);
      },
      60_000,
      "the reply consumers to join",
    );
  } finally {
    await admin.disconnect();
  }
}

const outcome = (metrics: string, name: string) => Number(new RegExp(`switchboard_email_replies_total\\{outcome="${name}",connector="email"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);

beforeAll(async () => {
  await setupServices(endpoints);
  kafka = createKafka(endpoints.kafkaBrokers, `email-replies-${randomUUID().slice(0, 8)}`, quietLog);
  codec = await createTopicCodec(new SchemaRegistry({ host: endpoints.schemaRegistryUrl }), allTopics(TRIAGE));
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  received = await tailTopic<InquiryReceived>(kafka, codec, "inquiries.received", (v) => wanted.has(v.inquiry_id));
  imap = await imapClient(endpoints.imapUrl);
  redis = new Redis(endpoints.redisUrl);
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
      await repliesJoined();
      const inquiries = await takeIn(mailbox, tag, [
        "01-plain-order-late.eml",
        "07-multipart-alternative.eml",
        "13-base64-utf8.eml",
        "20-auto-reply-out-of-office.eml",
        "17-spanish.eml",
      ]);
      const sent = inquiries.get("01-plain-order-late.eml")!;
      // Kept for the reply's subject while replies are on.
      expect(await redis.hget(recordKey(sent.inquiry_id), "subject")).toBe("Order 48213 never arrived");

      // The response first and its classification after: the sender waits for it.
      await publish("inquiries.responses", sent.inquiry_id, response(sent, "template", "Hello Dana, your kettle is on its way: it arrives tomorrow."));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await publish("inquiries.classified", sent.inquiry_id, classified(sent.inquiry_id, "track_order", 0.95));
      const refusals: [string, string, number, ResponseStrategy][] = [
        ["07-multipart-alternative.eml", "track_order", 0.5, "template"],
        ["13-base64-utf8.eml", "track_order", 0.99, "human"],
        ["20-auto-reply-out-of-office.eml", "delivery_options", 0.99, "template"],
        ["17-spanish.eml", "complaint", 0.99, "template"],
      ];
      for (const [file, intent, confidence, strategy] of refusals) {
        const inquiry = inquiries.get(file)!;
        await publish("inquiries.classified", inquiry.inquiry_id, classified(inquiry.inquiry_id, intent, confidence));
        await publish("inquiries.responses", inquiry.inquiry_id, response(inquiry, strategy, "A draft for an agent."));
      }
      await waitFor(async () => {
        const m = await connector!.metrics();
        return ["sent", "low_confidence", "strategy", "automatic_sender", "intent"].every((o) => outcome(m, o) === 1);
      }, 60_000, "every response to be decided");
      expect(smtp.mails).toHaveLength(1);
      const [mail] = smtp.mails;
      expect(mail!.to).toMatchObject({ value: [{ address: "dana.whitfield@example.com" }] });
      expect(mail!.from).toMatchObject({ value: [{ address: "support@hearthandharbor.example", name: "Hearth & Harbor Support" }] });
      expect(mail!.subject).toBe("Re: Order 48213 never arrived");
      expect(mail!.text?.trim()).toBe("Hello Dana, your kettle is on its way: it arrives tomorrow.");
      expect(mail!.inReplyTo).toBe(sent.envelope.source_id);
      expect(mail!.references).toBe(sent.envelope.source_id);
      expect(mail!.messageId).toBe(`<reply-${sent.inquiry_id}@hearthandharbor.example>`);
      expect(mail!.headers.get("auto-submitted")).toBe("auto-replied");
      expect(await redis.hmget(recordKey(sent.inquiry_id), "reply", "subject")).toEqual(["sent", null]);

      // The same response again (a redelivery): not sent twice.
      await publish("inquiries.responses", sent.inquiry_id, response(sent, "template", "Hello Dana, your kettle is on its way: it arrives tomorrow."));
      await waitFor(async () => outcome(await connector!.metrics(), "already_handled") === 1, 30_000, "the redelivery to be recognised");
      expect(smtp.mails).toHaveLength(1);

      // SMTP down: the reply waits and goes once the server is back.
      await smtp.stop();
      const [late] = (await takeIn(mailbox, tag, ["12-quoted-printable-utf8.eml"])).values();
      await publish("inquiries.classified", late!.inquiry_id, classified(late!.inquiry_id, "track_order", 0.9));
      await publish("inquiries.responses", late!.inquiry_id, response(late!, "retrieval", "Hello Noor, a replacement top is on its way."));
      await waitFor(async () => outcome(await connector!.metrics(), "retried") >= 1, 30_000, "a retry while SMTP is down");
      await smtp.start();
      await waitFor(() => smtp.mails.length === 2, 90_000, "the reply once SMTP is back");
      expect(smtp.mails[1]!.subject).toBe("Re: Scratched table top, order 90871");

      // Rules changed on disk: auto_reply off, every reply a draft.
      writeFileSync(rulesFile, autoReplyRules(false));
      await waitFor(() => readFileSync(connector!.proc.log, "utf8").includes("routing rules reloaded"), 30_000, "the rules to be reloaded");
      const [draft] = (await takeIn(mailbox, tag, ["03-forward-inline.eml"])).values();
      await publish("inquiries.classified", draft!.inquiry_id, classified(draft!.inquiry_id, "track_order", 0.99));
      await publish("inquiries.responses", draft!.inquiry_id, response(draft!, "template", "Hello Marcus, the second lamp ships separately."));
      await waitFor(async () => outcome(await connector!.metrics(), "draft") === 1, 30_000, "the draft outcome");
      expect(smtp.mails).toHaveLength(2);
      // Nothing of the replies in the log: ids and outcomes only.
      const log = readFileSync(connector.proc.log, "utf8");
      expect(log).not.toContain("dana.whitfield@example.com");
      expect(log).not.toContain("your kettle is on its way");
    } finally {
      await connector?.stop();
      await smtp.stop();
    }
  });
});
