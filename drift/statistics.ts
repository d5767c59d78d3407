import type { DriftStatistic } from "../schemas/types.generated.js";
import { chiSquareIsf, chiSquareSf, ksTwoSamplePValue, normalSf } from "./distributions.js";

/**
 * Two-sample tests and distances between a window of live traffic and a model's reference
 * distribution (drift/README.md says which, with what threshold, and why). Every test returns the
 * same shape so windows, alarms and `models.drift` records treat them alike: `value` is on the
 * statistic's own scale and drift means value > threshold, also for the p-value tests, whose
 * `threshold` is the statistic's critical value at their α for this sample size (so a record's
 * value and threshold compare the same way whatever the statistic).
 */

/** A test with a p-value alarms at p < alpha and settles (hysteresis) at p ≥ clearAlpha. */
export interface PValueRule {
  readonly alpha: number;
  readonly clearAlpha: number;
}

/** A distance alarms above `threshold` and settles at or below `clear`. */
export interface DistanceRule {
  readonly threshold: number;
  readonly clear: number;
}

/** Evidently's defaults: p < 0.05 for the tests, 0.1 for the normalised distances. */
export const DEFAULT_P_RULE: PValueRule = { alpha: 0.05, clearAlpha: 0.2 };
export const DEFAULT_DISTANCE_RULE: DistanceRule = { threshold: 0.1, clear: 0.05 };

export interface StatisticResult {
  readonly kind: "tested";
  readonly statistic: DriftStatistic;
  readonly sampleSize: number;
  readonly value: number;
  /** null for distances. */
  readonly pValue: number | null;
  /** Drift when value > threshold (the critical value at alpha for the p-value tests). */
  readonly threshold: number;
  readonly drifted: boolean;
  /** Far enough back under the threshold to end an alarm (the lower threshold of the hysteresis). */
  readonly settled: boolean;
  /** The rule's own figure: alpha for a p-value test, the distance threshold otherwise. */
  readonly rule: PValueRule | DistanceRule;
}

/** Nothing to compare (an empty window): no evidence either way, so alarms neither advance nor reset. */
export interface Insufficient {
  readonly kind: "insufficient";
  readonly statistic: DriftStatistic;
  readonly sampleSize: number;
  readonly reason: string;
}

export type Outcome = StatisticResult | Insufficient;

function insufficient(statistic: DriftStatistic, sampleSize: number, reason: string): Insufficient {
  return { kind: "insufficient", statistic, sampleSize, reason };
}

function pTest(
  statistic: DriftStatistic,
  sampleSize: number,
  value: number,
  pValue: number,
  critical: number,
  rule: PValueRule,
): StatisticResult {
  return {
    kind: "tested",
    statistic,
    sampleSize,
    value,
    pValue,
    threshold: critical,
    drifted: pValue < rule.alpha,
    settled: pValue >= rule.clearAlpha,
    rule,
  };
}

function distance(statistic: DriftStatistic, sampleSize: number, value: number, rule: DistanceRule): StatisticResult {
  return {
    kind: "tested",
    statistic,
    sampleSize,
    value,
    pValue: null,
    threshold: rule.threshold,
    drifted: value > rule.threshold,
    settled: value <= rule.clear,
    rule,
  };
}

const sum = (values: ArrayLike<number>): number => {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i]!;
  return total;
};

// ---------------------------------------------------------------- categorical

/**
 * Share of the window a category the reference never saw is expected to take. The reference
 * stores shares, not counts, so "never seen" means "rarer than the reference could show": a floor
 * keeps one stray language tag from making χ² infinite, while a few percent of a new category
 * still alarms at once (7 of 600 give χ² ≈ 70 on that cell alone).
 */
export const UNSEEN_SHARE = 1e-3;

export interface CategoricalComparison {
  /** The reference's shares per category (a category of share 0 counts as unseen). */
  readonly reference: Readonly<Record<string, number>>;
  /** The window's counts per category. */
  readonly counts: Readonly<Record<string, number>>;
}

interface Cells {
  readonly observed: number[];
  readonly expectedShares: number[];
  readonly total: number;
  readonly unseen: number;
}

