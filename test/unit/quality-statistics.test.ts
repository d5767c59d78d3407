import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { liveQualityTable } from "../../cli/live-quality.js";
import type { QualityReport } from "../../quality/live.js";
import { createQualityMetrics, recordQuality } from "../../quality/metrics.js";
import {
  calibrationCheck,
  confidenceSums,
  estimatedAccuracy,
  measuredQuality,
  standardError,
  wilsonInterval,
  windowQuality,
  type LabelledPrediction,
} from "../../quality/statistics.js";
import { parseWindow } from "../../quality/window.js";

/** Live quality's statistics against figures computed by hand (quality/README.md). */

const rows = (count: number, confidence: number, correct: number): LabelledPrediction[] =>
  Array.from({ length: count }, (_, i) => ({ truth: "a", predicted: i < correct ? "a" : "b", confidence }));

describe("label-free estimate (CBPE expected accuracy)", () => {
  it("is the mean confidence with standard error √Σp(1−p)/n", () => {
    const sums = confidenceSums([0.9, 0.8, 0.6, 0.7]);
    expect(sums.n).toBe(4);
    expect(sums.sum).toBeCloseTo(3.0, 12);
    // 0.09 + 0.16 + 0.24 + 0.21
    expect(sums.sumVariance).toBeCloseTo(0.7, 12);
    expect(standardError(sums)).toBeCloseTo(Math.sqrt(0.7) / 4, 12);
    const estimate = estimatedAccuracy(sums)!;
    expect(estimate.estimate).toBeCloseTo(0.75, 12);
    // 0.75 + 1.96 × 0.2092 > 1: the interval stays within [0, 1]
    expect(estimate.interval.high).toBe(1);
    expect(estimate.interval.low).toBeCloseTo(0.75 - 1.959964 * 0.2091650, 5);
  });

  it("states a 95 % interval of ±1.96 standard errors", () => {
    // 100 predictions, Σp = 80, Σp(1−p) = 16: SE = 4 / 100
    const estimate = estimatedAccuracy({ n: 100, sum: 80, sumVariance: 16 })!;
    expect(estimate.standardError).toBeCloseTo(0.04, 12);
    expect(estimate.interval.low).toBeCloseTo(0.8 - 0.0783986, 6);
    expect(estimate.interval.high).toBeCloseTo(0.8 + 0.0783986, 6);
    expect(estimatedAccuracy({ n: 100, sum: 80, sumVariance: 16 }, 1)!.interval.low).toBeCloseTo(0.76, 12);
  });

  it("is absent for an empty window", () => {
    expect(estimatedAccuracy(confidenceSums([]))).toBeNull();
  });
});

describe("measured quality", () => {
  it("Wilson interval: 3 of 4 gives [0.3006, 0.9544]; 0 of 10 gives [0, z²/(n+z²)]", () => {
    const three = wilsonInterval(3, 4);
    expect(three.low).toBeCloseTo(0.30064, 4);
    expect(three.high).toBeCloseTo(0.95441, 4);
    const none = wilsonInterval(0, 10);
    expect(none.low).toBe(0);
    expect(none.high).toBeCloseTo(3.841459 / 13.841459, 6);
  });

  it("accuracy, macro-F1 and per-class recall of a hand-counted confusion", () => {
    // a→a, a→a, a→b, b→b, b→a, c→c
    const pairs: [string, string][] = [["a", "a"], ["a", "a"], ["a", "b"], ["b", "b"], ["b", "a"], ["c", "c"]];
    const measured = measuredQuality(pairs.map(([truth, predicted]) => ({ truth, predicted, confidence: 0.5 })))!;
    expect(measured.n).toBe(6);
    expect(measured.correct).toBe(4);
    expect(measured.accuracy).toBeCloseTo(4 / 6, 12);
    // a: tp 2 fn 1 fp 1 → recall 2/3, F1 4/6; b: tp 1 fn 1 fp 1 → 1/2, 2/4; c: 1, 1
    expect(measured.perClassRecall).toEqual({ a: 2 / 3, b: 1 / 2, c: 1 });
    expect(measured.macroF1).toBeCloseTo((2 / 3 + 1 / 2 + 1) / 3, 12);
    expect(measured.interval).toEqual(wilsonInterval(4, 6));
    expect(measuredQuality([])).toBeNull();
  });
});

