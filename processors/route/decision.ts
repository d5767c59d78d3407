import type {
  InquiryClassified,
  InquiryCleaned,
  InquirySentiment,
  InquiryUrgency,
  Sentiment,
  UrgencyDriver,
  UrgencyLevel,
} from "../../schemas/types.generated.js";
import { decideUrgency, loadCombination, type CombinationWeights, type UrgencyDecision } from "../urgency/combination.js";
import { URGENCY_SIGNALS, type UrgencySignal } from "../urgency/signals.js";
import type { Prediction } from "./join.js";
import type { Department, EscalationCondition, RoutingRules } from "./rules.js";

/** An inquiry's joined parts: the cleaned inquiry and the predictions that arrived before the trigger. */
export interface JoinedInquiry {
  readonly cleaned: InquiryCleaned;
  readonly classified: InquiryClassified | undefined;
  readonly sentiment: InquirySentiment | undefined;
  readonly urgency: InquiryUrgency | undefined;
  /** Predictions that had not arrived when the join timed out. */
  readonly missing: readonly Prediction[];
}

export interface RoutingDecision {
  readonly department: string;
  readonly queue: string;
  readonly priority_score: number;
  readonly escalated: boolean;
  readonly escalation_reason: string | null;
  readonly human_review: boolean;
  readonly review_reasons: readonly string[];
  /** The urgency routed on: the combination with intent and sentiment joined (null: no urgency part). */
  readonly urgency: UrgencyLevel | null;
  readonly urgency_drivers: readonly UrgencyDriver[];
}

let servedCombination: CombinationWeights | undefined;

/**
 * The urgency an agent would give the joined inquiry: urgency's model distribution and signals
 * combined with the intent's group and the sentiment (processors/urgency/combination.ts), which
 * only route has together. A part recorded before the model distribution was (no
 * `probabilities`) counts its own level as the model's.
 */
export function joinedUrgency(
  { classified, sentiment, urgency }: Pick<JoinedInquiry, "classified" | "sentiment" | "urgency">,
  combination: CombinationWeights = (servedCombination ??= loadCombination()),
): UrgencyDecision | undefined {
  if (!urgency) return undefined;
  const known = new Set<string>(URGENCY_SIGNALS);
  return decideUrgency(
    {
      model: urgency.probabilities?.length ? urgency.probabilities : [{ label: urgency.level, probability: 1 }],
      signals: urgency.signals.filter((s): s is UrgencySignal => known.has(s)),
      ...(classified && { intent: { label: classified.intent, outOfScope: classified.out_of_scope } }),
      ...(sentiment && { sentiment: sentiment.label }),
    },
    combination,
  );
}

/**
 * Routes a joined inquiry by the rules: department from the intent or category (the default one
 * when unknown or out of scope), escalation by the first matching rule, review reasons, the queue
 * (escalation queue, tier queue, language queue, department queue: the first that applies) and
 * the priority score of the rules' documented formula.
 */
export function decideRoute(
  joined: JoinedInquiry,
  rules: RoutingRules,
  combination?: CombinationWeights,
): RoutingDecision {
  const { cleaned, classified, sentiment } = joined;
  const urgency = joinedUrgency(joined, combination);
  const tierName = cleaned.envelope.customer.tier?.toLowerCase();
  const tier = tierName === undefined ? undefined : rules.tiers.get(tierName);
  const outOfScope = classified?.out_of_scope === true;

  const department = departmentOf(classified, outOfScope, rules);
  const escalation = rules.escalation.find((rule) => matches(rule.when, joined, urgency?.level, tierName));
  const unsupportedLanguage = !rules.languages.supported.has(cleaned.language);
  const reviewReasons = reviewReasonsOf(joined, urgency, outOfScope, unsupportedLanguage, rules);

  const queue =
    (escalation && department.escalationQueue) ||
    tier?.queue ||
    (unsupportedLanguage ? (rules.languages.queues.get(cleaned.language) ?? rules.languages.otherQueue) : undefined) ||
    department.queue;

  const weights = rules.priority;
  const score =
    weights.base +
    weights.urgency[urgency?.level ?? weights.unknown_urgency] +
    weights.sentiment[sentiment?.label ?? weights.unknown_sentiment] +
    (tier?.priorityBoost ?? 0) +
    // Signals that made it more urgent; `no_rush` and a zero-weight `vip` are no reason to hurry.
    weights.per_signal * (urgency?.drivers.filter((d) => d.name.startsWith("signal:") && d.weight > 0).length ?? 0) +
    (escalation ? weights.escalation : 0);

  return {
    department: department.name,
    queue,
    priority_score: Math.min(100, Math.max(0, score)),
    escalated: escalation !== undefined,
    escalation_reason: escalation?.reason ?? null,
    human_review: reviewReasons.length > 0,
    review_reasons: reviewReasons,
    urgency: urgency?.level ?? null,
    urgency_drivers: urgency?.drivers ?? [],
  };
}