function categoricalCells({ reference, counts }: CategoricalComparison): Cells {
  const known = Object.keys(reference).filter((key) => reference[key]! > 0);
  const referenceTotal = sum(known.map((key) => reference[key]!));
  let unseen = 0;
  let total = 0;
  for (const [key, count] of Object.entries(counts)) {
    total += count;
    if (!(reference[key]! > 0)) unseen += count;
  }
  const observed = known.map((key) => counts[key] ?? 0);
  // Shares are renormalised: a manifest's shares are rounded and may not sum to exactly 1.
  let expectedShares = known.map((key) => reference[key]! / referenceTotal);
  // A one-category reference (English only) keeps the unseen cell even when empty: one cell has nothing to test.
  if (unseen > 0 || known.length === 1) {
    expectedShares = [...expectedShares.map((share) => share * (1 - UNSEEN_SHARE)), UNSEEN_SHARE];
    observed.push(unseen);
  }
  return { observed, expectedShares, total, unseen };
}

/**
 * Pearson's χ² goodness of fit of the window's counts against the reference shares (Evidently's
 * chi-square test: expected = reference share × window size; scipy.stats.chisquare). Categories
 * the reference lacks are pooled into one cell of expected share UNSEEN_SHARE.
 */
export function chiSquare(comparison: CategoricalComparison, rule: PValueRule = DEFAULT_P_RULE): Outcome {
  const cells = categoricalCells(comparison);
  if (cells.total === 0) return insufficient("chi_square", 0, "empty window");
  if (cells.observed.length < 2) return insufficient("chi_square", cells.total, "the reference has no categories");
  let statistic = 0;
  for (let i = 0; i < cells.observed.length; i++) {
    const expected = cells.expectedShares[i]! * cells.total;
    statistic += (cells.observed[i]! - expected) ** 2 / expected;
  }
  const dof = cells.observed.length - 1;
  return pTest("chi_square", cells.total, statistic, chiSquareSf(statistic, dof), chiSquareIsf(rule.alpha, dof), rule);
}

/**
 * Jensen–Shannon distance (square root of the divergence, natural log: scipy.spatial.distance.
 * jensenshannon, as Evidently uses it) between the reference shares and the window's, over the
 * union of their categories; bounded by √ln 2 ≈ 0.83, and zeros need no smoothing.
 */
export function jensenShannon(comparison: CategoricalComparison, rule: DistanceRule = DEFAULT_DISTANCE_RULE): Outcome {
  const { reference, counts } = comparison;
  const keys = [...new Set([...Object.keys(reference), ...Object.keys(counts)])];
  const p = keys.map((key) => Math.max(reference[key] ?? 0, 0));
  const q = keys.map((key) => counts[key] ?? 0);
  const pTotal = sum(p);
  const qTotal = sum(q);
  if (qTotal === 0) return insufficient("jensen_shannon", 0, "empty window");
  let divergence = 0;
  for (let i = 0; i < keys.length; i++) {
    const pi = p[i]! / pTotal;
    const qi = q[i]! / qTotal;
    const mi = (pi + qi) / 2;
    if (pi > 0) divergence += pi * Math.log(pi / mi);
    if (qi > 0) divergence += qi * Math.log(qi / mi);
  }
  return distance("jensen_shannon", qTotal, Math.sqrt(Math.max(divergence / 2, 0)), rule);
}

// ---------------------------------------------------------------- numerical

