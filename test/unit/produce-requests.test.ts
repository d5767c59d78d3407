import { describe, expect, it } from "vitest";
import { splitIntoRequests } from "../../streams/produce-requests.js";

const message = (topic: string, key: string, bytes: number) => ({ topic, message: { key, value: Buffer.alloc(bytes) } });

describe("splitIntoRequests", () => {
  it("keeps a small transaction in one request, grouped by topic in order", () => {
    const requests = splitIntoRequests([message("a", "1", 10), message("b", "2", 10), message("a", "3", 10)]);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.map((t) => [t.topic, t.messages.map((m) => m.key)])).toEqual([
      ["a", ["1", "3"]],
      ["b", ["2"]],
    ]);
  });

  it("splits at the budget, keeping every message once and in order", () => {
    const outgoing = Array.from({ length: 100 }, (_, i) => message(i % 2 ? "a" : "b", String(i), 1_000));
    const requests = splitIntoRequests(outgoing, 10_000);
    expect(requests.length).toBeGreaterThan(9);
    for (const request of requests) {
      const bytes = request.flatMap((t) => t.messages).reduce((sum, m) => sum + (m.value as Buffer).length, 0);
      expect(bytes).toBeLessThanOrEqual(10_000);
    }
    const keysOf = (topic: string) => requests.flatMap((r) => r.filter((t) => t.topic === topic).flatMap((t) => t.messages.map((m) => m.key)));
    expect(keysOf("a")).toEqual(outgoing.filter((o) => o.topic === "a").map((o) => o.message.key));
    expect(keysOf("b")).toEqual(outgoing.filter((o) => o.topic === "b").map((o) => o.message.key));
  });

  it("sends a message larger than the budget alone", () => {
    const requests = splitIntoRequests([message("a", "1", 10), message("a", "big", 50_000), message("a", "2", 10)], 10_000);
    expect(requests.map((r) => r.flatMap((t) => t.messages.map((m) => m.key)))).toEqual([["1"], ["big"], ["2"]]);
  });

  it("makes no request for no output", () => {
    expect(splitIntoRequests([])).toEqual([]);
  });
});
