import { createHash, randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { errorMessage } from "../../streams/errors.js";
import type { Desk } from "./signatures.js";

/** A service the webhook needs did not answer; the request is answered 503 with Retry-After. */
export class DependencyUnavailableError extends Error {
  constructor(
    readonly dependency: "redis" | "postgres",
    cause: unknown,
  ) {
    super(`${dependency === "redis" ? "Redis" : "PostgreSQL"} is unavailable: ${errorMessage(cause)}`, { cause });
    this.name = "DependencyUnavailableError";
  }
}

/**
 * Bounds a call: a client that queues commands while disconnected would otherwise hold the
 * request open. A timeout, and any failure `isOutage` tells apart from the call's own errors,
 * becomes a DependencyUnavailableError.
 */
export async function bounded<T>(
  dependency: DependencyUnavailableError["dependency"],
  timeoutMs: number,
  call: () => Promise<T>,
  isOutage: (error: unknown) => boolean = () => true,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DependencyUnavailableError(dependency, new Error(`no answer within ${timeoutMs} ms`))), timeoutMs);
  });
  try {
    return await Promise.race([call(), timeout]);
  } catch (error) {
    if (error instanceof DependencyUnavailableError || !isOutage(error)) throw error;
    throw new DependencyUnavailableError(dependency, error);
  } finally {
    clearTimeout(timer);
  }
}

/** What a done event answers again when it is redelivered. */
export interface DeliveryOutcome {
  readonly inquiry_id: string;
  readonly labels?: number;
}

export type Claim =
  | { readonly state: "claimed"; readonly token: string }
  | { readonly state: "pending" }
  | { readonly state: "done"; readonly outcome: DeliveryOutcome };

/** How long a claim holds while its records are published; outlives the intake's 5 s bound on a send. */
const PENDING_MS = 30_000;
/** How long a done event is remembered: the retention of inquiries.received, beyond any help desk's retries. */
const DONE_MS = 7 * 86_400_000;
const PENDING = "pending:";

// Only the claim's holder may complete or release it: a claim that expired and was taken again
// belongs to its new holder.
const COMPLETE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3]) end return nil`;
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`;

const hashed = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex").slice(0, 32);

/**
 * The webhooks' state in Redis: signatures seen (replay protection), one key per event
 * (idempotency: SET NX pending → publish → done, or released when the publish failed), and each
 * ticket's first inquiry (so a label for a ticket not archived yet waits instead of being dropped).
 */
export function createLedger(redis: Redis, timeoutMs: number) {
  const call = <T>(command: () => Promise<T>) => bounded("redis", timeoutMs, command);
  const eventKey = (desk: Desk, event: string) => `switchboard:webhooks:event:${desk}:${event}`;
  const ticketKey = (desk: Desk, ticketId: string) => `switchboard:webhooks:ticket:${desk}:${ticketId}`;
  const signatureKey = (desk: Desk, signature: Buffer) => `switchboard:webhooks:signature:${desk}:${hashed(signature)}`;

  return {
    /** True the first time a signature is seen within `ttlMs`; false for a replay. */
    async firstUse(desk: Desk, signature: Buffer, ttlMs: number): Promise<boolean> {
      return (await call(() => redis.set(signatureKey(desk, signature), "1", "PX", ttlMs, "NX"))) === "OK";
    },

    /** Lets the same signed request through again: its sender retries after a failure that was ours. */
    async forget(desk: Desk, signature: Buffer): Promise<void> {
      await call(() => redis.del(signatureKey(desk, signature)));
    },

    async claim(desk: Desk, event: string): Promise<Claim> {
      const token = `${PENDING}${randomUUID()}`;
      const key = eventKey(desk, event);
      if ((await call(() => redis.set(key, token, "PX", PENDING_MS, "NX"))) === "OK") return { state: "claimed", token };
      const value = await call(() => redis.get(key));
      // Gone in between (released or expired): the sender's retry will find it free.
      if (value === null || value.startsWith(PENDING)) return { state: "pending" };
      return { state: "done", outcome: JSON.parse(value) as DeliveryOutcome };
    },

    /** Marks a claimed event done; for a message, also records the ticket's first inquiry. */
    async complete(desk: Desk, event: string, token: string, outcome: DeliveryOutcome, ticketId?: string): Promise<void> {
      await call(async () => {
        await redis.eval(COMPLETE, 1, eventKey(desk, event), token, JSON.stringify(outcome), DONE_MS);
        if (ticketId !== undefined) await redis.set(ticketKey(desk, ticketId), outcome.inquiry_id, "PX", DONE_MS, "NX");
      });
    },

    async release(desk: Desk, event: string, token: string): Promise<void> {
      await call(() => redis.eval(RELEASE, 1, eventKey(desk, event), token));
    },

    /** The first inquiry published for a ticket in the last DONE_MS, if any. */
    async ticketInquiry(desk: Desk, ticketId: string): Promise<string | undefined> {
      return (await call(() => redis.get(ticketKey(desk, ticketId)))) ?? undefined;
    },
  };
}

export type Ledger = ReturnType<typeof createLedger>;