/** Two-sided KS statistic of two raw samples: max |F₁ − F₂| at every observed value (ties included). */
export function ksStatistic(a: readonly number[], b: readonly number[]): number {
  const x = [...a].sort((u, v) => u - v);
  const y = [...b].sort((u, v) => u - v);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length || j < y.length) {
    const next = Math.min(x[i] ?? Infinity, y[j] ?? Infinity);
    while (i < x.length && x[i]! <= next) i++;
    while (j < y.length && y[j]! <= next) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/**
 * The smallest statistic whose p-value is below alpha: p falls as d grows, so bisect, from a
 * bracket around the asymptotic critical value √(−ln(α/2)/2 · (n1+n2)/(n1·n2)), to 1e-6.
 */
function ksCritical(n1: number, n2: number, alpha: number): number {
  const key = `${n1}/${n2}/${alpha}`;
  const known = ksCriticalMemo.get(key);
  if (known !== undefined) return known;
  if (ksCriticalMemo.size >= 1024) ksCriticalMemo.clear();
  const critical = bisectKsCritical(n1, n2, alpha);
  ksCriticalMemo.set(key, critical);
  return critical;
}

// Count windows test the same sizes every time: the bisection runs once per size.
const ksCriticalMemo = new Map<string, number>();

function bisectKsCritical(n1: number, n2: number, alpha: number): number {
  const approx = Math.sqrt((-Math.log(alpha / 2) / 2) * ((n1 + n2) / (n1 * n2)));
  let lo = approx / 2;
  let hi = Math.min(1, approx * 2);
  if (ksTwoSamplePValue(lo, n1, n2) < alpha) lo = 0;
  if (ksTwoSamplePValue(hi, n1, n2) >= alpha) hi = 1;
  while (hi - lo > 1e-6 * hi) {
    const mid = (lo + hi) / 2;
    if (ksTwoSamplePValue(mid, n1, n2) < alpha) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Two-sample Kolmogorov–Smirnov on raw samples, p-value as scipy.stats.ks_2samp(method='auto'). */
export function kolmogorovSmirnov(
  reference: readonly number[],
  window: readonly number[],
  rule: PValueRule = DEFAULT_P_RULE,
): Outcome {
  if (window.length === 0) return insufficient("ks", 0, "empty window");
  if (reference.length === 0) return insufficient("ks", window.length, "empty reference");
  const d = ksStatistic(reference, window);
  const p = ksTwoSamplePValue(d, reference.length, window.length);
  return pTest("ks", window.length, d, p, ksCritical(reference.length, window.length, rule.alpha), rule);
}

export interface HistogramComparison {
  /** Counts per reference bin (the manifest's histogram). */
  readonly reference: readonly number[];
  /** The window's counts in the same bins (drift/window.ts bins values as training/reference.py does). */
  readonly window: readonly number[];
}

/**
 * KS against a histogram reference. The reference holds counts per bin, not values, so the window
 * is binned with the same edges and the two binned samples are compared: D is taken at the bin
 * edges only, exactly what scipy.stats.ks_2samp gives on the two samples of bin indices. D on
 * grouped data can only be smaller than on the raw values, so the continuous-case p-value is
 * conservative here: a binned KS alarms less often than α on a stable stream, never more.
 */
export function kolmogorovSmirnovBinned(histograms: HistogramComparison, rule: PValueRule = DEFAULT_P_RULE): Outcome {
  const n1 = sum(histograms.reference);
  const n2 = sum(histograms.window);
  if (n2 === 0) return insufficient("ks", 0, "empty window");
  if (n1 === 0) return insufficient("ks", n2, "empty reference");
  let c1 = 0;
  let c2 = 0;
  let d = 0;
  for (let b = 0; b < histograms.reference.length; b++) {
    c1 += histograms.reference[b]!;
    c2 += histograms.window[b] ?? 0;
    d = Math.max(d, Math.abs(c1 / n1 - c2 / n2));
  }
  return pTest("ks", n2, d, ksTwoSamplePValue(d, n1, n2), ksCritical(n1, n2, rule.alpha), rule);
}

/** Wasserstein-1 between weighted samples: ∫|F_u − F_v| dx (scipy.stats.wasserstein_distance). */
export function wasserstein(
  uValues: readonly number[],
  vValues: readonly number[],
  uWeights?: readonly number[],
  vWeights?: readonly number[],
): number {
  const points = [
    ...uValues.map((x, i) => ({ x, u: uWeights ? uWeights[i]! : 1, v: 0 })),
    ...vValues.map((x, i) => ({ x, u: 0, v: vWeights ? vWeights[i]! : 1 })),
  ].sort((a, b) => a.x - b.x);
  const uTotal = sum(points.map((p) => p.u));
  const vTotal = sum(points.map((p) => p.v));
  let fu = 0;
  let fv = 0;
  let area = 0;
  for (let i = 0; i < points.length - 1; i++) {
    fu += points[i]!.u;
    fv += points[i]!.v;
    area += Math.abs(fu / uTotal - fv / vTotal) * (points[i + 1]!.x - points[i]!.x);
  }
  return area;
}

/** Evidently divides W₁ by the reference's std (floored at 0.001) so 0.1 means a tenth of its spread. */
export const WASSERSTEIN_STD_FLOOR = 0.001;

function weightedStd(values: readonly number[], weights?: readonly number[]): number {
  const w = weights ?? values.map(() => 1);
  const total = sum(w);
  let mean = 0;
  for (let i = 0; i < values.length; i++) mean += values[i]! * w[i]!;
  mean /= total;
  let variance = 0;
  for (let i = 0; i < values.length; i++) variance += w[i]! * (values[i]! - mean) ** 2;
  return Math.sqrt(variance / total);
}

/** Normalised Wasserstein-1 of two raw samples (Evidently's wasserstein_distance_norm). */
export function wassersteinNormed(
  reference: readonly number[],
  window: readonly number[],
  rule: DistanceRule = DEFAULT_DISTANCE_RULE,
): Outcome {
  if (window.length === 0) return insufficient("wasserstein", 0, "empty window");
  if (reference.length === 0) return insufficient("wasserstein", window.length, "empty reference");
  const norm = Math.max(weightedStd(reference), WASSERSTEIN_STD_FLOOR);
  return distance("wasserstein", window.length, wasserstein(reference, window) / norm, rule);
}

/**
 * Normalised Wasserstein-1 against a histogram reference: both sides as masses at the bins'
 * representative values (drift/window.ts binRepresentatives), the std the histogram's own.
 */
export function wassersteinBinned(
  histograms: HistogramComparison,
  representatives: readonly number[],
  rule: DistanceRule = DEFAULT_DISTANCE_RULE,
): Outcome {
  const n = sum(histograms.window);
  if (n === 0) return insufficient("wasserstein", 0, "empty window");
  if (sum(histograms.reference) === 0) return insufficient("wasserstein", n, "empty reference");
  const window = representatives.map((_, b) => histograms.window[b] ?? 0);
  const norm = Math.max(weightedStd(representatives, histograms.reference), WASSERSTEIN_STD_FLOOR);
  return distance(
    "wasserstein",
    n,
    wasserstein(representatives, representatives, histograms.reference, window) / norm,
    rule,
  );
}

// ---------------------------------------------------------------- summaries

/** Evidently switches from tests to distances above this many rows: p-values of big windows flag shifts too small to matter. */
export const EVIDENTLY_TEST_MAX_ROWS = 1000;

export interface ScalarReference {
  readonly mean: number;
  readonly std: number;
}

/**
 * Shift of a scalar's mean (e.g. `active_features`: fewer known n-grams means more out-of-
 * vocabulary text) against a reference that keeps only mean, std and quantiles: value is the
 * standardised difference |x̄ − μ| / σ. Up to 1,000 rows it is a two-sided z-test (p < α; the
 * threshold reported is z_{α/2}/√n); above, the effect itself must exceed the distance rule, as
 * Evidently's normalised Wasserstein does (W₁/σ ≥ |x̄ − μ|/σ, so the two agree on the scale).
 */
export function meanShift(
  reference: ScalarReference,
  window: { readonly count: number; readonly sum: number },
  rules: { readonly test?: PValueRule; readonly distance?: DistanceRule } = {},
): Outcome {
  if (window.count === 0) return insufficient("mean_shift", 0, "empty window");
  const sd = Math.max(reference.std, Number.MIN_VALUE);
  const effect = Math.abs(window.sum / window.count - reference.mean) / sd;
  if (window.count > EVIDENTLY_TEST_MAX_ROWS) {
    return distance("mean_shift", window.count, effect, rules.distance ?? DEFAULT_DISTANCE_RULE);
  }
  const rule = rules.test ?? DEFAULT_P_RULE;
  const p = 2 * normalSf(effect * Math.sqrt(window.count));
  return pTest("mean_shift", window.count, effect, p, normalQuantile(rule.alpha / 2) / Math.sqrt(window.count), rule);
}

/** z with P(Z > z) = q (bisection on normalSf; only thresholds need it). */
function normalQuantile(q: number): number {
  let lo = -40;
  let hi = 40;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (normalSf(mid) > q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export interface VectorReference {
  readonly mean: readonly number[];
  /** Per-dimension std of the reference vectors, when the manifest has it. */
  readonly std?: readonly number[];
}

/** Cosine distance of the window mean to the reference mean above which, without a std, a window drifts. */
export const EMBEDDING_DISTANCE_WITHOUT_STD = 0.05;

/**
 * Cosine distance between the window's mean embedding and the reference's. With the reference's
 * per-dimension std the distance gets a p-value: under no drift the window mean is μ + e with
 * e ~ N(0, diag(σ²)/n), and the distance ≈ ‖e⊥‖² / (2‖μ‖²); ‖e‖² is approximated by c·χ²(ν)/n
 * (Satterthwaite: c = Σσ⁴/Σσ², ν = (Σσ²)²/Σσ⁴), the same mean and variance. Windows up to 1,000
 * rows alarm at p < α; larger ones at the distance a 1,000-row window reaches with p = α, as
 * Evidently stops trusting p-values there (any real difference gets tiny p with enough rows).
 * Without a std the distance alone is compared with EMBEDDING_DISTANCE_WITHOUT_STD.
 */
export function embeddingMeanShift(
  reference: VectorReference,
  window: { readonly count: number; readonly sum: readonly number[] },
  rule: PValueRule = DEFAULT_P_RULE,
): Outcome {
  if (window.count === 0) return insufficient("embedding_mean_shift", 0, "empty window");
  if (window.sum.length !== reference.mean.length) {
    throw new Error(`embedding of ${window.sum.length} dimensions against a reference of ${reference.mean.length}`);
  }
  let dot = 0;
  let windowNorm = 0;
  let referenceNorm = 0;
  for (let i = 0; i < reference.mean.length; i++) {
    const m = window.sum[i]! / window.count;
    dot += m * reference.mean[i]!;
    windowNorm += m * m;
    referenceNorm += reference.mean[i]! ** 2;
  }
  if (windowNorm === 0 || referenceNorm === 0) {
    return insufficient("embedding_mean_shift", window.count, "a zero mean vector has no direction");
  }
  const cosineDistance = 1 - dot / Math.sqrt(windowNorm * referenceNorm);
  if (!reference.std) {
    const fixed = { threshold: EMBEDDING_DISTANCE_WITHOUT_STD, clear: EMBEDDING_DISTANCE_WITHOUT_STD / 2 };
    return distance("embedding_mean_shift", window.count, cosineDistance, fixed);
  }
  const s2 = sum(reference.std.map((s) => s * s));
  const s4 = sum(reference.std.map((s) => s ** 4));
  const scale = s4 / s2;
  const dof = (s2 * s2) / s4;
  // distance ⇄ χ² units for a window of n rows
  const toChi = (d: number, n: number): number => (2 * referenceNorm * d * n) / scale;
  const fromChi = (x: number, n: number): number => (x * scale) / (2 * referenceNorm * n);
  if (window.count > EVIDENTLY_TEST_MAX_ROWS) {
    const threshold = fromChi(chiSquareIsf(rule.alpha, dof), EVIDENTLY_TEST_MAX_ROWS);
    const clear = fromChi(chiSquareIsf(rule.clearAlpha, dof), EVIDENTLY_TEST_MAX_ROWS);
    return distance("embedding_mean_shift", window.count, cosineDistance, { threshold, clear });
  }
  const p = chiSquareSf(toChi(Math.max(cosineDistance, 0), window.count), dof);
  const critical = fromChi(chiSquareIsf(rule.alpha, dof), window.count);
  return pTest("embedding_mean_shift", window.count, cosineDistance, p, critical, rule);
}
