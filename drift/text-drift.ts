import { seededRandom, shuffled } from "./seeded.js";
import type { StatisticResult } from "./statistics.js";

/**
 * Text drift by a domain classifier, as Evidently tests text: a classifier learns to tell the
 * reference texts (the version's training rows) from the current ones (its recent live inputs);
 * if it can, with a cross-validated ROC AUC above the threshold, the texts have moved. Here the
 * texts are sentence embeddings (the production embedder's) and the classifier is an L2
 * logistic regression, so the test sees topics and phrasing, not single words.
 *
 * The threshold is Evidently's 0.55, raised to where chance alone reaches one time in a
 * thousand: 0.5 + 3.09 standard deviations of the AUC under no drift, the larger of the
 * Mann–Whitney figure √((n₁+n₂+1)/(12n₁n₂)) and the spread of the AUCs the same procedure
 * reaches with the two sides' labels shuffled (five fitted folds add their own noise). At 200
 * texts a side that is about 0.59, at 500 about 0.56. An hourly test then alarms by chance about
 * once in six weeks.
 */

export const DOMAIN_CLASSIFIER_THRESHOLD = 0.55;
/** One-sided normal quantile at 0.999. */
const Z_999 = 3.090232306167813;
const FOLDS = 5;
const EPOCHS = 60;
const LEARNING_RATE = 1;
const L2 = 1e-3;

export interface DomainClassifierOptions {
  readonly threshold?: number;
  /** Shuffled-label runs behind the chance bound (0: Mann–Whitney's figure alone). */
  readonly permutations?: number;
  readonly seed?: number;
  /** Called between fits, so a caller on the event loop can yield. */
  readonly pause?: () => Promise<void>;
}

/** ROC AUC of scores for the positive class (Mann–Whitney U, ties counted half). */
export function rocAuc(scores: readonly number[], labels: readonly number[]): number {
  const order = scores.map((s, i) => [s, labels[i]!] as const).sort((a, b) => a[0] - b[0]);
  const positives = labels.filter((l) => l === 1).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  let rankSum = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j < order.length && order[j]![0] === order[i]![0]) j++;
    const rank = (i + j + 1) / 2; // 1-based mean rank of the tie group
    for (let k = i; k < j; k++) if (order[k]![1] === 1) rankSum += rank;
    i = j;
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** L2-regularised logistic regression by full-batch gradient descent (the rows are unit embeddings: no scaling needed). */
function fit(rows: readonly Float32Array[], labels: readonly number[]): { w: Float64Array; b: number } {
  const d = rows[0]!.length;
  const w = new Float64Array(d);
  let b = 0;
  const gradient = new Float64Array(d);
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    gradient.fill(0);
    let gb = 0;
    for (let r = 0; r < rows.length; r++) {
      const x = rows[r]!;
      let z = b;
      for (let k = 0; k < d; k++) z += w[k]! * x[k]!;
      const error = 1 / (1 + Math.exp(-z)) - labels[r]!;
      for (let k = 0; k < d; k++) gradient[k]! += error * x[k]!;
      gb += error;
    }
    for (let k = 0; k < d; k++) w[k]! -= LEARNING_RATE * (gradient[k]! / rows.length + L2 * w[k]!);
    b -= (LEARNING_RATE * gb) / rows.length;
  }
  return { w, b };
}

function score(model: { w: Float64Array; b: number }, x: Float32Array): number {
  let z = model.b;
  for (let k = 0; k < x.length; k++) z += model.w[k]! * x[k]!;
  return z;
}

/** Out-of-fold ROC AUC over stratified folds. */
async function crossValidatedAuc(rows: readonly Float32Array[], labels: readonly number[], random: () => number, pause?: () => Promise<void>): Promise<number> {
  const fold = new Array<number>(rows.length);
  for (const cls of [0, 1]) {
    const members = shuffled(
      labels.flatMap((l, i) => (l === cls ? [i] : [])),
      random,
    );
    members.forEach((row, i) => (fold[row] = i % FOLDS));
  }
  const scores = new Array<number>(rows.length);
  for (let f = 0; f < FOLDS; f++) {
    const train = rows.flatMap((_, i) => (fold[i] === f ? [] : [i]));
    const model = fit(
      train.map((i) => rows[i]!),
      train.map((i) => labels[i]!),
    );
    rows.forEach((x, i) => {
      if (fold[i] === f) scores[i] = score(model, x);
    });
    await pause?.();
  }
  return rocAuc(scores, labels);
}

/** Root mean square distance from chance (0.5) of the shuffled-label AUCs. */
function spread(aucs: readonly number[]): number {
  return aucs.length === 0 ? 0 : Math.sqrt(aucs.reduce((s, a) => s + (a - 0.5) ** 2, 0) / aucs.length);
}

/** The test on one pair of samples: `value` is the AUC, drift when it exceeds `threshold`. */
export async function domainClassifierTest(
  reference: readonly Float32Array[],
  current: readonly Float32Array[],
  options: DomainClassifierOptions = {},
): Promise<StatisticResult> {
  if (reference.length < FOLDS || current.length < FOLDS) throw new Error(`the domain classifier needs at least ${FOLDS} texts a side`);
  const random = seededRandom(options.seed ?? 0);
  const rows = [...reference, ...current];
  const labels = [...reference.map(() => 0), ...current.map(() => 1)];
  const auc = await crossValidatedAuc(rows, labels, random, options.pause);
  const chance: number[] = [];
  for (let p = 0; p < (options.permutations ?? 5); p++) chance.push(await crossValidatedAuc(rows, shuffled(labels, random), random, options.pause));
  const [n1, n2] = [reference.length, current.length];
  const mannWhitneySd = Math.sqrt((n1 + n2 + 1) / (12 * n1 * n2));
  const threshold = Math.max(options.threshold ?? DOMAIN_CLASSIFIER_THRESHOLD, 0.5 + Z_999 * Math.max(mannWhitneySd, spread(chance)));
  // Settled: halfway back from the threshold to chance (0.5).
  const clear = (0.5 + threshold) / 2;
  return {
    kind: "tested",
    statistic: "domain_classifier_auc",
    sampleSize: current.length,
    value: auc,
    pValue: null,
    threshold,
    drifted: auc > threshold,
    settled: auc <= clear,
    rule: { threshold, clear },
  };
}
