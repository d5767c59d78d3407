import { describe, expect, it } from "vitest";
import { judgeShadow, type ShadowBounds, type ShadowFigures } from "../../retrain/shadow.js";

/** The shadow evaluation's verdict at and around each of its bounds. */
describe("shadow verdict", () => {
  const bounds: ShadowBounds = { inquiries: 100, minLabelled: 20, maxConfidenceDrop: 0.05, maxLatencyRatio: 1.5, timeoutMs: 60_000 };
  const figures: ShadowFigures = {
    scored: 100,
    labelled: 20,
    shadowAccuracy: 0.8,
    productionAccuracy: 0.8,
    shadowMeanConfidence: 0.75,
    productionMeanConfidence: 0.8,
    shadowLatencyP95Ms: 15,
    productionLatencyP95Ms: 10,
  };

  it("promotes a shadow as accurate as production, exactly at the confidence and latency bounds", () => {
    const verdict = judgeShadow(figures, bounds, 1_000);
    expect(verdict.verdict).toBe("promote");
    expect(verdict.reason).toBe(
      "shadow accuracy 0.800 vs production 0.800 on 20 labelled; mean confidence 0.750 vs 0.800 (drop 0.050, bound 0.05); latency p95 15.0 vs 10.0 ms (ratio 1.50, bound 1.5) over 100 inquiries scored beside production",
    );
    expect("numbers" in verdict && verdict.numbers).toMatchObject({ shadow_scored: 100, shadow_labelled: 20, shadow_accuracy: 0.8, production_latency_p95_ms: 10 });
  });

  it("rejects a shadow past any bound, naming each one it failed", () => {
    expect(judgeShadow({ ...figures, shadowAccuracy: 0.79 }, bounds, 0)).toMatchObject({ verdict: "reject", reason: expect.stringMatching(/^shadow accuracy 0\.790 vs production 0\.800 on 20 labelled over/) });
    expect(judgeShadow({ ...figures, shadowMeanConfidence: 0.74 }, bounds, 0).verdict).toBe("reject");
    const both = judgeShadow({ ...figures, shadowMeanConfidence: 0.7, shadowLatencyP95Ms: 16 }, bounds, 0);
    expect(both.verdict).toBe("reject");
    expect(both.reason).toMatch(/mean confidence .* \(drop 0\.100, bound 0\.05\); latency p95 16\.0 vs 10\.0 ms \(ratio 1\.60, bound 1\.5\) over/);
    expect(judgeShadow({ ...figures, shadowLatencyP95Ms: null }, bounds, 0)).toMatchObject({ verdict: "reject", reason: expect.stringContaining("latency not measured") });
  });

  it("waits while too few inquiries are scored or labelled, then rejects for it after the timeout", () => {
    const few = { ...figures, scored: 99, labelled: 5 };
    expect(judgeShadow(few, bounds, 59_999)).toEqual({ verdict: "wait", reason: "99 of 100 inquiries scored beside production, 5 of 20 labelled" });
    expect(judgeShadow({ ...figures, labelled: 19 }, bounds, 0).verdict).toBe("wait");
    expect(judgeShadow(few, bounds, 60_000)).toMatchObject({
      verdict: "reject",
      reason: "shadow evaluation timed out after 1 min with 99 of 100 inquiries scored beside production, 5 of 20 labelled",
    });
  });
});
