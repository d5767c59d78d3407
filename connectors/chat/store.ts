import type { Redis } from "ioredis";

/**
 * What the chat gateway keeps in Redis, shared by every instance. Per session (keys hash-tagged
 * by session id, so that a session's keys live on one node of a cluster and its scripts may
 * touch them together):
 * - `…:{sid}:session` (hash): the instance and connection holding the session's socket, the id of
 *   the last reply the customer confirmed (`acked`), and whether it was ever opened;
 * - `…:{sid}:mailbox` (stream): every reply for the session, in the order they were appended; the
 *   entry id is the reply's id on the socket, so a cursor is a stream id;
 * - `…:{sid}:seen` (hash): which replies the mailbox has (draft:<inquiry id>, agent:<reply id>),
 *   so that a record the delivery consumer reads twice is appended once;
 * - `…:{sid}:msg:<client id>`: the inquiry a customer message became (a resent message gets the
 *   same inquiry, published once);
 * - `…:{sid}:rate:<window>`: the session's message count in a fixed window;
 * - `…:{sid}:revoked`: set when the integration ended the session (its token opens nothing more).
 * Every key expires with the session (chatSessionTtlSeconds), refreshed as it is used.
 * Notifications go over pub/sub, one channel per instance (`switchboard:chat:instance:<id>`).
 */

const PREFIX = "switchboard:chat";
export const INSTANCE_CHANNEL_PREFIX = `${PREFIX}:instance:`;
const sessionKey = (sid: string) => `${PREFIX}:{${sid}}:session`;
const mailboxKey = (sid: string) => `${PREFIX}:{${sid}}:mailbox`;
const seenKey = (sid: string) => `${PREFIX}:{${sid}}:seen`;
const messageKey = (sid: string, clientId: string) => `${PREFIX}:{${sid}}:msg:${clientId}`;
const revokedKey = (sid: string) => `${PREFIX}:{${sid}}:revoked`;
const rateKey = (sid: string, windowMs: number) => `${PREFIX}:{${sid}}:rate:${Math.floor(Date.now() / windowMs)}`;
const guestRateKey = (address: string, windowMs: number) => `${PREFIX}:guest-rate:${address}:${Math.floor(Date.now() / windowMs)}`;

/**
 * Appends a reply to the mailbox unless it has it already, then tells the instance holding the
 * session, in one step: a consumer that dies after it can only append the same reply again,
 * which finds it seen. KEYS: mailbox, seen, session. ARGV: dedupe key, entry, ttl ms, max
 * length, channel prefix, session id.
 */
const APPEND = `
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return {0, existing} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'reply', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], id)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local instance = redis.call('HGET', KEYS[3], 'instance')
if instance then redis.call('PUBLISH', ARGV[5] .. instance, cjson.encode({kind = 'reply', session = ARGV[6]})) end
return {1, id}`;

/**
 * The session's socket is now this connection on this instance; the instance that held it before
 * (if any) is told to close its socket. KEYS: session, revoked. ARGV: instance, connection, ttl
 * ms, channel prefix, session id. Returns whether the session was opened before (-1: it was
 * revoked, and nothing changed) and its acked cursor.
 */
const ATTACH = `
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, ''} end
local previous = redis.call('HMGET', KEYS[1], 'instance', 'conn', 'acked')
local fresh = redis.call('HSETNX', KEYS[1], 'opened', '1')
redis.call('HSET', KEYS[1], 'instance', ARGV[1], 'conn', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if previous[1] and previous[2] then
  redis.call('PUBLISH', ARGV[4] .. previous[1], cjson.encode({kind = 'takeover', session = ARGV[5], conn = ARGV[2]}))
end
return {fresh, previous[3] or ''}`;

/**
 * Ends a session for good: its token opens nothing more, and the instance holding its socket is
 * told to close it. KEYS: revoked, session. ARGV: ttl ms (the longest a token lives), channel
 * prefix, session id. Returns 1 if the session was not revoked before.
 */
const REVOKE = `
local fresh = redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX')
local instance = redis.call('HGET', KEYS[2], 'instance')
if instance then redis.call('PUBLISH', ARGV[2] .. instance, cjson.encode({kind = 'revoked', session = ARGV[3]})) end
if fresh then return 1 end
return 0`;

/** The socket closed: the session has no holder, unless another connection took it meanwhile. KEYS: session. ARGV: connection. */
const DETACH = `
if redis.call('HGET', KEYS[1], 'conn') == ARGV[1] then redis.call('HDEL', KEYS[1], 'instance', 'conn') return 1 end
return 0`;

