import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Customer } from "../../schemas/types.generated.js";

/**
 * Remembers, per customer, the inquiries of the last window in a Redis sorted set (member =
 * inquiry id, score = received time). Adding is idempotent, so a redelivered inquiry gets the same
 * answer; a customer is keyed by a digest so no e-mail address is stored in Redis.
 */
export function createContactHistory(redis: Redis, windowMs: number) {
  return {
    /** True when the same customer sent another inquiry within the window before this one. */
    async isRepeatContact(customer: Customer, inquiryId: string, receivedAt: number): Promise<boolean> {
      const identity = customer.id ?? customer.email;
      if (!identity) return false;
      const key = `switchboard:contacts:${createHash("sha256").update(identity.toLowerCase()).digest("hex").slice(0, 32)}`;
      const results = await redis
        .multi()
        .zadd(key, "NX", receivedAt, inquiryId)
        .zremrangebyscore(key, "-inf", `(${receivedAt - windowMs}`)
        .zrangebyscore(key, receivedAt - windowMs, receivedAt)
        .pexpire(key, windowMs)
        .exec();
      const earlier = (results?.[2]?.[1] as string[] | undefined) ?? [];
      return earlier.some((member) => member !== inquiryId);
    },
  };
}
