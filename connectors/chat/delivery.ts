import { setTimeout as sleep } from "node:timers/promises";
import type { Consumer, Kafka } from "kafkajs";
import type { Logger } from "pino";
import type { AgentReply, InquiryResponse } from "../../schemas/types.generated.js";
import { backoffDelay, type Backoff } from "../../streams/backoff.js";
import type { TopicCodec } from "../../streams/codec.js";
import { errorMessage } from "../../streams/errors.js";
import type { ChatMetrics } from "./metrics.js";
import type { ChatStore, MailboxReply } from "./store.js";

/**
 * The gateway's delivery consumer: reads the replies (drafted ones on inquiries.responses,
 * agents' on inquiries.replies) in a consumer group named after the connector, so that the
 * instances share the partitions, and appends each reply to a chat session to that session's
 * mailbox in Redis, which notifies the instance holding the socket. An offset is committed only
 * after its record's mailbox write: at least once into a mailbox that appends each reply once,
 * so a consumer killed at any instant neither loses a reply nor delivers one twice.
 */

/** Retrying a mailbox write while Redis is away (the offset waits), and starting the consumer while Kafka is. */
const MAILBOX_RETRY: Backoff = { initialMs: 100, maxMs: 5_000 };
const START_RETRY: Backoff = { initialMs: 1_000, maxMs: 30_000 };

export interface DeliveryOptions {
  readonly kafka: Kafka;
  readonly codec: TopicCodec;
  readonly store: ChatStore;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly sessionTtlMs: number;
  readonly sessionTimeoutMs: number;
  readonly metrics: ChatMetrics;
  readonly log: Logger;
}

export interface Delivery {
  /** Starts consuming in the background (retrying while Kafka is away). */
  start(): Promise<void>;
  /** In the group with its partitions, and not crashed for good. */
  healthy(): boolean;
  close(): Promise<void>;
}

/** What a reply record says for the mailbox, or why it is not for a chat session. */
export function mailboxReplyOf(
  value: unknown,
): { readonly sessionId: string; readonly dedupeKey: string; readonly reply: MailboxReply } | { readonly skip: "not_chat" } {
  const { envelope } = value as InquiryResponse | AgentReply;
  if (envelope.channel !== "chat" || !envelope.reply_to) return { skip: "not_chat" };
  if ("reply_id" in (value as object)) {
    const agentReply = value as AgentReply;
    return {
      sessionId: envelope.reply_to,
      dedupeKey: `agent:${agentReply.reply_id}`,
      reply: {
        inquiry_id: agentReply.inquiry_id,
        text: agentReply.text,
        author: "agent",
        agent: agentReply.agent,
        strategy: null,
        sent_at: agentReply.sent_at,
        received_at: envelope.received_at,
      },
    };
  }
  const response = value as InquiryResponse;
  return {
    sessionId: envelope.reply_to,
    dedupeKey: `draft:${response.inquiry_id}`,
    reply: {
      inquiry_id: response.inquiry_id,
      text: response.text,
      author: "assistant",
      agent: null,
      strategy: response.strategy,
      sent_at: response.responded_at,
      received_at: envelope.received_at,
    },
  };
}