/** Moves the acked cursor forward (never back). KEYS: session. ARGV: reply id, ttl ms. */
const ACK = `
local function parse(id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
  return tonumber(ms or '-1'), tonumber(seq or '-1')
end
local ms, seq = parse(ARGV[1])
local cms, cseq = parse(redis.call('HGET', KEYS[1], 'acked'))
if ms > cms or (ms == cms and seq > cseq) then
  redis.call('HSET', KEYS[1], 'acked', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/**
 * A customer message's claim on its inquiry: what an earlier send of the same client id left, or
 * (counted against the session's rate limit) a new claim. KEYS: claim, rate. ARGV: pending value,
 * ttl ms (the session's: a claim left by a gateway that died is recognised by its age, see
 * CLAIM_TTL_MS, and published again under the same inquiry id), rate limit, window ms.
 */
const CLAIM = `
local stored = redis.call('GET', KEYS[1])
if stored then return {'existing', stored} end
local count = redis.call('INCR', KEYS[2])
if count == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
if count > tonumber(ARGV[3]) then return {'limited', tostring(redis.call('PTTL', KEYS[2]))} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'claimed', ARGV[1]}`;

/** Replaces KEYS[1]'s value only while it is still ARGV[1]. ARGV: expected, new, ttl ms. */
const SWAP = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0`;

