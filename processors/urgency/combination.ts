import { readFileSync } from "node:fs";
import { z } from "zod";
import {
  UrgencyLevelValues,
  type LabelScore,
  type UrgencyDriver,
  type UrgencyLevel,
} from "../../schemas/types.generated.js";
import { URGENCY_SIGNALS, type UrgencySignal } from "./signals.js";

/**
 * Urgency as agents judge it: a proportional-odds (ordinal logistic) combination of the urgency
 * model's expected level (trained on ticket priorities, a noisy label), the explicit signals, the
 * intent's group and the sentiment. score = Σ weight × feature; P(level > k) = σ(score − θ_k).
 * The few weights and the three thresholds are fitted in Python (training/urgency.py) on the
 * realistic set's agent-judged labels and exported as ./combination.json; only the figures of
 * its cross-validation folds are reported (models/eval/realistic.ts).
 */

/** Intent groups by what the labelling rules (training/datasets/realistic/LABELLING.md) say an agent must do; any other intent is a question. */
export const INTENT_GROUPS: Readonly<Record<string, "time_sensitive" | "action">> = {
  // Money or access blocked, or a change that must land before dispatch.
  payment_issue: "time_sensitive",
  cancel_order: "time_sensitive",
  change_order: "time_sensitive",
  change_shipping_address: "time_sensitive",
  recover_password: "time_sensitive",
  track_refund: "time_sensitive",
  // A real problem needing an agent's action, usually without a clock.
  track_order: "action",
  get_refund: "action",
  complaint: "action",
  contact_human_agent: "action",
  registration_problems: "action",
  check_invoice: "action",
  get_invoice: "action",
  delete_account: "action",
  place_order: "action",
};

/**
 * Signals the combination does not weigh. `vip`: the labelling rules say a tier alone does not
 * raise urgency (route's tier rules raise the priority score instead), and the set's five VIP rows,
 * most of them hotel groups with a deadline, would fit it a weight that made every VIP critical.
 */
const UNWEIGHED: ReadonlySet<UrgencySignal> = new Set(["vip"]);
const WEIGHED_SIGNALS = URGENCY_SIGNALS.filter((s) => !UNWEIGHED.has(s));

/** Every input of the combination, in the order of the weights file. */
export const URGENCY_FEATURES = [
  "model",
  ...WEIGHED_SIGNALS.map((s) => `signal:${s}` as const),
  "intent:time_sensitive",
  "intent:action",
  "intent:out_of_scope",
  "sentiment:negative",
  "sentiment:positive",
] as const;
export type UrgencyFeature = (typeof URGENCY_FEATURES)[number];

const LEVELS: readonly UrgencyLevel[] = UrgencyLevelValues;
const HIGH = LEVELS.indexOf("high");

/** What the combination reads; intent and sentiment are absent before route joins them. */
export interface UrgencyEvidence {
  /** The urgency model's distribution (its labels must be urgency levels). */
  readonly model: readonly LabelScore[];
  readonly signals: readonly UrgencySignal[];
  readonly intent?: { readonly label: string; readonly outOfScope: boolean };
  readonly sentiment?: string;
}

/** The inputs of one inquiry, 0 where absent. */
export function urgencyFeatures(evidence: UrgencyEvidence): Record<UrgencyFeature, number> {
  const features = Object.fromEntries(URGENCY_FEATURES.map((f) => [f, 0])) as Record<UrgencyFeature, number>;
  features.model = expectedLevel(evidence.model);
  for (const signal of evidence.signals) if (!UNWEIGHED.has(signal)) features[`signal:${signal}` as UrgencyFeature] = 1;
  if (evidence.intent?.outOfScope) features["intent:out_of_scope"] = 1;
  else if (evidence.intent) {
    const group = INTENT_GROUPS[evidence.intent.label.toLowerCase()];
    if (group) features[`intent:${group}`] = 1;
  }
  if (evidence.sentiment === "negative") features["sentiment:negative"] = 1;
  if (evidence.sentiment === "positive") features["sentiment:positive"] = 1;
  return features;
}

/** The model's expected level on the 0 (low) … 3 (critical) scale. */
function expectedLevel(distribution: readonly LabelScore[]): number {
  let total = 0;
  let mass = 0;
  for (const { label, probability } of distribution) {
    const index = LEVELS.indexOf(label as UrgencyLevel);
    if (index < 0) throw new Error(`the urgency model predicts "${label}", not one of ${LEVELS.join(", ")}`);
    total += index * probability;
    mass += probability;
  }
  if (mass <= 0) throw new Error("the urgency model's distribution is empty");
  return total / mass;
}

export interface CombinationWeights {
  readonly weights: Readonly<Record<UrgencyFeature, number>>;
  /** θ_low|medium, θ_medium|high, θ_high|critical, increasing. */
  readonly thresholds: readonly [number, number, number];
}