export function createDelivery(options: DeliveryOptions): Delivery {
  const { kafka, codec, store, metrics } = options;
  const log = options.log.child({ component: "delivery" });
  let consumer: Consumer | undefined;
  let joined = false;
  let crashed = false;
  let stopping = false;

  /** Appends one record's reply; Redis failures are retried here (the offset waits), heartbeating the group. */
  const handle = async (topic: string, partition: number, offset: string, bytes: Buffer | null, heartbeat: () => Promise<void>) => {
    let value: unknown;
    try {
      value = await codec.decode(topic, bytes);
    } catch (error) {
      // The topic's own consumers (the archive) send such a record to its DLQ; here it only has no reply.
      log.warn({ topic, partition, offset, err: errorMessage(error) }, "undecodable reply record skipped");
      metrics.mailbox.inc({ outcome: "undecodable" });
      return;
    }
    const found = mailboxReplyOf(value);
    if ("skip" in found) {
      metrics.mailbox.inc({ outcome: found.skip });
      return;
    }
    // A session's mailbox outlives it by nothing: a reply older than that has nobody to go to.
    if (found.reply.received_at < Date.now() - options.sessionTtlMs) {
      metrics.mailbox.inc({ outcome: "expired" });
      return;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const { appended, id } = await store.append(found.sessionId, found.dedupeKey, found.reply);
        metrics.mailbox.inc({ outcome: appended ? "appended" : "duplicate" });
        log.debug({ sessionId: found.sessionId, inquiryId: found.reply.inquiry_id, replyId: id, appended }, "reply in mailbox");
        return;
      } catch (error) {
        if (stopping) throw new Error(`stopping before the reply to inquiry ${found.reply.inquiry_id} reached its mailbox`, { cause: error });
        const delay = backoffDelay(attempt, MAILBOX_RETRY);
        log.warn({ sessionId: found.sessionId, inquiryId: found.reply.inquiry_id, err: errorMessage(error), retryInMs: delay }, "mailbox write failed; retrying");
        await heartbeat().catch(() => undefined);
        await sleep(delay);
      }
    }
  };

  const run = async () => {
    const c = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(options.sessionTimeoutMs / 10)),
      maxWaitTimeInMs: 100,
      // Read committed (the default): respond writes in transactions.
    });
    consumer = c;
    c.on(c.events.GROUP_JOIN, ({ payload }) => {
      joined = true;
      metrics.deliveryJoined.set(1);
      crashed = false;
      log.info({ groupId: payload.groupId, assignment: payload.memberAssignment }, "delivery consumer joined its group");
    });
    c.on(c.events.CRASH, ({ payload }) => {
      crashed = !payload.restart;
      joined = false;
      metrics.deliveryJoined.set(0);
      log.error({ err: errorMessage(payload.error), restarting: payload.restart }, "delivery consumer crashed");
    });
    c.on(c.events.DISCONNECT, () => {
      joined = false;
      metrics.deliveryJoined.set(0);
    });
    await c.connect();
    // From the beginning where the group has no offset yet: a partition first consumed by a member
    // that took it over from a killed one would otherwise start at its end and skip the replies
    // produced meanwhile. Replies older than a session are skipped above; the mailbox dedupes the rest.
    for (const topic of options.topics) await c.subscribe({ topic, fromBeginning: true });
    await c.run({
      // Partitions are independent (a session's replies may sit in any of them: records are keyed by inquiry).
      partitionsConsumedConcurrently: 3,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) return;
          await handle(batch.topic, batch.partition, message.offset, message.value, heartbeat);
          resolveOffset(message.offset);
          await commitOffsetsIfNecessary();
        }
      },
    });
  };

  let started: Promise<void> | undefined;
  const stopped = new AbortController();
  return {
    start() {
      // Kafka away at boot: the gateway still serves (sessions open, messages are refused with
      // "unavailable"), unhealthy until the consumer is in its group; it keeps trying meanwhile.
      started = (async () => {
        for (let attempt = 1; !stopping; attempt++) {
          try {
            await run();
            return;
          } catch (error) {
            const delay = backoffDelay(attempt, START_RETRY);
            log.error({ err: errorMessage(error), retryInMs: delay }, "delivery consumer could not start; retrying");
            await consumer?.disconnect().catch(() => undefined);
            await sleep(delay, undefined, { signal: stopped.signal }).catch(() => undefined);
          }
        }
      })();
      return Promise.resolve();
    },
    healthy: () => joined && !crashed,
    async close() {
      stopping = true;
      stopped.abort();
      await consumer?.disconnect().catch(() => undefined);
      await started;
    },
  };
}
