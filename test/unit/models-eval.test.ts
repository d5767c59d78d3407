import { describe, expect, it } from "vitest";
import { versionsToEvaluate } from "../../models/eval/evaluate.js";
import {
  classificationReport,
  expectedCalibrationError,
  outOfScopeReport,
  percentile,
} from "../../models/eval/metrics.js";
import type { RegisteredVersion } from "../../models/registry.js";

describe("held-out metrics (as training/metrics.py defines them)", () => {
  it("computes accuracy, macro-F1 and recall over the classes present in the truth", () => {
    const report = classificationReport(
      ["a", "a", "b", "b", "c"],
      ["a", "b", "b", "b", "d"],
      [0.9, 0.6, 0.8, 0.7, 0.5],
    );
    expect(report.n).toBe(5);
    expect(report.accuracy).toBeCloseTo(3 / 5, 12);
    // F1: a = 2·1/(2·1+0+1) = 2/3, b = 2·2/(2·2+1+0) = 4/5, c = 0; "d" is predicted but not a true class.
    expect(report.macroF1).toBeCloseTo((2 / 3 + 4 / 5 + 0) / 3, 12);
    expect(report.perClassRecall).toEqual({ a: 0.5, b: 1, c: 0 });
  });

  it("computes ECE over 15 bins (low, high], weighted by bin size", () => {
    // Bin (0.8, 0.8667]: confidences 0.85, 0.85, one right → |0.5 − 0.85|; bin (0.9333, 1]: 1.0 right → 0.
    expect(expectedCalibrationError([0.85, 0.85, 1], [true, false, true])).toBeCloseTo((2 / 3) * 0.35, 12);
    // 1.0 closes the top bin (0.9333, 1]: one bin holding a wrong 1.0 and a right 0.95 gives |0.5 − 0.975|.
    expect(expectedCalibrationError([1, 0.95], [false, true])).toBeCloseTo(0.475, 12);
    // 0 joins the lowest bin.
    expect(expectedCalibrationError([0, 0.05], [true, false])).toBeCloseTo(0.475, 12);
  });

  it("scores out-of-scope detection at a threshold: refused in-scope queries count as errors", () => {
    const report = outOfScopeReport(
      0.5,
      [
        { truth: "a", predicted: "a", confidence: 0.9 },
        { truth: "a", predicted: "a", confidence: 0.4 },
        { truth: "b", predicted: "a", confidence: 0.8 },
        { truth: "b", predicted: "b", confidence: 0.5 },
      ],
      [0.2, 0.6, 0.49],
    );
    expect(report.inScopeAccuracy).toBe(0.5);
    expect(report.oosRecall).toBeCloseTo(2 / 3, 12);
  });

  it("takes nearest-rank percentiles", () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile([3], 99)).toBe(3);
  });
});

describe("versions evaluated side by side", () => {
  const version = (
    model: string,
    family: string,
    stage: RegisteredVersion["stage"],
    day: number,
  ): RegisteredVersion => ({
    model,
    task: model,
    version: `${family}-${day}`,
    family,
    stage,
    directory: `/models/${model}/${family}-${day}`,
    createdAt: new Date(Date.UTC(2026, 0, day)),
  });

  it("shows per model and family the production version, else the newest candidate, else the newest archived one", () => {
    const chosen = versionsToEvaluate([
      version("intent", "linear", "archived", 1),
      version("intent", "linear", "production", 2),
      version("intent", "linear", "candidate", 3),
      version("intent", "encoder", "archived", 1),
      version("intent", "encoder", "archived", 4),
      version("intent", "ensemble", "candidate", 2),
      version("intent", "ensemble", "archived", 5),
      version("category", "linear", "archived", 1),
    ]);
    expect(chosen.map((v) => `${v.model}/${v.version}`)).toEqual([
      "category/linear-1",
      "intent/encoder-4",
      "intent/ensemble-2",
      "intent/linear-2",
    ]);
  });
});
