import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createContactHistory } from "../../processors/urgency/repeat-contact.js";
import { redisOptions } from "../../config/security.js";

describe("repeat contact (Redis)", () => {
  const redis = new Redis(inject("endpoints").redisUrl, redisOptions(inject("endpoints")));
  afterAll(() => redis.disconnect());
  const hour = 60 * 60 * 1000;
  const history = createContactHistory(redis, 24 * hour);

  it("fires for a second inquiry of the same customer within the window, not for the first, and is idempotent", async () => {
    const customer = { id: `c-${randomUUID()}`, email: null, name: null, tier: null };
    const t0 = Date.now();
    expect(await history.isRepeatContact(customer, "a", t0)).toBe(false);
    expect(await history.isRepeatContact(customer, "a", t0)).toBe(false); // redelivered
    expect(await history.isRepeatContact(customer, "b", t0 + hour)).toBe(true);
    expect(await history.isRepeatContact(customer, "c", t0 + 30 * hour)).toBe(false); // a and b are outside the window
  });

  it("keys customers without an id by a digest of their e-mail address, never the address itself", async () => {
    const email = `someone-${randomUUID()}@example.com`;
    const customer = { id: null, email, name: null, tier: null };
    await history.isRepeatContact(customer, "x", Date.now());
    expect(await history.isRepeatContact({ ...customer, email: email.toUpperCase() }, "y", Date.now())).toBe(true);
    const keys = await redis.keys("switchboard:contacts:*");
    expect(keys.some((k) => k.includes(email))).toBe(false);
  });

  it("an anonymous customer is never a repeat contact", async () => {
    const anonymous = { id: null, email: null, name: null, tier: null };
    await history.isRepeatContact(anonymous, "p", Date.now());
    expect(await history.isRepeatContact(anonymous, "q", Date.now())).toBe(false);
  });
});
