import type { Consumer, Kafka } from "kafkajs";
import type { Redis } from "ioredis";
import type { Transporter } from "nodemailer";
import type { Logger } from "pino";
import type { RoutingRules } from "../../processors/route/rules.js";
import type { AgentReply, InquiryClassified, InquiryEnvelope, InquiryResponse } from "../../schemas/types.generated.js";
import { backoffDelay, type Backoff } from "../../streams/backoff.js";
import type { TopicCodec } from "../../streams/codec.js";
import { errorMessage } from "../../streams/errors.js";
import { recordKey, replyKey } from "./ingest.js";
import type { EmailMetrics } from "./metrics.js";

/**
 * Replies over SMTP to email inquiries this connector took in:
 * - automatic ones: a drafted response is sent when the routing rules' `auto_reply` allows its
 *   strategy and intent at their intent confidence; every other response stays a draft for an
 *   agent. The intent and its confidence come from inquiries.classified, kept on the inquiry's
 *   Redis record (see ingest.ts) until its response;
 * - agents' replies from the console (inquiries.replies), always sent.
 * Each is sent at most once (per inquiry; per reply id for agents'): its field on the record is
 * claimed before the send and set to `sent` after it. A crash between the two leaves the claim,
 * and the reply is not sent again; the log and the `unconfirmed` outcome name it for an agent.
 */

/** The classification is written long before the response (route joins it first); this covers a lagging consumer. */
const CLASSIFICATION_WAIT_MS = 30_000;
/** Retrying a send the SMTP server refused for now (the offset waits). */
const SEND_RETRY: Backoff = { initialMs: 1_000, maxMs: 60_000 };

