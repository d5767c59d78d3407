import { classificationReport, expectedCalibrationError } from "../models/eval/metrics.js";

/**
 * Live model quality of one window of predictions, as pure functions (quality/README.md):
 * measured figures on the labelled predictions, the label-free estimate of accuracy from the
 * calibrated confidences (NannyML's CBPE for multiclass accuracy: the expected accuracy is the
 * mean of the maximum probability), and the check that tells when that estimate cannot be
 * trusted (the labelled subset's mean confidence is off its measured accuracy).
 */

/** Two-sided 95 % normal quantile: the intervals below are 95 % ones unless a caller passes another z. */
export const Z_95 = 1.959963984540054;

export interface Interval {
  readonly low: number;
  readonly high: number;
}

/** A prediction with its resolved human label. */
export interface LabelledPrediction {
  readonly truth: string;
  readonly predicted: string;
  /** Maximum calibrated probability, as on predictions.feedback. */
  readonly confidence: number;
}

/**
 * What the estimate needs of a window's confidences p (the maximum calibrated probability of
 * each prediction): their count, Σp, and Σp(1−p), the variances of the per-row Bernoulli
 * "this prediction is right". Sums, so the database can compute them over any window.
 */
export interface ConfidenceSums {
  readonly n: number;
  readonly sum: number;
  readonly sumVariance: number;
}

export function confidenceSums(confidences: readonly number[]): ConfidenceSums {
  let sum = 0;
  let sumVariance = 0;
  for (const p of confidences) {
    sum += p;
    sumVariance += p * (1 - p);
  }
  return { n: confidences.length, sum, sumVariance };
}

/**
 * Standard error of the accuracy a calibrated model realises on these rows around their mean
 * confidence: the number right is a sum of independent Bernoulli(p_i), variance Σp(1−p), so the
 * accuracy's is Σp(1−p)/n². NannyML's CBPE sampling error for accuracy is this figure.
 */
export function standardError({ n, sumVariance }: ConfidenceSums): number {
  return n === 0 ? Number.NaN : Math.sqrt(Math.max(sumVariance, 0)) / n;
}

