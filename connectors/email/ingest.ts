import type { Kafka } from "kafkajs";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { errorMessage } from "../../streams/errors.js";
import type { Intake } from "../intake.js";
import type { ConnectorMetrics } from "../metrics.js";
import { parseEmail, type EmailOrigin, type RefusalReason } from "./mime.js";
import { findPublished } from "./published.js";

/**
 * Exactly one inquiry per message, for the IMAP session and `import-mail` alike. Each message has
 * a Redis record under its inquiry id (derived from the Message-ID), which moves
 *
 *   (none) → pending(at) → published
 *
 * `pending` is written before the publish, `published` once Kafka acknowledged it; the caller
 * acknowledges its source (flags and moves the IMAP message) only after that. A message whose
 * record is `published` is not published again. A `pending` record is an attempt of unknown
 * outcome (the process died, or the publish failed or timed out after the record may have been
 * written): once no send of that attempt can still land (PENDING_SETTLE_MS), Kafka itself is
 * asked whether it holds the inquiry, and the message is published only if it does not. So a
 * crash at any point neither loses a message (its source is acknowledged last) nor makes a second
 * record of it. What this assumes is written in README (Email connector, delivery guarantee).
 */

/** Longer than any send of a publish attempt can still be under way: the intake's queue wait and send timeout (5 s each), with margin. */
export const PENDING_SETTLE_MS = 30_000;
/** A Message-ID seen within this long is recognised, from any mailbox or back-fill. */
const RECORD_TTL_SECONDS = 400 * 24 * 60 * 60;
const TOPIC = "inquiries.received";

export const recordKey = (inquiryId: string) => `switchboard:email:${inquiryId}`;
/**
 * What replying needs (only while replies are on): the message's `subject`, for the `Re:`, and
 * the address to reply `to` (agents' replies come from the archive, which keeps no addresses).
 */
export const replyKey = (inquiryId: string) => `switchboard:email:${inquiryId}:reply`;
/** Long enough for an agent to answer from the console; an address kept longer is personal data kept for nothing. */
const REPLY_TTL_SECONDS = 30 * 24 * 60 * 60;

/**
 * Claims the message for a publish; or says it is published, in flight elsewhere, or of unknown
 * outcome since `at`. KEYS: record, reply. ARGV: now, settle ms, record ttl, expected `at`,
 * subject ('' to keep nothing for replies), reply address, reply ttl.
 */
const CLAIM = `
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'published' then return 'published' end
if state == 'pending' then
  local at = redis.call('HGET', KEYS[1], 'at') or '0'
  if tonumber(ARGV[1]) - (tonumber(at) or 0) < tonumber(ARGV[2]) then return 'busy:' .. at end
  if ARGV[4] ~= at then return 'unknown:' .. at end
end
redis.call('HSET', KEYS[1], 'state', 'pending', 'at', ARGV[1])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[2], 'subject', ARGV[5], 'to', ARGV[6])
  redis.call('EXPIRE', KEYS[2], ARGV[7])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 'claimed'
`;

const PUBLISHED = `
redis.call('HSET', KEYS[1], 'state', 'published')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`;

export interface RawEmail {
  readonly raw: Buffer;
  readonly origin: EmailOrigin;
}

export type IngestOutcome =
  /** Kafka acknowledged the inquiry now. */
  | { readonly kind: "published"; readonly inquiryId: string }
  /** Kafka already had it (an earlier attempt, the same Message-ID from elsewhere): acknowledge the source. */
  | { readonly kind: "duplicate"; readonly inquiryId: string }
  | { readonly kind: "refused"; readonly reason: RefusalReason; readonly detail: string }
  /** An attempt of unknown outcome is too recent to judge, or another process is publishing it: try again from `retryAt`. */
  | { readonly kind: "deferred"; readonly inquiryId: string; readonly retryAt: number }
  /** Kafka or Redis did not answer: the source stays as it is and the message is tried again later. */
  | { readonly kind: "failed"; readonly error: string };

export interface IngestOptions {
  readonly intake: Intake;
  readonly redis: Redis;
  /** For looking up attempts of unknown outcome in inquiries.received. */
  readonly kafka: Kafka;
  readonly metrics: ConnectorMetrics;
  readonly log: Logger;
  readonly connector: string;
  readonly maxBytes: number;
  /** Keep what replying needs (replyKey): only when replies are on. */
  readonly keepReply: boolean;
}

export interface EmailIngest {
  /** Parses and publishes a batch; one outcome per message, in order. */
  ingest(messages: readonly RawEmail[]): Promise<IngestOutcome[]>;
  /** Counts and logs a refusal made before the message was read (e.g. its size, from IMAP). */
  refuse(origin: EmailOrigin, reason: RefusalReason, detail: string): IngestOutcome;
}

type Claim =
  { kind: "claimed" } | { kind: "published" } | { kind: "busy"; at: number } | { kind: "unknown"; at: number };

function claimOf(answer: unknown): Claim {
  const text = String(answer);
  if (text === "claimed" || text === "published") return { kind: text };
  const [kind, at] = text.split(":");
  if (kind === "busy" || kind === "unknown") return { kind, at: Number(at) };
  throw new Error(`unexpected claim answer from Redis: ${text}`);
}