describe("trust check (calibration on the labelled subset)", () => {
  const policy = { minLabelled: 10, gapFactor: 3, maxGap: 0.15 };

  it("trusts a window whose labelled predictions are as right as they are confident", () => {
    // 100 at 0.8, 78 right: gap +0.02, SE √16/100 = 0.04
    const check = calibrationCheck(rows(100, 0.8, 78), policy);
    expect(check.meanConfidence).toBeCloseTo(0.8, 12);
    expect(check.accuracy).toBeCloseTo(0.78, 12);
    expect(check.gap).toBeCloseTo(0.02, 12);
    expect(check.standardError).toBeCloseTo(0.04, 12);
    expect(check.gapInErrors).toBeCloseTo(0.5, 12);
    expect(check.trusted).toBe(true);
    expect(check.reason).toBe("calibrated: mean confidence 0.800 vs accuracy 0.780 on 100 labelled (gap +0.020, 0.5× its sampling error 0.040)");
  });

  it("does not trust an over-confident model: the gap is many of its sampling errors", () => {
    // 100 at 0.9, 70 right: gap +0.2, SE √9/100 = 0.03, 6.7 errors
    const check = calibrationCheck(rows(100, 0.9, 70), policy);
    expect(check.gap).toBeCloseTo(0.2, 12);
    expect(check.standardError).toBeCloseTo(0.03, 12);
    expect(check.gapInErrors).toBeCloseTo(20 / 3, 10);
    expect(check.trusted).toBe(false);
    expect(check.reason).toMatch(/^over-confident: .*6\.7× its sampling error 0\.030\), over 3×$/);
  });

  it("does not trust an under-confident one either", () => {
    // 100 at 0.6, 80 right: gap −0.2, SE √24/100 = 0.049, 4.1 errors
    const check = calibrationCheck(rows(100, 0.6, 80), policy);
    expect(check.gapInErrors).toBeCloseTo(0.2 / (Math.sqrt(24) / 100), 10);
    expect(check.trusted).toBe(false);
    expect(check.reason).toMatch(/^under-confident: /);
  });

  it("does not trust a gap over the fixed bound, however noisy", () => {
    // 10 at 0.5, 3 right: gap +0.2, SE √2.5/10 = 0.158, only 1.3 errors, but over 0.15
    const check = calibrationCheck(rows(10, 0.5, 3), policy);
    expect(check.gapInErrors).toBeCloseTo(0.2 / (Math.sqrt(2.5) / 10), 10);
    expect(check.trusted).toBe(false);
    expect(check.reason).toMatch(/\|gap\| over 0\.15$/);
    expect(calibrationCheck(rows(10, 0.5, 3), { ...policy, maxGap: 0.25 }).trusted).toBe(true);
  });

  it("confidences of exactly 1 have no sampling error: any miss is a gap of infinitely many", () => {
    const check = calibrationCheck(rows(20, 1, 19), policy);
    expect(check.standardError).toBe(0);
    expect(check.gapInErrors).toBe(Infinity);
    expect(check.trusted).toBe(false);
    expect(calibrationCheck(rows(20, 1, 20), policy).trusted).toBe(true);
  });

  it("too few labels: unchecked, so not trusted", () => {
    const check = calibrationCheck(rows(9, 0.8, 7), policy);
    expect(check.trusted).toBe(false);
    expect(check.reason).toBe("unchecked: 9 labelled prediction(s) in the window, the calibration check needs 10");
  });

  it("reports the ECE of the labelled predictions (15 bins)", () => {
    // bin (0.8667, 0.9333]: two at 0.9, one right → |0.5 − 0.9|; bin (0.5333, 0.6]: two at 0.55, both right → |1 − 0.55|
    const labelled = [...rows(2, 0.9, 1), ...rows(2, 0.55, 2)];
    expect(calibrationCheck(labelled, policy).ece).toBeCloseTo(0.5 * 0.4 + 0.5 * 0.45, 12);
  });
});