/** Wilson score interval of a proportion (good at small n and near 0 or 1, unlike the normal one). */
export function wilsonInterval(successes: number, n: number, z = Z_95): Interval {
  if (n === 0) return { low: Number.NaN, high: Number.NaN };
  const p = successes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

export interface MeasuredQuality {
  readonly n: number;
  readonly correct: number;
  readonly accuracy: number;
  /** Wilson interval of the accuracy. */
  readonly interval: Interval;
  /** Over the classes present in the labels (models/eval/metrics.ts, as training reports it). */
  readonly macroF1: number;
  readonly perClassRecall: Readonly<Record<string, number>>;
}

/** Accuracy (with its interval), macro-F1 and per-class recall of labelled predictions; null without any. */
export function measuredQuality(rows: readonly LabelledPrediction[], z = Z_95): MeasuredQuality | null {
  if (rows.length === 0) return null;
  const report = classificationReport(
    rows.map((r) => r.truth),
    rows.map((r) => r.predicted),
    rows.map((r) => r.confidence),
  );
  const correct = rows.filter((r) => r.truth === r.predicted).length;
  return {
    n: rows.length,
    correct,
    accuracy: report.accuracy,
    interval: wilsonInterval(correct, rows.length, z),
    macroF1: report.macroF1,
    perClassRecall: report.perClassRecall,
  };
}

export interface EstimatedAccuracy {
  readonly n: number;
  /** Mean maximum probability: the accuracy a calibrated model is expected to have on these rows. */
  readonly estimate: number;
  readonly standardError: number;
  /** estimate ± z·standardError, within [0, 1]: where the realised accuracy lies if the model is calibrated. */
  readonly interval: Interval;
}

/** The label-free estimate over a window's predictions; null for an empty window. */
export function estimatedAccuracy(sums: ConfidenceSums, z = Z_95): EstimatedAccuracy | null {
  if (sums.n === 0) return null;
  const estimate = sums.sum / sums.n;
  const error = standardError(sums);
  return {
    n: sums.n,
    estimate,
    standardError: error,
    interval: { low: Math.max(0, estimate - z * error), high: Math.min(1, estimate + z * error) },
  };
}

/** When the label-free estimate is trusted (quality/README.md, "The trust check"). */
export interface TrustPolicy {
  /** Labelled predictions in the window below which calibration is not checked and the estimate is not trusted. */
  readonly minLabelled: number;
  /** Untrusted when |gap| exceeds this many of its own sampling errors (a calibrated model: ~0.3 % of windows at 3). */
  readonly gapFactor: number;
  /** Untrusted when |gap| exceeds this, however noisy: a gap this large is never a usable estimate. */
  readonly maxGap: number;
}

export const DEFAULT_TRUST_POLICY: TrustPolicy = { minLabelled: 50, gapFactor: 3, maxGap: 0.15 };

export interface CalibrationCheck {
  /** Labelled predictions the check used. */
  readonly n: number;
  readonly meanConfidence: number;
  readonly accuracy: number;
  /** meanConfidence − accuracy: > 0 over-confident, < 0 under-confident. */
  readonly gap: number;
  /** The gap's sampling error if the model were calibrated on these rows: √Σp(1−p)/n. */
  readonly standardError: number;
  /** |gap| / standardError (Infinity when every confidence is 0 or 1 and the gap is not 0). */
  readonly gapInErrors: number;
  /** Expected calibration error over 15 bins, reported beside the gap (biased upwards on few rows, so not a criterion). */
  readonly ece: number;
  readonly trusted: boolean;
  /** Why trusted or not, for a person. */
  readonly reason: string;
}

const fixed = (value: number, digits = 3) => value.toFixed(digits);
const signed = (value: number, digits = 3) => `${value >= 0 ? "+" : ""}${value.toFixed(digits)}`;

/**
 * Calibration measured on the window's labelled predictions: the estimate assumes the mean
 * confidence equals the accuracy, so it is trusted only while that holds where it can be seen.
 * Fewer than `minLabelled` labelled rows: not checked, not trusted.
 */
export function calibrationCheck(rows: readonly LabelledPrediction[], policy: TrustPolicy = DEFAULT_TRUST_POLICY): CalibrationCheck {
  const sums = confidenceSums(rows.map((r) => r.confidence));
  const n = rows.length;
  const correct = rows.filter((r) => r.truth === r.predicted).length;
  const meanConfidence = n === 0 ? Number.NaN : sums.sum / n;
  const accuracy = n === 0 ? Number.NaN : correct / n;
  const gap = meanConfidence - accuracy;
  const error = standardError(sums);
  const gapInErrors = n === 0 ? Number.NaN : gap === 0 ? 0 : Math.abs(gap) / error;
  const ece = n === 0 ? Number.NaN : expectedCalibrationError(rows.map((r) => r.confidence), rows.map((r) => r.truth === r.predicted));
  const base = { n, meanConfidence, accuracy, gap, standardError: error, gapInErrors, ece };
  if (n < policy.minLabelled) {
    return { ...base, trusted: false, reason: `unchecked: ${n} labelled prediction(s) in the window, the calibration check needs ${policy.minLabelled}` };
  }
  const measured = `mean confidence ${fixed(meanConfidence)} vs accuracy ${fixed(accuracy)} on ${n} labelled (gap ${signed(gap)}, ${fixed(gapInErrors, 1)}× its sampling error ${fixed(error)})`;
  const direction = gap > 0 ? "over-confident" : "under-confident";
  if (gapInErrors > policy.gapFactor) return { ...base, trusted: false, reason: `${direction}: ${measured}, over ${policy.gapFactor}×` };
  if (Math.abs(gap) > policy.maxGap) return { ...base, trusted: false, reason: `${direction}: ${measured}, |gap| over ${policy.maxGap}` };
  return { ...base, trusted: true, reason: `calibrated: ${measured}` };
}

/** Everything live quality says about one window of one model version's predictions. */
export interface WindowQuality {
  /** Predictions in the window. */
  readonly predictions: number;
  /** Of them, those with a resolved label that counts (quality/README.md, "Labels"). */
  readonly labelled: number;
  readonly measured: MeasuredQuality | null;
  readonly estimated: EstimatedAccuracy | null;
  readonly calibration: CalibrationCheck;
}

export function windowQuality(
  sums: ConfidenceSums,
  labelled: readonly LabelledPrediction[],
  policy: TrustPolicy = DEFAULT_TRUST_POLICY,
  z = Z_95,
): WindowQuality {
  return {
    predictions: sums.n,
    labelled: labelled.length,
    measured: measuredQuality(labelled, z),
    estimated: estimatedAccuracy(sums, z),
    calibration: calibrationCheck(labelled, policy),
  };
}