/** Counts one request in a fixed window. KEYS: counter. ARGV: window ms. Returns count and ms left. */
const COUNT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}`;

interface ChatCommands {
  chatAppend(numKeys: number, ...args: (string | number)[]): Promise<[number, string]>;
  chatAttach(numKeys: number, ...args: (string | number)[]): Promise<[number, string]>;
  chatDetach(numKeys: number, ...args: (string | number)[]): Promise<number>;
  chatAck(numKeys: number, ...args: (string | number)[]): Promise<number>;
  chatClaim(numKeys: number, ...args: (string | number)[]): Promise<[string, string]>;
  chatSwap(numKeys: number, ...args: (string | number)[]): Promise<number>;
  chatCount(numKeys: number, ...args: (string | number)[]): Promise<[number, number]>;
  chatRevoke(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

/** A reply as the mailbox keeps it (the socket's reply event adds the id). */
export interface MailboxReply {
  readonly inquiry_id: string;
  readonly text: string;
  readonly author: "assistant" | "agent";
  readonly agent: string | null;
  readonly strategy: string | null;
  /** Unix ms the reply was written (responded_at, sent_at). */
  readonly sent_at: number;
  /** Unix ms the inquiry was received: the start of the reply latency. */
  readonly received_at: number;
}

export interface MailboxEntry {
  readonly id: string;
  readonly reply: MailboxReply;
}

/** What an earlier send of a client id left: in flight, published (done) or refused by Kafka (failed). */
export type StoredMessage =
  /** `claimedAt`: when this send began (a retry keeps the first send's inquiry id and time, not its claim time). */
  | { readonly state: "pending"; readonly raw: string; readonly inquiryId: string; readonly receivedAt: number; readonly claimedAt: number }
  | { readonly state: "done" | "failed"; readonly raw: string; readonly inquiryId: string; readonly receivedAt: number };

export type MessageClaim =
  | { readonly kind: "claimed"; readonly pending: string }
  | { readonly kind: "limited"; readonly retryAfterMs: number }
  | { readonly kind: "existing"; readonly stored: StoredMessage };

/** A stream id: `<ms>-<seq>`. */
export const REPLY_ID = /^\d{1,20}-\d{1,20}$/;

/** Orders two reply ids (stream ids) as the mailbox does. */
export function compareReplyIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

export function parseStored(raw: string): StoredMessage {
  const [state, ...rest] = raw.split("|");
  // p|<token>|<inquiry id>|<received at>|<claimed at>; d|… and f|…: <inquiry id>|<received at>.
  const [inquiryId, receivedAt, claimedAt] = state === "p" ? rest.slice(1) : rest;
  const parsed = { raw, inquiryId: inquiryId!, receivedAt: Number(receivedAt) };
  return state === "p" ? { state: "pending", ...parsed, claimedAt: Number(claimedAt ?? receivedAt) } : { state: state === "d" ? "done" : "failed", ...parsed };
}

export interface ChatStore {
  append(sessionId: string, dedupeKey: string, reply: MailboxReply): Promise<{ readonly appended: boolean; readonly id: string }>;
  /** Up to `count` replies after `cursor` (exclusive; `0-0` for all), in order. */
  readAfter(sessionId: string, cursor: string, count: number): Promise<MailboxEntry[]>;
  /** `revoked`: the integration ended the session; nothing was attached. */
  attach(
    sessionId: string,
    instance: string,
    conn: string,
  ): Promise<{ readonly revoked: true } | { readonly revoked: false; readonly openedBefore: boolean; readonly acked: string | undefined }>;
  detach(sessionId: string, conn: string): Promise<void>;
  ack(sessionId: string, replyId: string): Promise<void>;
  claimMessage(sessionId: string, clientId: string, pending: string, limit: number, windowMs: number): Promise<MessageClaim>;
  /** Compare-and-set of a message claim (pending → done or failed; failed → pending again). */
  swapMessage(sessionId: string, clientId: string, expected: string, next: string, ttlMs: number): Promise<boolean>;
  readMessage(sessionId: string, clientId: string): Promise<StoredMessage | undefined>;
  /** Counts a guest session request from `address`; the count in this window and ms until it resets. */
  countGuest(address: string, windowMs: number): Promise<{ readonly count: number; readonly resetMs: number }>;
}

export function createChatStore(redis: Redis, settings: { readonly sessionTtlMs: number; readonly mailboxMaxLength: number }): ChatStore {
  redis.defineCommand("chatAppend", { lua: APPEND });
  redis.defineCommand("chatAttach", { lua: ATTACH });
  redis.defineCommand("chatDetach", { lua: DETACH });
  redis.defineCommand("chatAck", { lua: ACK });
  redis.defineCommand("chatClaim", { lua: CLAIM });
  redis.defineCommand("chatSwap", { lua: SWAP });
  redis.defineCommand("chatCount", { lua: COUNT });
  const commands = redis as unknown as ChatCommands;
  const ttl = settings.sessionTtlMs;

  return {
    async append(sessionId, dedupeKey, reply) {
      const [appended, id] = await commands.chatAppend(
        3,
        mailboxKey(sessionId),
        seenKey(sessionId),
        sessionKey(sessionId),
        dedupeKey,
        JSON.stringify(reply),
        ttl,
        settings.mailboxMaxLength,
        INSTANCE_CHANNEL_PREFIX,
        sessionId,
      );
      return { appended: appended === 1, id };
    },

    async readAfter(sessionId, cursor, count) {
      const entries = await redis.xrange(mailboxKey(sessionId), `(${cursor}`, "+", "COUNT", count);
      return entries.map(([id, fields]) => ({ id, reply: JSON.parse(fields[fields.indexOf("reply") + 1]!) as MailboxReply }));
    },

    async attach(sessionId, instance, conn) {
      const [fresh, acked] = await commands.chatAttach(2, sessionKey(sessionId), revokedKey(sessionId), instance, conn, ttl, INSTANCE_CHANNEL_PREFIX, sessionId);
      if (fresh === -1) return { revoked: true };
      return { revoked: false, openedBefore: fresh === 0, acked: acked || undefined };
    },

    async detach(sessionId, conn) {
      await commands.chatDetach(1, sessionKey(sessionId), conn);
    },

    async ack(sessionId, replyId) {
      await commands.chatAck(1, sessionKey(sessionId), replyId, ttl);
    },

    async claimMessage(sessionId, clientId, pending, limit, windowMs) {
      const [kind, value] = await commands.chatClaim(2, messageKey(sessionId, clientId), rateKey(sessionId, windowMs), pending, ttl, limit, windowMs);
      if (kind === "claimed") return { kind, pending: value };
      if (kind === "limited") return { kind, retryAfterMs: Math.max(1, Number(value)) };
      return { kind: "existing", stored: parseStored(value) };
    },

    async swapMessage(sessionId, clientId, expected, next, ttlMs) {
      return (await commands.chatSwap(1, messageKey(sessionId, clientId), expected, next, ttlMs)) === 1;
    },

    async readMessage(sessionId, clientId) {
      const raw = await redis.get(messageKey(sessionId, clientId));
      return raw === null ? undefined : parseStored(raw);
    },

    async countGuest(address, windowMs) {
      const [count, resetMs] = await commands.chatCount(1, guestRateKey(address, windowMs), windowMs);
      return { count, resetMs: resetMs > 0 ? resetMs : windowMs };
    },
  };
}

/**
 * Ends chat sessions from outside the gateway (the API, when an integration signs its customer
 * out): the token stops opening the session on every instance, and an open socket is closed.
 * `sessionTtlMs` must be at least the longest a token lives, so the mark outlasts every token.
 */
export function createSessionRevoker(redis: Redis, sessionTtlMs: number): { revoke(sessionId: string): Promise<{ readonly revokedNow: boolean }> } {
  redis.defineCommand("chatRevoke", { lua: REVOKE });
  const commands = redis as unknown as ChatCommands;
  return {
    async revoke(sessionId) {
      const fresh = await commands.chatRevoke(2, revokedKey(sessionId), sessionKey(sessionId), sessionTtlMs, INSTANCE_CHANNEL_PREFIX, sessionId);
      return { revokedNow: fresh === 1 };
    },
  };
}

/**
 * Age after which a pending claim belongs to a gateway that died while publishing: longer than
 * any publish (the intake's timeout is 5 s). A resend after that publishes under the same inquiry
 * id again (downstream every stage keys by it), never under a new one.
 */
export const CLAIM_TTL_MS = 30_000;
