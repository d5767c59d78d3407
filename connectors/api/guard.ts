import { createHash, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { ApiError, calling } from "./errors.js";

/**
 * What the API keeps in Redis: per-key request counts (fixed windows), Idempotency-Key claims
 * and outcomes, and a marker for each accepted inquiry so its status reads "received" before
 * the archive has it. A request's rate check and idempotency claim are one Lua script: one
 * round trip before Kafka, one after. Keys are namespaced by API key, so two clients' keys never
 * collide, and hold digests and ids only, never a body.
 */

const PREFIX = "switchboard:api";

// Claims KEYS[2] for this request unless it is already claimed or done (then returns what is stored).
const CLAIM = `
local stored = redis.call('GET', KEYS[2])
if stored then return {'existing', count, ttl, stored} end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return {'claimed', count, ttl}`;

// Counts the request in its window (KEYS[1]) and, given KEYS[2], claims the idempotency key.
const ADMIT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local ttl = redis.call('PTTL', KEYS[1])
if count > tonumber(ARGV[1]) then return {'limited', count, ttl} end
if #KEYS < 2 then return {'admitted', count, ttl} end
${CLAIM}`;

// A claim taken over again after a wait: no second count against the rate limit.
const RECLAIM = `local count, ttl = 0, 0\n${CLAIM}`;

// Records the accepted marker (KEYS[1], for ARGV[5] ms) and the outcome (KEYS[2], if given, only
// while this request's claim holds, for ARGV[2] ms).
const COMPLETE = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[5])
if #KEYS > 1 and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[2]) end
return 1`;

/**
 * The accepted marker only bridges the seconds until the archive has the inquiry; kept as long as
 * an Idempotency-Key (a day) it cost a key per accepted inquiry per day (1.4 million after a few
 * benchmark runs, and Redis's snapshots of them took a core). An hour covers a long backlog.
 */
const ACCEPTED_MARKER_TTL_MS = 60 * 60 * 1000;

// Replaces KEYS[1]'s value only while it is still ARGV[1] (a compare-and-set).
const SWAP = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0`;

type ScriptReply = [string, number, number, string?];

interface GuardCommands {
  apiAdmit(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  apiReclaim(numKeys: number, ...args: (string | number)[]): Promise<ScriptReply>;
  apiComplete(numKeys: number, ...args: (string | number)[]): Promise<number>;
  apiSwap(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

export interface GuardSettings {
  /** Requests a key may make per window. */
  readonly rateLimit: number;
  readonly rateWindowMs: number;
  /** How long an Idempotency-Key is kept. */
  readonly idempotencyTtlMs: number;
  /** How long a claim outlives a process that died while publishing; longer than any publish. */
  readonly claimTtlMs: number;
  /** How long a request whose Idempotency-Key is being published by another waits for that outcome. */
  readonly inProgressWaitMs: number;
}

export interface RateState {
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the window resets. */
  readonly resetS: number;
}

/** The outcome of an earlier request with the same Idempotency-Key and body. */
export interface Replay {
  readonly inquiryId: string;
  readonly receivedAt: number;
}

/**
 * A request's claim on publishing an inquiry (under its Idempotency-Key, if any): it publishes
 * the inquiry under this id and time, then completes the claim, or fails it.
 */
export interface Claim {
  readonly inquiryId: string;
  readonly receivedAt: number;
  complete(): Promise<void>;
  /** Kafka refused the publish: a retry with the key publishes the same inquiry (same id, same time). */
  fail(): Promise<void>;
}

export type Admission = { readonly rate: RateState } & (
  | { readonly kind: "fresh"; readonly claim: Claim }
  | { readonly kind: "replay"; readonly replay: Replay }
);

export interface Guard {
  /** Counts a request against its key's limit; throws 429 when over it. */
  admit(keyId: string): Promise<RateState>;
  /** Counts an inquiry and settles its Idempotency-Key (if any): publish it fresh, or answer as before. */
  admitInquiry(keyId: string, idempotency: { readonly key: string; readonly bodyDigest: string } | undefined): Promise<Admission>;
  /** When an inquiry this API accepted was received, while the marker lasts. */
  acceptedAt(inquiryId: string): Promise<number | undefined>;
}

const acceptedKey = (inquiryId: string) => `${PREFIX}:accepted:${inquiryId}`;

export function createGuard(redis: Redis, settings: GuardSettings): Guard {
  redis.defineCommand("apiAdmit", { lua: ADMIT });
  redis.defineCommand("apiReclaim", { lua: RECLAIM });
  redis.defineCommand("apiComplete", { lua: COMPLETE });
  redis.defineCommand("apiSwap", { lua: SWAP });
  const commands = redis as unknown as GuardCommands;

  const rateKey = (keyId: string) => `${PREFIX}:rate:${keyId}:${Math.floor(Date.now() / settings.rateWindowMs)}`;
  const rateOf = ([, count, ttl]: ScriptReply): RateState => {
    const resetS = Math.max(1, Math.ceil((ttl > 0 ? ttl : settings.rateWindowMs) / 1000));
    const state = { limit: settings.rateLimit, remaining: Math.max(0, settings.rateLimit - count), resetS };
    if (count > settings.rateLimit) {
      throw new ApiError(429, "rate_limited", `more than ${settings.rateLimit} requests in ${settings.rateWindowMs / 1000} s for this API key`, {
        headers: { "retry-after": String(resetS), ...rateHeaders(state) },
      });
    }
    return state;
  };

  const marker = (inquiryId: string, receivedAt: number): Claim => ({
    inquiryId,
    receivedAt,
    complete: () => calling("redis", () => commands.apiComplete(1, acceptedKey(inquiryId), String(receivedAt), settings.idempotencyTtlMs, "", "", ACCEPTED_MARKER_TTL_MS)).then(() => undefined),
    fail: async () => undefined,
  });

  // Values under an Idempotency-Key: p|digest|token|id|time while a request publishes, d|digest|id|time once Kafka has
  // it, f|digest|id|time after Kafka refused it. The id and time are fixed by the first request, so that a retry after
  // a refusal that Kafka wrote after all (an acknowledgement lost in a broken connection) repeats the same inquiry
  // rather than making a second one; downstream every stage keys by inquiry id.
  const claimFor = (idemKey: string, pending: string, bodyDigest: string, inquiryId: string, receivedAt: number): Claim => ({
    inquiryId,
    receivedAt,
    complete: () =>
      calling("redis", () =>
        commands.apiComplete(
          2,
          acceptedKey(inquiryId),
          idemKey,
          String(receivedAt),
          settings.idempotencyTtlMs,
          pending,
          `d|${bodyDigest}|${inquiryId}|${receivedAt}`,
          ACCEPTED_MARKER_TTL_MS,
        ),
      ).then(() => undefined),
    fail: () =>
      calling("redis", () => commands.apiSwap(1, idemKey, pending, `f|${bodyDigest}|${inquiryId}|${receivedAt}`, settings.idempotencyTtlMs)).then(() => undefined),
  });

  type Stored = { readonly state: "done" | "failed"; readonly inquiryId: string; readonly receivedAt: number } | { readonly state: "in_progress" };

  /** What an earlier request left under the key; another body under it is refused. */
  const parse = (stored: string, bodyDigest: string): Stored => {
    const [state, digest, ...rest] = stored.split("|");
    if (digest !== bodyDigest) {
      throw new ApiError(409, "idempotency_key_reused", "this Idempotency-Key was used with a different body; use a new key for a new inquiry", {
        field: "idempotency-key",
        reason: "reused with a different body",
      });
    }
    if (state === "p") return { state: "in_progress" };
    return { state: state === "d" ? "done" : "failed", inquiryId: rest[0]!, receivedAt: Number(rest[1]) };
  };

  return {
    admit: async (keyId) => rateOf(await calling("redis", () => commands.apiAdmit(1, rateKey(keyId), settings.rateLimit, settings.rateWindowMs))),

    async admitInquiry(keyId, idempotency) {
      const fresh = { inquiryId: randomUUID(), receivedAt: Date.now() };
      if (!idempotency) {
        const rate = rateOf(await calling("redis", () => commands.apiAdmit(1, rateKey(keyId), settings.rateLimit, settings.rateWindowMs)));
        return { kind: "fresh", rate, claim: marker(fresh.inquiryId, fresh.receivedAt) };
      }
      // A digest: the client's key may be long or say more than it should, and Redis keeps neither.
      const idemKey = `${PREFIX}:idem:${keyId}:${createHash("sha256").update(idempotency.key).digest("hex")}`;
      const { bodyDigest } = idempotency;
      const pendingFor = (inquiryId: string, receivedAt: number) => `p|${bodyDigest}|${randomUUID()}|${inquiryId}|${receivedAt}`;
      const pending = pendingFor(fresh.inquiryId, fresh.receivedAt);
      const args = [settings.rateLimit, settings.rateWindowMs, pending, settings.claimTtlMs] as const;
      let reply = await calling("redis", () => commands.apiAdmit(2, rateKey(keyId), idemKey, ...args));
      const rate = rateOf(reply);
      const deadline = Date.now() + settings.inProgressWaitMs;
      for (let wait = 20; ; wait = Math.min(wait * 2, 200)) {
        if (reply[0] === "claimed") return { kind: "fresh", rate, claim: claimFor(idemKey, pending, bodyDigest, fresh.inquiryId, fresh.receivedAt) };
        const stored = parse(reply[3]!, bodyDigest);
        if (stored.state === "done") return { kind: "replay", rate, replay: stored };
        if (stored.state === "failed") {
          const retry = pendingFor(stored.inquiryId, stored.receivedAt);
          if (await calling("redis", () => commands.apiSwap(1, idemKey, reply[3]!, retry, settings.claimTtlMs))) {
            return { kind: "fresh", rate, claim: claimFor(idemKey, retry, bodyDigest, stored.inquiryId, stored.receivedAt) };
          }
        } else if (Date.now() + wait > deadline) {
          throw new ApiError(409, "idempotency_key_in_progress", "a request with this Idempotency-Key is still being published; retry shortly", {
            field: "idempotency-key",
            reason: "in progress",
            headers: { "retry-after": "1" },
          });
        } else {
          await sleep(wait);
        }
        reply = await calling("redis", () => commands.apiReclaim(2, rateKey(keyId), idemKey, ...args));
      }
    },

    async acceptedAt(inquiryId) {
      const stored = await calling("redis", () => redis.get(acceptedKey(inquiryId)));
      return stored === null ? undefined : Number(stored);
    },
  };
}

/** The RateLimit-* headers (IETF draft) every guarded response carries. */
export function rateHeaders(rate: RateState): Record<string, string> {
  return { "ratelimit-limit": String(rate.limit), "ratelimit-remaining": String(rate.remaining), "ratelimit-reset": String(rate.resetS) };
}