export interface UrgencyDecision {
  readonly level: UrgencyLevel;
  /** Probability of `level`. */
  readonly confidence: number;
  /** Probability of each level, in UrgencyLevelValues order. */
  readonly probabilities: readonly number[];
  /** Probability that an agent must act today (high or critical): what the review flag looks at. */
  readonly actToday: number;
  /** Inputs that moved the score by at least DRIVER_MIN, largest first. */
  readonly drivers: readonly UrgencyDriver[];
}

/** A driver smaller than this (log-odds) is noise, not a reason. */
const DRIVER_MIN = 0.05;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export function decideUrgency(evidence: UrgencyEvidence, combination: CombinationWeights): UrgencyDecision {
  const features = urgencyFeatures(evidence);
  const contributions = URGENCY_FEATURES.map((name) => ({ name, weight: combination.weights[name] * features[name] }));
  const score = contributions.reduce((sum, c) => sum + c.weight, 0);
  const above = combination.thresholds.map((theta) => sigmoid(score - theta));
  const probabilities = LEVELS.map((_, k) => (k === 0 ? 1 : above[k - 1]!) - (k === LEVELS.length - 1 ? 0 : above[k]!));
  let best = 0;
  for (let k = 1; k < probabilities.length; k++) if (probabilities[k]! > probabilities[best]!) best = k;
  const drivers = contributions
    .filter((c) => Math.abs(c.weight) >= DRIVER_MIN)
    .map((c) => ({ name: c.name === "model" ? `model:${modelLevel(evidence.model)}` : c.name, weight: round(c.weight) }))
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight) || a.name.localeCompare(b.name));
  return {
    level: LEVELS[best]!,
    confidence: probabilities[best]!,
    probabilities,
    actToday: above[HIGH - 1]!,
    drivers,
  };
}

function modelLevel(distribution: readonly LabelScore[]): string {
  return [...distribution].sort((a, b) => b.probability - a.probability)[0]?.label ?? "unknown";
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** The weights file as training/urgency.py writes it. */
const WeightsFile = z.object({
  features: z.array(z.string()),
  weights: z.array(z.number()),
  thresholds: z.tuple([z.number(), z.number(), z.number()]),
  folds: z.object({
    k: z.number().int().min(2),
    rule: z.string(),
    fits: z.array(z.object({ weights: z.array(z.number()), thresholds: z.tuple([z.number(), z.number(), z.number()]) })),
  }),
  fitted_on: z.record(z.string(), z.unknown()),
});

export interface CombinationFile extends CombinationWeights {
  /** The weights fitted without fold i (for its rows' out-of-fold figures). */
  readonly folds: readonly CombinationWeights[];
  readonly k: number;
  readonly foldRule: string;
  readonly fittedOn: Readonly<Record<string, unknown>>;
}

export const COMBINATION_FILE = new URL("./combination.json", import.meta.url);

function toWeights(features: readonly string[], weights: readonly number[], thresholds: readonly [number, number, number], where: string): CombinationWeights {
  const missing = URGENCY_FEATURES.filter((f) => !features.includes(f));
  const unknown = features.filter((f) => !(URGENCY_FEATURES as readonly string[]).includes(f));
  if (missing.length > 0 || unknown.length > 0 || weights.length !== features.length)
    throw new Error(
      `${where}: the urgency weights do not match the combination's inputs (missing ${missing.join(", ") || "none"}, unknown ${unknown.join(", ") || "none"}, ${weights.length} weights for ${features.length} features): refit with \`python -m training urgency-fit\``,
    );
  if (!(thresholds[0] < thresholds[1] && thresholds[1] < thresholds[2])) throw new Error(`${where}: the urgency thresholds are not increasing`);
  return {
    weights: Object.fromEntries(features.map((f, i) => [f, weights[i]!])) as Record<UrgencyFeature, number>,
    thresholds,
  };
}

/** Reads and checks the weights file (default: the one next to this module). */
export function loadCombination(file: URL | string = COMBINATION_FILE): CombinationFile {
  const where = String(file);
  const parsed = WeightsFile.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!parsed.success) throw new Error(`${where}: not an urgency weights file: ${parsed.error.message}`);
  const { features, weights, thresholds, folds, fitted_on } = parsed.data;
  if (folds.fits.length !== folds.k) throw new Error(`${where}: ${folds.fits.length} fold fits for k = ${folds.k}`);
  return {
    ...toWeights(features, weights, thresholds, where),
    folds: folds.fits.map((fit, i) => toWeights(features, fit.weights, fit.thresholds, `${where} fold ${i}`)),
    k: folds.k,
    foldRule: folds.rule,
    fittedOn: fitted_on,
  };
}
