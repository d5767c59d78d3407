import { readFileSync } from "node:fs";
import avro from "avsc";
import { describe, expect, it } from "vitest";
import type { DriftEvent } from "../../drift/monitor.js";
import { driftRecord, severity } from "../../drift/record.js";
import { chiSquare, jensenShannon, type StatisticResult } from "../../drift/statistics.js";
import type { ClosedWindow } from "../../drift/window.js";

const driftType = avro.Type.forSchema(
  JSON.parse(readFileSync(new URL("../../schemas/models.drift.avsc", import.meta.url), "utf8")),
);

const window: ClosedWindow = { index: 7, start: 1_700_000_000_000, end: 1_700_000_600_000, count: 500, features: {} };
const shares = { en: 0.9, es: 0.1 };

function tested(outcome: ReturnType<typeof chiSquare>): StatisticResult {
  if (outcome.kind !== "tested") throw new Error(outcome.reason);
  return outcome;
}

describe("a drift event as its models.drift record", () => {
  it("carries task, model@version, the window, statistic, value and threshold, and is valid Avro", () => {
    const result = tested(chiSquare({ reference: shares, counts: { en: 420, es: 80 } }));
    const event: DriftEvent = { transition: "raised", feature: "language", window, result };
    const record = driftRecord(
      { task: "intent", model: "intent@20261201T203924Z-linear-d944fa4e", detectedAt: 1_700_000_600_123 },
      event,
    );
    expect(record).toEqual({
      task: "intent",
      model: "intent@20261201T203924Z-linear-d944fa4e",
      feature: "language",
      window_start: window.start,
      window_end: window.end,
      sample_size: 500,
      statistic: "chi_square",
      value: result.value,
      threshold: result.threshold,
      severity: "critical",
      detected_at: 1_700_000_600_123,
    });
    // χ² = 30²/450 + 30²/50 = 20 over the 1-dof critical value 3.84 (p ≈ 7.7e-6 < α/1000: critical).
    expect(record.value).toBeCloseTo(900 / 450 + 900 / 50, 10);
    expect(record.threshold).toBeCloseTo(3.841458820694124, 9);
    expect(driftType.isValid(record)).toBe(true);
    expect(driftType.fromBuffer(driftType.toBuffer(record))).toEqual(record);
  });

  it("severity: warning just over the threshold, critical far over, info when the alarm clears", () => {
    const near = tested(chiSquare({ reference: shares, counts: { en: 435, es: 65 } })); // χ² = 0.5 + 4.5 = 5, p ≈ 0.025
    expect(near.drifted).toBe(true);
    expect(severity("raised", near)).toBe("warning");
    const far = tested(chiSquare({ reference: shares, counts: { en: 300, es: 200 } }));
    expect(severity("raised", far)).toBe("critical");
    expect(severity("cleared", far)).toBe("info");
    const js = tested(jensenShannon({ reference: shares, counts: { en: 375, es: 125 } })); // 0.141 (scipy)
    expect(js.value).toBeGreaterThan(0.1);
    expect(js.value).toBeCloseTo(0.14148279335057695, 12);
    expect(severity("raised", js)).toBe("warning");
    const jsFar = tested(jensenShannon({ reference: shares, counts: { es: 500 } }));
    expect(severity("raised", jsFar)).toBe("critical");
    for (const statistic of [near, far, js, jsFar]) {
      const record = driftRecord(
        { task: "t", model: "m@1", detectedAt: 0 },
        { transition: "raised", feature: "language", window, result: statistic },
      );
      expect(driftType.isValid(record)).toBe(true);
    }
  });
});