export function createEmailIngest(options: IngestOptions): EmailIngest {
  const { intake, redis, kafka, metrics, log, connector, maxBytes, keepReply } = options;

  const claim = async (
    inquiries: readonly InquiryReceived[],
    now: number,
    knownUnknown: ReadonlyMap<string, number>,
  ): Promise<Claim[]> => {
    const pipeline = redis.pipeline();
    for (const inquiry of inquiries) {
      const expected = knownUnknown.get(inquiry.inquiry_id);
      pipeline.eval(
        CLAIM,
        2,
        recordKey(inquiry.inquiry_id),
        replyKey(inquiry.inquiry_id),
        now,
        PENDING_SETTLE_MS,
        RECORD_TTL_SECONDS,
        expected === undefined ? "" : String(expected),
        // A subject-less message keeps a blank one, so that its address is kept too.
        keepReply ? (inquiry.subject ?? " ") : "",
        inquiry.envelope.reply_to ?? inquiry.envelope.customer.email ?? "",
        REPLY_TTL_SECONDS,
      );
    }
    const results = (await pipeline.exec()) ?? [];
    return results.map(([error, answer]) => {
      if (error) throw error;
      return claimOf(answer);
    });
  };

  const markPublished = async (inquiryIds: readonly string[]): Promise<void> => {
    if (inquiryIds.length === 0) return;
    const pipeline = redis.pipeline();
    for (const id of inquiryIds) pipeline.eval(PUBLISHED, 1, recordKey(id), RECORD_TTL_SECONDS);
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  };

  /** Claims, settles unknown outcomes against Kafka, publishes what is still to publish. */
  const publishAll = async (inquiries: readonly InquiryReceived[]): Promise<Map<string, IngestOutcome>> => {
    const outcomes = new Map<string, IngestOutcome>();
    const now = Date.now();
    let claims = await claim(inquiries, now, new Map());

    const unknown = new Map<string, number>();
    inquiries.forEach((inquiry, i) => {
      const c = claims[i]!;
      if (c.kind === "unknown") unknown.set(inquiry.inquiry_id, c.at);
    });
    if (unknown.size > 0) {
      const attempts = [...unknown.values()];
      const found = await findPublished(
        kafka,
        TOPIC,
        new Set(unknown.keys()),
        Math.min(...attempts),
        Math.max(...attempts) + PENDING_SETTLE_MS,
      );
      log.info(
        { unknown: unknown.size, alreadyInKafka: found.size },
        "publish attempts of unknown outcome looked up in Kafka",
      );
      await markPublished([...found]);
      for (const id of found) unknown.delete(id);
      // The rest were never written: claim them again, unless another process did in the meantime.
      const retry = inquiries.filter((i) => unknown.has(i.inquiry_id));
      const reclaimed = await claim(retry, Date.now(), unknown);
      claims = claims.map((c, i) => {
        const id = inquiries[i]!.inquiry_id;
        if (found.has(id)) return { kind: "published" };
        const again = retry.findIndex((r) => r.inquiry_id === id);
        return again >= 0 ? reclaimed[again]! : c;
      });
    }

    const toSend: InquiryReceived[] = [];
    inquiries.forEach((inquiry, i) => {
      const c = claims[i]!;
      const id = inquiry.inquiry_id;
      if (c.kind === "claimed") toSend.push(inquiry);
      else if (c.kind === "published") outcomes.set(id, { kind: "duplicate", inquiryId: id });
      else outcomes.set(id, { kind: "deferred", inquiryId: id, retryAt: c.at + PENDING_SETTLE_MS });
    });
    const sent = await Promise.allSettled(toSend.map((inquiry) => intake.publishInquiry(inquiry)));
    const acknowledged = toSend.filter((_, i) => sent[i]!.status === "fulfilled").map((i) => i.inquiry_id);
    sent.forEach((result, i) => {
      const id = toSend[i]!.inquiry_id;
      if (result.status === "fulfilled") outcomes.set(id, { kind: "published", inquiryId: id });
      else outcomes.set(id, { kind: "failed", error: errorMessage(result.reason) });
    });
    metrics.accepted.inc({ connector, kind: "inquiry" }, acknowledged.length);
    try {
      await markPublished(acknowledged);
    } catch (error) {
      // Kafka has them; the records stay pending and the next attempt finds them in Kafka.
      for (const id of acknowledged)
        outcomes.set(id, { kind: "failed", error: `published, but not recorded: ${errorMessage(error)}` });
    }
    return outcomes;
  };

  const refuse = (origin: EmailOrigin, reason: RefusalReason, detail: string): IngestOutcome => {
    metrics.rejected.inc({ connector, reason });
    // Where the message is and why, never who sent it or what it says.
    log.warn(
      { mailbox: origin.mailbox, uid: origin.uid, file: origin.file, position: origin.position, reason, detail },
      "email refused",
    );
    return { kind: "refused", reason, detail };
  };

  return {
    refuse,
    async ingest(messages) {
      const verdicts = [];
      for (const { raw, origin } of messages) verdicts.push(await parseEmail(raw, origin, { maxBytes }));
      const outcomes = verdicts.map((verdict, i) =>
        verdict.ok ? undefined : refuse(messages[i]!.origin, verdict.reason, verdict.detail),
      );
      // One publish per inquiry id, even when a batch holds the same Message-ID twice.
      const unique = new Map<string, InquiryReceived>();
      for (const verdict of verdicts)
        if (verdict.ok && !unique.has(verdict.inquiry.inquiry_id))
          unique.set(verdict.inquiry.inquiry_id, verdict.inquiry);
      let byId: Map<string, IngestOutcome>;
      try {
        byId = await publishAll([...unique.values()]);
      } catch (error) {
        const failed: IngestOutcome = { kind: "failed", error: errorMessage(error) };
        byId = new Map([...unique.keys()].map((id) => [id, failed]));
      }
      const first = new Set<string>();
      return verdicts.map((verdict, i) => {
        if (!verdict.ok) return outcomes[i]!;
        const id = verdict.inquiry.inquiry_id;
        const outcome = byId.get(id)!;
        if (first.has(id) && outcome.kind === "published") return { kind: "duplicate", inquiryId: id };
        first.add(id);
        return outcome;
      });
    },
  };
}