function departmentOf(classified: InquiryClassified | undefined, outOfScope: boolean, rules: RoutingRules): Department {
  if (!classified || outOfScope) return rules.defaultDepartment;
  return (
    rules.intents.get(classified.intent.toLowerCase()) ??
    rules.categories.get(classified.category.toLowerCase()) ??
    rules.defaultDepartment
  );
}

/** Every listed condition holds; a condition on a prediction that did not arrive does not. */
function matches(
  when: EscalationCondition,
  { classified, sentiment, urgency }: JoinedInquiry,
  level: UrgencyLevel | undefined,
  tier: string | undefined,
): boolean {
  const holds = <T extends string>(allowed: ReadonlySet<T> | undefined, value: T | undefined) =>
    allowed === undefined || (value !== undefined && allowed.has(value));
  return (
    holds<UrgencyLevel>(when.urgency, level) &&
    holds<Sentiment>(when.sentiment, sentiment?.label) &&
    holds(when.tier, tier) &&
    holds(when.intent, classified?.intent.toLowerCase()) &&
    holds(when.category, classified?.category.toLowerCase()) &&
    (when.signal === undefined || (urgency?.signals ?? []).some((s) => when.signal!.has(s.toLowerCase())))
  );
}

/** Machine-readable reasons (`kind` or `kind:detail`), in a fixed order. */
function reviewReasonsOf(
  joined: JoinedInquiry,
  urgency: UrgencyDecision | undefined,
  outOfScope: boolean,
  unsupportedLanguage: boolean,
  rules: RoutingRules,
): string[] {
  const { classified, sentiment, missing, cleaned } = joined;
  const { minConfidence } = rules.review;
  const reasons = missing.map((part) => `missing:${part}`);
  if (outOfScope && rules.review.outOfScope) reasons.push("out_of_scope");
  if (classified && !outOfScope && classified.confidence < minConfidence.intent) reasons.push("low_confidence:intent");
  if (sentiment && sentiment.score < minConfidence.sentiment) reasons.push("low_confidence:sentiment");
  // Urgency is reviewed where the stake is unclear: whether an agent must act today (high or
  // critical) or not. Doubt between low and medium, or between high and critical (escalated
  // or prioritised either way), costs little and needs no person.
  if (urgency && Math.max(urgency.actToday, 1 - urgency.actToday) < minConfidence.urgency)
    reasons.push("low_confidence:urgency");
  if (classified && rules.review.intents.has(classified.intent.toLowerCase()))
    reasons.push(`intent:${classified.intent}`);
  if (unsupportedLanguage && rules.languages.reviewUnsupported && !classifiedInLanguage(cleaned.language, classified, rules))
    reasons.push(`unsupported_language:${cleaned.language}`);
  return reasons;
}

/**
 * Whether a model classified the inquiry in its own language: its language is one the rules'
 * `classified_in_language` lists and the intent came from one of its models (the multilingual
 * ones), not from the English models that classify every language until those are served.
 */
function classifiedInLanguage(language: string, classified: InquiryClassified | undefined, rules: RoutingRules): boolean {
  const { languages, models } = rules.languages.classifiedInLanguage;
  if (!classified || !languages.has(language)) return false;
  return models.has(classified.model.split("@")[0]!);
}
