import { describe, expect, it } from "vitest";
import { PART_NAMES, PREDICTIONS, judge, triggerIndex, type PartName } from "../../processors/route/join.js";

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

const FOUR: readonly PartName[] = ["cleaned", ...PREDICTIONS];

describe("route join rule", () => {
  it("routes on the last of the four parts, in every arrival order, and on no other", () => {
    for (const order of permutations(FOUR)) {
      const verdicts = order.map((part) => judge(part, order));
      expect(
        verdicts.slice(0, 3).every((v) => v.kind === "pending"),
        order.join(","),
      ).toBe(true);
      expect(verdicts[3]).toEqual({ kind: "route", parts: order, missing: [] });
    }
  });

  it("routes a timeout with what arrived before it and the missing predictions", () => {
    expect(judge("timeout", ["classified", "cleaned", "timeout"])).toEqual({
      kind: "route",
      parts: ["classified", "cleaned", "timeout"],
      missing: ["sentiment", "urgency"],
    });
    expect(judge("timeout", ["cleaned", "timeout"])).toMatchObject({
      kind: "route",
      missing: ["classified", "sentiment", "urgency"],
    });
  });

  it("waits for the cleaned inquiry after a timeout, and routes on its arrival", () => {
    expect(judge("timeout", ["urgency", "timeout"])).toEqual({ kind: "pending" });
    expect(judge("cleaned", ["urgency", "timeout", "cleaned"])).toEqual({
      kind: "route",
      parts: ["urgency", "timeout", "cleaned"],
      missing: ["classified", "sentiment"],
    });
  });

  it("ignores parts after the trigger as late, and a timeout after completion too", () => {
    const order: PartName[] = ["cleaned", "sentiment", "timeout", "urgency", "classified"];
    expect(judge("urgency", order)).toEqual({ kind: "late", trigger: "timeout" });
    expect(judge("classified", order)).toEqual({ kind: "late", trigger: "timeout" });
    expect(judge("timeout", [...FOUR, "timeout"])).toEqual({ kind: "late", trigger: "urgency" });
  });

  it("gives every part the same verdict however often it is re-judged as later parts arrive: exactly one trigger per order", () => {
    for (const order of permutations(PART_NAMES)) {
      const trigger = triggerIndex(order);
      expect(trigger, order.join(",")).toBeDefined();
      for (let seen = 1; seen <= order.length; seen++) {
        const arrived = order.slice(0, seen);
        arrived.forEach((part, i) => {
          const expected = trigger! >= seen || i < trigger! ? "pending" : i === trigger ? "route" : "late";
          expect(judge(part, arrived).kind, `${order.join(",")} after ${seen}: ${part}`).toBe(expected);
        });
      }
    }
  });

  it("refuses to judge a part that is not among the arrivals", () => {
    expect(() => judge("urgency", ["cleaned"])).toThrow(/missing from the arrivals/);
  });
});