const KEEP_CLASSIFICATION = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'intent', ARGV[1], 'confidence', ARGV[2])
return 1
`;

export interface Classification {
  readonly intent: string;
  readonly confidence: number;
}

export type ReplyDecision = { readonly send: true } | { readonly send: false; readonly reason: string };

/** Whether a response may go out without an agent. Pure: the rules, the response and its classification. */
export function decideAutoReply(
  rules: RoutingRules["autoReply"],
  response: InquiryResponse,
  classification: Classification | undefined,
): ReplyDecision {
  if (!rules.enabled) return { send: false, reason: "draft" };
  if (!rules.strategies.has(response.strategy)) return { send: false, reason: "strategy" };
  if (response.envelope.metadata.auto_submitted === "true") return { send: false, reason: "automatic_sender" };
  if (!(response.envelope.reply_to ?? response.envelope.customer.email)) return { send: false, reason: "no_address" };
  if (!classification) return { send: false, reason: "no_classification" };
  const threshold = rules.intents.get(classification.intent.toLowerCase());
  if (threshold === undefined) return { send: false, reason: "intent" };
  if (classification.confidence < threshold) return { send: false, reason: "low_confidence" };
  return { send: true };
}

const replySubject = (subject: string | undefined) => {
  const base = subject?.trim() || "Your message";
  return /^re:/i.test(base) ? base : `Re: ${base}`;
};

const bracketed = (id: string | null) => (id && id.startsWith("<") ? [id] : []);

export interface RepliesOptions {
  readonly kafka: Kafka;
  readonly codec: TopicCodec;
  readonly redis: Redis;
  readonly transport: Transporter;
  readonly rules: () => RoutingRules;
  /** The From address of replies; its domain names the replies' Message-IDs. */
  readonly from: string;
  readonly metrics: EmailMetrics;
  readonly log: Logger;
}

export interface ReplySender {
  start(): Promise<void>;
  healthy(): boolean;
  close(): Promise<void>;
}

export function createReplySender(options: RepliesOptions): ReplySender {
  const { kafka, codec, redis, transport, rules, from, metrics } = options;
  const log = options.log.child({ component: "replies" });
  const domain = /@([^>\s]+)/.exec(from)?.[1] ?? "localhost";
  let stopping = false;
  let crashed = false;
  const consumers: Consumer[] = [];

  const count = (inquiryId: string, outcome: string) => {
    metrics.replies.inc({ outcome });
    log.info({ inquiryId, outcome }, outcome === "sent" ? "automatic reply sent" : "response not sent automatically");
  };

  const classificationOf = async (key: string, heartbeat: () => Promise<void>): Promise<Classification | undefined> => {
    const deadline = Date.now() + CLASSIFICATION_WAIT_MS;
    for (;;) {
      const [intent, confidence] = await redis.hmget(key, "intent", "confidence");
      if (intent && confidence) return { intent, confidence: Number(confidence) };
      if (stopping || Date.now() > deadline) return undefined;
      await heartbeat();
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };

  interface Outgoing {
    readonly inquiryId: string;
    readonly envelope: InquiryEnvelope;
    readonly text: string;
    /** The record's field that says this reply was sent (claimed, then `sent`). */
    readonly field: string;
    readonly messageId: string;
    /** An automatic reply says so (RFC 3834), so that the customer's own autoresponder does not answer it. */
    readonly automatic: boolean;
    readonly count: (outcome: string) => void;
  }

  /** Sends one reply; true when done with it (sent, or refused for good), false to try again. */
  const send = async (reply: Outgoing): Promise<boolean> => {
    const { inquiryId, envelope, field, messageId } = reply;
    const key = recordKey(inquiryId);
    if (!(await redis.hsetnx(key, field, `sending:${Date.now()}`))) {
      const state = await redis.hget(key, field);
      reply.count(state?.startsWith("sending:") ? "unconfirmed" : "already_handled");
      return true;
    }
    const [subject, kept] = await redis.hmget(replyKey(inquiryId), "subject", "to");
    const to = envelope.reply_to ?? envelope.customer.email ?? kept;
    if (!to) {
      await redis.hset(key, field, "failed:no_address");
      reply.count("no_address");
      return true;
    }
    try {
      await transport.sendMail({
        from,
        to,
        subject: replySubject(subject ?? undefined),
        text: reply.text,
        messageId,
        inReplyTo: envelope.source_id.startsWith("<") ? envelope.source_id : undefined,
        references: [...new Set([...bracketed(envelope.thread_id), ...bracketed(envelope.source_id)])],
        headers: { ...(reply.automatic ? { "Auto-Submitted": "auto-replied" } : {}), "X-Switchboard-Inquiry": inquiryId },
      });
    } catch (error) {
      const code = (error as { responseCode?: number }).responseCode;
      if (code !== undefined && code >= 500) {
        // The server refused the message for good (a bad address, say): an agent answers instead.
        await redis.hset(key, field, `failed:${code}`);
        reply.count("refused_by_server");
        return true;
      }
      await redis.hdel(key, field);
      log.warn({ inquiryId, err: errorMessage(error) }, "reply not sent; trying again");
      return false;
    }
    await redis.hset(key, field, "sent", `${field}_message_id`, messageId);
    reply.count("sent");
    return true;
  };

  /** Sends until it is done with (the offset waits meanwhile), backing off while SMTP refuses for now. */
  const sendWithRetries = async (reply: Outgoing, heartbeat: () => Promise<void>) => {
    for (let attempt = 1; !stopping; attempt++) {
      if (await send(reply)) return;
      reply.count("retried");
      await heartbeat();
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, SEND_RETRY)));
    }
    // Stopping mid-retry: the offset is not committed, so the next start tries this reply again.
    throw new Error(`stopped before the reply to inquiry ${reply.inquiryId} was sent`);
  };

  /** Only inquiries this connector took in (a demo's email-channel samples have no record). */
  const ours = async (envelope: InquiryEnvelope, inquiryId: string) =>
    envelope.channel === "email" && (await redis.hget(recordKey(inquiryId), "state")) === "published";

  const handleResponse = async (response: InquiryResponse, heartbeat: () => Promise<void>) => {
    if (!(await ours(response.envelope, response.inquiry_id))) return;
    const autoReply = rules().autoReply;
    const classification =
      autoReply.enabled && autoReply.strategies.has(response.strategy)
        ? await classificationOf(recordKey(response.inquiry_id), heartbeat)
        : undefined;
    const decision = decideAutoReply(autoReply, response, classification);
    if (!decision.send) return count(response.inquiry_id, decision.reason);
    await sendWithRetries(
      {
        inquiryId: response.inquiry_id,
        envelope: response.envelope,
        text: response.text,
        field: "reply",
        messageId: `<reply-${response.inquiry_id}@${domain}>`,
        automatic: true,
        count: (outcome) => (outcome === "retried" ? metrics.replies.inc({ outcome }) : count(response.inquiry_id, outcome)),
      },
      heartbeat,
    );
  };

  const handleAgentReply = async (reply: AgentReply, heartbeat: () => Promise<void>) => {
    if (!(await ours(reply.envelope, reply.inquiry_id))) return;
    await sendWithRetries(
      {
        inquiryId: reply.inquiry_id,
        envelope: reply.envelope,
        text: reply.text,
        field: `agent_reply:${reply.reply_id}`,
        messageId: `<agent-reply-${reply.reply_id}@${domain}>`,
        automatic: false,
        count: (outcome) => {
          metrics.agentReplies.inc({ outcome });
          if (outcome !== "retried") log.info({ inquiryId: reply.inquiry_id, replyId: reply.reply_id, outcome }, "agent reply handled");
        },
      },
      heartbeat,
    );
  };

  const consumer = async (
    groupId: string,
    topic: string,
    eachMessage: (value: unknown, heartbeat: () => Promise<void>) => Promise<void>,
  ) => {
    const c = kafka.consumer({ groupId, maxWaitTimeInMs: 500 });
    consumers.push(c);
    c.on(c.events.CRASH, ({ payload }) => {
      crashed = !payload.restart;
      log.error({ topic, err: errorMessage(payload.error), restarting: payload.restart }, "reply consumer crashed");
    });
    await c.connect();
    // From the beginning where the group has no offset yet: a partition taken over from a killed
    // instance before any of its offsets was committed would otherwise start at its end and skip
    // what was produced meanwhile. Records of inquiries not ours are skipped; sent ones are recorded.
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({
      eachMessage: async ({ partition, message, heartbeat }) => {
        let value: unknown;
        try {
          value = await codec.decode(topic, message.value);
        } catch (error) {
          // The topic's own consumers send such a record to its DLQ; here it only has no reply.
          log.warn(
            { topic, partition, offset: message.offset, err: errorMessage(error) },
            "undecodable record skipped",
          );
          return;
        }
        await eachMessage(value, heartbeat);
      },
    });
  };

  return {
    async start() {
      await consumer("switchboard-email-classifications", "inquiries.classified", async (value) => {
        const { inquiry_id: inquiryId, intent, confidence } = value as InquiryClassified;
        await redis.eval(KEEP_CLASSIFICATION, 1, recordKey(inquiryId), intent, confidence);
      });
      await consumer("switchboard-email-replies", "inquiries.responses", (value, heartbeat) =>
        handleResponse(value as InquiryResponse, heartbeat),
      );
      await consumer("switchboard-email-agent-replies", "inquiries.replies", (value, heartbeat) =>
        handleAgentReply(value as AgentReply, heartbeat),
      );
      log.info("replies on: following inquiries.classified, inquiries.responses and inquiries.replies");
    },
    healthy: () => !crashed,
    async close() {
      stopping = true;
      await Promise.all(consumers.map((c) => c.disconnect()));
      transport.close();
    },
  };
}
