/**
 * Held-out metrics on label strings, defined as in training/metrics.py so Node and Python report
 * the same figures: macro-F1 and recall over the classes present in the truth, ECE over 15
 * equal-width confidence bins (low, high].
 */

export const ECE_BINS = 15;

export interface ClassificationReport {
  readonly n: number;
  readonly accuracy: number;
  readonly macroF1: number;
  readonly perClassRecall: Readonly<Record<string, number>>;
  readonly ece: number;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** Mean |accuracy − confidence| over the bins, weighted by their share of rows. */
export function expectedCalibrationError(
  confidence: readonly number[],
  correct: readonly boolean[],
  bins = ECE_BINS,
): number {
  const members: number[][] = Array.from({ length: bins }, () => []);
  confidence.forEach((c, row) => {
    // float32 product, as numpy computes it for the float32 probabilities in training/metrics.py
    const bin = Math.min(Math.max(Math.ceil(Math.fround(c * bins)) - 1, 0), bins - 1);
    members[bin]!.push(row);
  });
  let ece = 0;
  for (const rows of members) {
    if (rows.length === 0) continue;
    const accuracy = mean(rows.map((row) => (correct[row] ? 1 : 0)));
    const meanConfidence = mean(rows.map((row) => confidence[row]!));
    ece += (rows.length / confidence.length) * Math.abs(accuracy - meanConfidence);
  }
  return ece;
}

export function classificationReport(
  truth: readonly string[],
  predicted: readonly string[],
  confidence: readonly number[],
): ClassificationReport {
  const present = [...new Set(truth)].sort();
  const correct = truth.map((label, row) => label === predicted[row]);
  const perClassRecall: Record<string, number> = {};
  const f1s: number[] = [];
  for (const label of present) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    truth.forEach((t, row) => {
      const p = predicted[row];
      if (t === label && p === label) tp++;
      else if (p === label) fp++;
      else if (t === label) fn++;
    });
    perClassRecall[label] = tp / (tp + fn);
    f1s.push(tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn));
  }
  return {
    n: truth.length,
    accuracy: mean(correct.map((c) => (c ? 1 : 0))),
    macroF1: mean(f1s),
    perClassRecall,
    ece: expectedCalibrationError(confidence, correct),
  };
}

export interface OutOfScopeReport {
  readonly threshold: number;
  /** Right intent and confident enough to answer; a refused in-scope query counts as an error. */
  readonly inScopeAccuracy: number;
  /** Out-of-scope queries refused (max probability below the threshold). */
  readonly oosRecall: number;
  readonly inScope: number;
  readonly outOfScope: number;
}

/** training/oos.py `evaluate`: thresholding the maximum calibrated probability. */
export function outOfScopeReport(
  threshold: number,
  inScope: readonly { readonly truth: string; readonly predicted: string; readonly confidence: number }[],
  outOfScopeConfidence: readonly number[],
): OutOfScopeReport {
  return {
    threshold,
    inScopeAccuracy: mean(inScope.map((row) => (row.confidence >= threshold && row.predicted === row.truth ? 1 : 0))),
    oosRecall: mean(outOfScopeConfidence.map((confidence) => (confidence < threshold ? 1 : 0))),
    inScope: inScope.length,
    outOfScope: outOfScopeConfidence.length,
  };
}

/** Nearest-rank percentile of durations, p in (0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