describe("windows", () => {
  it("parses durations and counts", () => {
    expect(parseWindow("1h")).toEqual({ kind: "time", durationMs: 3_600_000, name: "1h" });
    expect(parseWindow("15m")).toEqual({ kind: "time", durationMs: 900_000, name: "15m" });
    expect(parseWindow("7d")).toEqual({ kind: "time", durationMs: 7 * 86_400_000, name: "7d" });
    expect(parseWindow("1000")).toEqual({ kind: "count", size: 1000, name: "1000" });
    for (const bad of ["0", "0h", "1.5h", "-1", "1w", "", "h"]) expect(() => parseWindow(bad)).toThrow(/expected a duration/);
  });
});

describe("gauges and the terminal table", () => {
  const report = (model: string, labelled: LabelledPrediction[]): QualityReport => ({
    version: { name: "intent", version: model.split("@")[1]!, model, stage: "production" },
    window: parseWindow("1h"),
    from: null,
    to: null,
    ...windowQuality({ n: 100, sum: 80, sumVariance: 16 }, labelled, { minLabelled: 10, gapFactor: 3, maxGap: 0.15 }),
  });

  it("sets every gauge of a report, and a refresh without a version drops its series", async () => {
    const registry = new Registry();
    const metrics = createQualityMetrics(registry);
    recordQuality(metrics, [report("intent@1", rows(100, 0.9, 70))], 1_700_000_000_000);
    const value = async (name: string, labels: Record<string, string> = {}) =>
      (await registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
    expect(await value("switchboard_quality_predictions", { model: "intent@1", name: "intent", stage: "production", window: "1h" })).toBe(100);
    expect(await value("switchboard_quality_labelled")).toBe(100);
    expect(await value("switchboard_quality_accuracy")).toBeCloseTo(0.7, 12);
    expect(await value("switchboard_quality_accuracy_interval", { bound: "low" })).toBeCloseTo(wilsonInterval(70, 100).low, 12);
    expect(await value("switchboard_quality_recall", { class: "a" })).toBeCloseTo(0.7, 12);
    expect(await value("switchboard_quality_estimated_accuracy")).toBeCloseTo(0.8, 12);
    expect(await value("switchboard_quality_estimated_accuracy_error")).toBeCloseTo(0.04, 12);
    expect(await value("switchboard_quality_calibration_gap")).toBeCloseTo(0.2, 12);
    expect(await value("switchboard_quality_estimate_trusted")).toBe(0);
    expect(await value("switchboard_quality_refreshed_timestamp_seconds")).toBe(1_700_000_000);

    recordQuality(metrics, [report("intent@2", [])]);
    expect(await value("switchboard_quality_predictions", { model: "intent@1" })).toBeUndefined();
    expect(await value("switchboard_quality_predictions", { model: "intent@2" })).toBe(100);
    // no labels: no measured figures, the estimate is there and not trusted
    expect(await value("switchboard_quality_accuracy")).toBeUndefined();
    expect(await value("switchboard_quality_estimated_accuracy")).toBeCloseTo(0.8, 12);
    expect(await value("switchboard_quality_estimate_trusted")).toBe(0);
  });

  it("prints one line per version and window", () => {
    // 79 of 100 right, one class in the labels: F1 = 2·79 / (2·79 + 21) = 0.883
    const lines = liveQualityTable([report("intent@1", rows(100, 0.8, 79)), report("intent@2", [])]).split("\n");
    expect(lines[0]).toMatch(/^model\s+stage\s+window\s+predictions\s+labelled\s+accuracy \[95 % CI\]\s+macro-F1\s+estimated ± 95 %\s+estimate$/);
    expect(lines[2]).toMatch(/^intent@1\s+production\s+1h\s+100\s+100\s+0\.790 \[0\.700, 0\.858\]\s+0\.883\s+0\.800 ± 0\.078\s+trusted$/);
    expect(lines[3]).toMatch(/^intent@2\s+production\s+1h\s+100\s+0\s+-\s+-\s+0\.800 ± 0\.078\s+not trusted: unchecked: 0 labelled/);
  });
});
