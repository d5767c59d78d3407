/**
 * Scores on the realistic set (./realistic-set.ts): each row goes through `clean` as the
 * pipeline runs it (processors/clean.ts cleanInquiry: quoted history, signature and personal data
 * removed, language and entities), then every registered version of the models the set labels
 * predicts on the model input serving builds (processors/feedback.ts modelInput). What the
 * pipeline adds to the models comes from the processors' own functions: the urgency signals
 * (processors/urgency/signals.ts; no repeat-contact history here, every row is a first contact;
 * VIP from the row's tier), out of scope at the intent version's operating point or classify's
 * fallback threshold, and department, urgency, queue and human review from route's decideRoute
 * with the routing rules. Intent and category of a row not in English come from the multilingual
 * pair when both are in production, as classify picks them (processors/classify.ts classifiersFor).
 *
 * Urgency's combination (processors/urgency/combination.json) is fitted on this set's labels, so
 * its figures here are out of fold only: the set is cut into k folds by row id (realisticFold) and
 * each row is scored with the weights fitted without its fold (training/urgency.py).
 */
import type {
  InquiryClassified,
  InquiryCleaned,
  InquirySentiment,
  InquiryUrgency,
} from "../../schemas/types.generated.js";
import { classifiersFor, MULTILINGUAL_MODELS } from "../../processors/classify.js";
import { cleanInquiry } from "../../processors/clean.js";
import { modelInput } from "../../processors/feedback.js";
import { decideRoute, type RoutingDecision } from "../../processors/route/decision.js";
import type { RoutingRules } from "../../processors/route/rules.js";
import type { CombinationFile, CombinationWeights } from "../../processors/urgency/combination.js";
import { URGENCY_FEATURES, urgencyFeatures, type UrgencyEvidence } from "../../processors/urgency/combination.js";
import { allSignals, textSignals, type UrgencySignal } from "../../processors/urgency/signals.js";
import type { InquiryReceived, LabelScore } from "../../schemas/types.generated.js";
import { SAMPLE_INQUIRIES, toInquiry } from "../../cli/samples/index.js";
import { loadLanguageDetector } from "../../text/language.js";
import type { Family } from "../manifest.js";
import { IN_SCOPE_SIMILARITY, isOutOfScope, servedScopePoint, type ScopePoint } from "../scope.js";
import type { RegisteredVersion } from "../registry.js";
import { classificationReport, type ClassificationReport } from "./metrics.js";
import { receivedInquiry, type RealisticRow, type RealisticSet } from "./realistic-set.js";

/** The models whose labels the set carries, and each row's true label for them (undefined: not scored). */
export const REALISTIC_TRUTH: Readonly<Record<string, (row: RealisticRow, outOfScope: string) => string | undefined>> =
  {
    intent: (row, oos) => (row.intent === oos ? undefined : row.intent),
    category: (row) => row.category ?? undefined,
    sentiment: (row) => row.sentiment,
    urgency: (row) => row.urgency,
    // classify's models for inquiries not in English (processors/classify.ts MULTILINGUAL_MODELS).
    "intent-multilingual": (row, oos) => (row.intent === oos ? undefined : row.intent),
    "category-multilingual": (row) => row.category ?? undefined,
  };

/** Why a registered model is not scored on the set, for the report. */
export const NOT_ON_REALISTIC: Readonly<Record<string, string>> = {
  "intent-clinc150": "CLINC150's 150 intents are not the shop's",
  department:
    "the tickets' queues are not the routing rules' departments (route derives the department from intent and category)",
};

/** A row through `clean`, with what the models and the urgency signals read. */
export interface PreparedRow {
  readonly row: RealisticRow;
  readonly cleaned: InquiryCleaned;
  readonly input: string;
  readonly signals: readonly UrgencySignal[];
}

/** A demo sample (cli/samples) through `clean`: unlabelled, for the review rate on a normal stream. */
export type PreparedSample = Omit<PreparedRow, "row">;

export interface PreparedSet {
  readonly set: RealisticSet;
  readonly rows: readonly PreparedRow[];
  readonly samples: readonly PreparedSample[];
}

export async function prepareRealistic(set: RealisticSet): Promise<PreparedSet> {
  const languages = await loadLanguageDetector();
  const prepare = (received: InquiryReceived): PreparedSample => {
    const cleaned = cleanInquiry(received, languages, set.receivedAt);
    const input = modelInput(cleaned);
    const signals = allSignals(textSignals(input, cleaned.entities, set.receivedAt), {
      repeatContact: false,
      customer: cleaned.envelope.customer,
    });
    return { cleaned, input, signals };
  };
  const rows = set.rows.map((row) => ({ row, ...prepare(receivedInquiry(row, set.receivedAt)) }));
  const samples = SAMPLE_INQUIRIES.map((sample) => prepare(toInquiry(sample, set.receivedAt)));
  return { set, rows, samples };
}

/** What one version predicted for every row of the set, in order. */
export interface RowPrediction {
  readonly label: string;
  readonly confidence: number;
  /** A head's in-scope similarity (models/scope.ts). */
  readonly inScopeSimilarity?: number;
  /** Every label's probability (urgency: the combination reads the whole distribution). */
  readonly distribution?: readonly LabelScore[];
}

/** The pinned cross-validation fold of a realistic row: its id's number modulo k (rs-0007 → 7 mod k). */
export function realisticFold(id: string, k: number): number {
  const n = Number(/^rs-(\d+)$/.exec(id)?.[1]);
  if (!Number.isInteger(n)) throw new Error(`realistic row id "${id}" is not rs-<number>`);
  return n % k;
}

export interface RealisticPredictions {
  readonly model: string;
  readonly family: Family;
  readonly version: string;
  readonly stage: RegisteredVersion["stage"];
  readonly predictions: readonly RowPrediction[];
  /** On the demo samples (PreparedSet.samples), in order; absent in tests that give none. */
  readonly samples?: readonly RowPrediction[];
  /** The intent version's out-of-scope threshold and where it comes from. */
  readonly threshold?: {
    readonly value: number;
    readonly source: "operating point" | "fallback" | "measured point, not served";
    /** What `value` applies to; absent: confidence. */
    readonly statistic?: ScopePoint["statistic"];
    /**
     * classify's fallback threshold on confidence, where it does not use `value`: a point measured,
     * not served; a similarity point for a row not in English (models/scope.ts).
     */
    readonly served?: number;
  };
}

export interface Baseline {
  readonly label: string;
  readonly accuracy: number;
  readonly macroF1: number;
}

export interface OutOfScopeOnRealistic {
  readonly threshold: number;
  readonly source: "operating point" | "fallback" | "measured point, not served";
  readonly statistic: ScopePoint["statistic"];
  /** Out-of-scope rows refused (their score below the threshold; see RealisticPredictions.threshold). */
  readonly recall: number;
  /** Refused rows that are out of scope; NaN when nothing is refused. */
  readonly precision: number;
  /** In-scope rows answered with the right intent (a refusal counts as an error). */
  readonly inScopeAccuracy: number;
  readonly refused: number;
  readonly outOfScope: number;
  /** On the rows labelled English, the point beside classify's fallback on confidence (absent for the fallback itself). */
  readonly english?: EnglishAgainstFallback;
}

/** What a threshold does to the rows labelled English. */
export interface EnglishOutOfScope {
  /** Out-of-scope rows refused, of `outOfScope`. */
  readonly caught: number;
  readonly outOfScope: number;
  /** In-scope rows refused, of `inScope`, and how many of them had the right intent. */
  readonly handedOff: number;
  readonly handedOffRight: number;
  readonly inScope: number;
  /** In-scope rows answered with the right intent. */
  readonly answeredRight: number;
}

export interface EnglishAgainstFallback {
  readonly point: EnglishOutOfScope;
  readonly fallback: EnglishOutOfScope & { readonly threshold: number };
  /** Rows refused at one and not the other, and how many of them are out of scope. */
  readonly onlyAtPoint: { readonly rows: number; readonly outOfScope: number };
  readonly onlyAtFallback: { readonly rows: number; readonly outOfScope: number };
}

export interface RealisticVersionReport {
  readonly model: string;
  readonly family: Family;
  readonly version: string;
  readonly stage: RegisteredVersion["stage"];
  readonly scores: ClassificationReport;
  /** Accuracy on the rows in English and on the others (the models are trained on English, tickets aside). */
  readonly accuracyByLanguage: { readonly english: number; readonly other: number };
  readonly majority: Baseline;
  readonly outOfScope?: OutOfScopeOnRealistic;
  /** Urgency as the pipeline serves it (the combination with production intent and sentiment), out of fold. */
  readonly served?: ClassificationReport;
  /** Intent: department by route with this version's intent (and category, `categoryFrom`). */
  readonly department?: { readonly accuracy: number; readonly categoryFrom: string };
}

export interface RealisticPipelineReport {
  /** The production version of each model the pipeline serves, as model@version (family). */
  readonly versions: readonly string[];
  readonly n: number;
  readonly department: { readonly accuracy: number; readonly majority: Baseline };
  readonly urgency: {
    readonly accuracy: number;
    readonly macroF1: number;
    readonly majority: Baseline;
    /** Out of fold (the combination is fitted on this set): how, in words. */
    readonly calibration: string;
    /** confusion[truth][predicted], levels low … critical. */
    readonly confusion: Readonly<Record<string, Readonly<Record<string, number>>>>;
    /** Rows flagged `low_confidence:urgency`, and the urgency accuracy of the rows it leaves. */
    readonly reviewRate: number;
    readonly unflaggedAccuracy: number;
    /** Rows an agent must act on today (high or critical) that the combination put lower, of all such rows. */
    readonly missedActToday: { readonly missed: number; readonly of: number; readonly flagged: number };
    /** Rows low_confidence:urgency flags whose served level is on the wrong side of "act today". */
    readonly flaggedWrongSide: number;
  };
  /** Rows route flags for human review, and the most frequent reasons. */
  readonly reviewRate: number;
  /** Rows flagged because a model is unsure (low_confidence:*, out_of_scope). */
  readonly modelReviewRate: number;
  readonly reviewReasons: Readonly<Record<string, number>>;
  /** Accuracy of the intents of the rows neither refused nor flagged for review. */
  readonly unflaggedIntentAccuracy: number;
  /** The demo samples (cli/samples, unlabelled) routed with the served weights: review on a normal stream. */
  readonly samples?: StreamReview;
  /** Accuracy of the urgency of the rows not flagged for review (for any reason). */
  readonly unflaggedUrgencyAccuracy: number;
  readonly unflagged: number;
  /** `clean`'s language against the labelled one. */
  readonly languageAccuracy: number;
  /** Per labelled language, with the pair that served each row. */
  readonly byLanguage: Readonly<Record<string, LanguageFigures>>;
  /** The rows labelled in any language but English, together. */
  readonly notEnglish: LanguageFigures;
}

/** One language's rows through the served pipeline. */
export interface LanguageFigures {
  readonly n: number;
  readonly intentAccuracy: number;
  readonly categoryAccuracy: number;
  readonly reviewRate: number;
  readonly unflagged: number;
  readonly unflaggedIntentAccuracy: number;
  readonly unflaggedCategoryAccuracy: number;
  /** The English-trained sentiment, and urgency as served, on the rows not flagged. */
  readonly unflaggedSentimentAccuracy: number;
  readonly unflaggedUrgencyAccuracy: number;
  readonly reviewReasons: Readonly<Record<string, number>>;
}

export interface RealisticReport {
  readonly n: number;
  readonly outOfScope: number;
  readonly notEnglish: number;
  readonly sha256: string;
  readonly versions: readonly RealisticVersionReport[];
  readonly pipeline?: RealisticPipelineReport;
  /** Models registered but not scored here, with the reason. */
  readonly skipped: readonly { readonly model: string; readonly reason: string }[];
}

function baseline(truth: readonly string[]): Baseline {
  const counts = new Map<string, number>();
  for (const label of truth) counts.set(label, (counts.get(label) ?? 0) + 1);
  // Most frequent, ties by name: a stable constant guess.
  const [label] = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]!;
  const report = classificationReport(
    truth,
    truth.map(() => label),
    truth.map(() => 1),
  );
  return { label, accuracy: report.accuracy, macroF1: report.macroF1 };
}

const mean = (values: readonly number[]) =>
  values.length === 0 ? Number.NaN : values.reduce((sum, v) => sum + v, 0) / values.length;

function outOfScopeAt(
  prepared: PreparedSet,
  predictions: readonly RowPrediction[],
  threshold: NonNullable<RealisticPredictions["threshold"]>,
): OutOfScopeOnRealistic {
  const oos = prepared.set.labels.out_of_scope;
  const refused = predictions.map((p, i) => isOutOfScope(p, rowPoint(threshold, prepared.rows[i]!.cleaned.language, "measured")));
  const isOos = prepared.rows.map(({ row }) => row.intent === oos);
  const refusedOos = refused.filter((r, i) => r && isOos[i]).length;
  const refusedCount = refused.filter(Boolean).length;
  return {
    threshold: threshold.value,
    source: threshold.source,
    statistic: threshold.statistic ?? "confidence",
    recall: refusedOos / isOos.filter(Boolean).length,
    precision: refusedCount === 0 ? Number.NaN : refusedOos / refusedCount,
    inScopeAccuracy: mean(
      prepared.rows.flatMap(({ row }, i) =>
        isOos[i] ? [] : [!refused[i] && predictions[i]!.label === row.intent ? 1 : 0],
      ),
    ),
    refused: refusedCount,
    outOfScope: isOos.filter(Boolean).length,
    ...(threshold.source !== "fallback" &&
      threshold.served !== undefined && {
        english: englishAgainstFallback(
          prepared,
          predictions,
          { refused, isOos },
          predictions.map((p) => p.confidence < threshold.served!),
          threshold.served,
        ),
      }),
  };
}

function englishAgainstFallback(
  prepared: PreparedSet,
  predictions: readonly RowPrediction[],
  { refused, isOos }: { refused: readonly boolean[]; isOos: readonly boolean[] },
  refusedAtFallback: readonly boolean[],
  fallback: number,
): EnglishAgainstFallback {
  const english = prepared.rows.flatMap(({ row }, i) => (row.language === "en" ? [i] : []));
  const right = (i: number) => predictions[i]!.label === prepared.rows[i]!.row.intent;
  const at = (refusedRow: readonly boolean[]): EnglishOutOfScope => {
    const inScope = english.filter((i) => !isOos[i]);
    return {
      caught: english.filter((i) => isOos[i] && refusedRow[i]).length,
      outOfScope: english.length - inScope.length,
      handedOff: inScope.filter((i) => refusedRow[i]).length,
      handedOffRight: inScope.filter((i) => refusedRow[i] && right(i)).length,
      inScope: inScope.length,
      answeredRight: inScope.filter((i) => !refusedRow[i] && right(i)).length,
    };
  };
  const only = (a: readonly boolean[], b: readonly boolean[]) => {
    const rows = english.filter((i) => a[i] && !b[i]);
    return { rows: rows.length, outOfScope: rows.filter((i) => isOos[i]).length };
  };
  return {
    point: at(refused),
    fallback: { ...at(refusedAtFallback), threshold: fallback },
    onlyAtPoint: only(refused, refusedAtFallback),
    onlyAtFallback: only(refusedAtFallback, refused),
  };
}

interface Parts {
  readonly intent?: RealisticPredictions | undefined;
  readonly category?: RealisticPredictions | undefined;
  readonly sentiment?: RealisticPredictions | undefined;
  readonly urgency?: RealisticPredictions | undefined;
  /** classify's pair for inquiries not in English, when both are in production. */
  readonly multilingual?: { readonly intent: RealisticPredictions; readonly category: RealisticPredictions } | undefined;
}

interface ClassifierPair {
  readonly intent: RealisticPredictions | undefined;
  readonly category: RealisticPredictions | undefined;
}

/** The intent and category versions that classify a row in `language`, as classify picks them. */
function pairFor(parts: Parts, language: string): ClassifierPair {
  return classifiersFor<ClassifierPair>(language, { intent: parts.intent, category: parts.category }, parts.multilingual ?? null);
}

/**
 * The point deciding a row in `language`: as classify serves the version's, or the version's own
 * measured point even when classify does not serve it (models/scope.ts decides both).
 */
function rowPoint(threshold: NonNullable<RealisticPredictions["threshold"]>, language: string, as: "served" | "measured"): ScopePoint {
  const operating =
    threshold.source === "fallback"
      ? null
      : {
          threshold: threshold.value,
          ...(threshold.statistic === IN_SCOPE_SIMILARITY && { statistic: IN_SCOPE_SIMILARITY }),
          served: as === "measured" || threshold.source === "operating point",
        };
  return servedScopePoint(operating, language, threshold.served ?? threshold.value).point;
}

/** An intent prediction is out of scope at the point classify serves for its version and the row's language. */
function outOfScopeServed(intent: RealisticPredictions, prediction: RowPrediction, language: string): boolean {
  return isOutOfScope({ ...prediction, model: `${intent.model}@${intent.version}` }, rowPoint(intent.threshold!, language, "served"));
}

function distributionOf(prediction: RowPrediction): readonly LabelScore[] {
  return prediction.distribution ?? [{ label: prediction.label, probability: 1 }];
}

/** What urgency's combination reads for row i, from the production predictions (intent out of scope as classify serves it). */
function evidenceOf(prepared: PreparedSet, parts: Parts, i: number, urgency: RealisticPredictions): UrgencyEvidence {
  const served = pairFor(parts, prepared.rows[i]!.cleaned.language).intent;
  const intent = served?.predictions[i];
  const sentiment = parts.sentiment?.predictions[i];
  return {
    model: distributionOf(urgency.predictions[i]!),
    signals: prepared.rows[i]!.signals,
    ...(intent && served.threshold && { intent: { label: intent.label, outOfScope: outOfScopeServed(served, intent, prepared.rows[i]!.cleaned.language) } }),
    ...(sentiment && { sentiment: sentiment.label }),
  };
}

/** One row of the file training/urgency.py fits on: the combination's inputs, the agent's level and the row's fold. */
export interface UrgencyFeatureRow {
  readonly id: string;
  readonly fold: number;
  readonly urgency: string;
  readonly features: Readonly<Record<string, number>>;
}

export interface UrgencyFeatureFile {
  readonly description: string;
  readonly set_sha256: string;
  /** The production versions the inputs come from, as model@version (family). */
  readonly versions: readonly string[];
  readonly features: readonly string[];
  readonly levels: readonly string[];
  readonly folds: { readonly k: number; readonly rule: string };
  readonly rows: readonly UrgencyFeatureRow[];
}

export const URGENCY_FOLDS = 5;

/** The combination's inputs on every row, from the production versions: what `npm run eval -- --urgency-features` writes. */
export function urgencyFeatureFile(prepared: PreparedSet, predicted: readonly RealisticPredictions[]): UrgencyFeatureFile {
  const parts = productionParts(predicted);
  if (!parts.urgency || !parts.intent || !parts.sentiment)
    throw new Error("urgency features need production intent, sentiment and urgency versions on the realistic set");
  const urgency = parts.urgency;
  return {
    description:
      "Urgency combination inputs on the realistic set (models/eval/realistic.ts urgencyFeatureFile); training/urgency.py fits processors/urgency/combination.json on it.",
    set_sha256: prepared.set.sha256,
    versions: versionsOf(parts),
    features: [...URGENCY_FEATURES],
    levels: ["low", "medium", "high", "critical"],
    folds: { k: URGENCY_FOLDS, rule: FOLD_RULE },
    rows: prepared.rows.map(({ row }, i) => ({
      id: row.id,
      fold: realisticFold(row.id, URGENCY_FOLDS),
      urgency: row.urgency,
      features: urgencyFeatures(evidenceOf(prepared, parts, i, urgency)),
    })),
  };
}

const FOLD_RULE = "the number of the row id modulo k (models/eval/realistic.ts realisticFold)";

function productionParts(predicted: readonly RealisticPredictions[]): Parts {
  const production = (model: string) => predicted.find((p) => p.model === model && p.stage === "production");
  const multilingual = { intent: production(MULTILINGUAL_MODELS.intent), category: production(MULTILINGUAL_MODELS.category) };
  return {
    intent: production("intent"),
    category: production("category"),
    sentiment: production("sentiment"),
    urgency: production("urgency"),
    ...(multilingual.intent && multilingual.category && { multilingual: { intent: multilingual.intent, category: multilingual.category } }),
  };
}

function versionsOf({ multilingual, ...parts }: Parts): string[] {
  return [...Object.values(parts), multilingual?.intent, multilingual?.category].flatMap((v: RealisticPredictions | undefined) =>
    v ? [`${v.model}@${v.version} (${v.family})`] : [],
  );
}

/** The routing decision of every row from one prediction per model (a missing model: route's own default). */
function routeAll(
  prepared: PreparedSet,
  rules: RoutingRules,
  parts: Parts,
  combinationOf?: (row: number) => CombinationWeights,
  on: "rows" | "samples" = "rows",
): RoutingDecision[] {
  const of = (p: RealisticPredictions | undefined) => (on === "rows" ? p?.predictions : p?.samples);
  const inquiries: readonly PreparedSample[] = on === "rows" ? prepared.rows : prepared.samples;
  return inquiries.map(({ cleaned, signals }, i) => {
    const id = cleaned.inquiry_id;
    const pair = pairFor(parts, cleaned.language);
    const intent = of(pair.intent)?.[i];
    const category = of(pair.category)?.[i];
    const classified: InquiryClassified | undefined =
      intent && category
        ? {
            inquiry_id: id,
            intent: intent.label,
            category: category.label,
            confidence: intent.confidence,
            out_of_scope: outOfScopeServed(pair.intent!, intent, cleaned.language),
            top_k: [{ label: intent.label, probability: intent.confidence }],
            model: `${pair.intent!.model}@${pair.intent!.version}`,
            classified_at: 0,
          }
        : undefined;
    const sentimentPrediction = of(parts.sentiment)?.[i];
    const sentiment: InquirySentiment | undefined = sentimentPrediction && {
      inquiry_id: id,
      label: sentimentPrediction.label as InquirySentiment["label"],
      score: sentimentPrediction.confidence,
      probabilities: [],
      model: `${parts.sentiment!.model}@${parts.sentiment!.version}`,
      scored_at: 0,
    };
    const urgencyPrediction = of(parts.urgency)?.[i];
    const urgency: InquiryUrgency | undefined = urgencyPrediction && {
      inquiry_id: id,
      // route decides the level from the distribution and the signals; these two are the provisional record's.
      level: urgencyPrediction.label as InquiryUrgency["level"],
      score: urgencyPrediction.confidence,
      signals: [...signals],
      model: `${parts.urgency!.model}@${parts.urgency!.version}`,
      probabilities: distributionOf(urgencyPrediction),
      drivers: [],
      scored_at: 0,
    };
    return decideRoute({ cleaned, classified, sentiment, urgency, missing: [] }, rules, combinationOf?.(i));
  });
}

export interface StreamReview {
  readonly n: number;
  readonly reviewRate: number;
  readonly urgencyReviewRate: number;
  /** Flagged because a model is unsure (low_confidence:*, out_of_scope), not by a routing policy (language, intent list). */
  readonly modelReviewRate: number;
  readonly reviewReasons: Readonly<Record<string, number>>;
  readonly levels: Readonly<Record<string, number>>;
}

/** Reasons that are a model's doubt rather than a routing policy (unsupported language, intents always reviewed). */
const modelDoubt = (reasons: readonly string[]) => reasons.some((r) => r.startsWith("low_confidence:") || r === "out_of_scope");

function reasonCounts(routed: readonly RoutingDecision[]): Record<string, number> {
  const reasons: Record<string, number> = {};
  for (const decision of routed)
    for (const reason of decision.review_reasons) {
      const kind = reason.startsWith("unsupported_language:") ? "unsupported_language" : reason;
      reasons[kind] = (reasons[kind] ?? 0) + 1;
    }
  return Object.fromEntries(Object.entries(reasons).sort((a, b) => b[1] - a[1]));
}

function streamReview(routed: readonly RoutingDecision[]): StreamReview {
  const levels: Record<string, number> = {};
  for (const d of routed) levels[d.urgency ?? "unknown"] = (levels[d.urgency ?? "unknown"] ?? 0) + 1;
  return {
    n: routed.length,
    reviewRate: mean(routed.map((d) => (d.human_review ? 1 : 0))),
    urgencyReviewRate: mean(routed.map((d) => (d.review_reasons.includes("low_confidence:urgency") ? 1 : 0))),
    modelReviewRate: mean(routed.map((d) => (modelDoubt(d.review_reasons) ? 1 : 0))),
    reviewReasons: reasonCounts(routed),
    levels,
  };
}

/**
 * Every version's prediction per realistic row beside the row's truth, for paired comparisons of two
 * versions on the same rows (`python -m training.paired`: gained and lost rows, exact McNemar).
 */
export function realisticPredictionFile(prepared: PreparedSet, predicted: readonly RealisticPredictions[]) {
  const oos = prepared.set.labels.out_of_scope;
  return {
    sha256: prepared.set.sha256,
    versions: predicted.map((p) => {
      const truthOf = REALISTIC_TRUTH[p.model];
      return {
        model: p.model,
        family: p.family,
        version: p.version,
        stage: p.stage,
        rows: prepared.rows.map(({ row }, i) => ({
          id: row.id,
          language: row.language,
          truth: truthOf?.(row, oos) ?? null,
          label: p.predictions[i]!.label,
          confidence: p.predictions[i]!.confidence,
          in_scope_similarity: p.predictions[i]!.inScopeSimilarity ?? null,
        })),
      };
    }),
  };
}

/** Per version, the figures of its model's labels; then the production pipeline as a whole. */
export function realisticReport(
  prepared: PreparedSet,
  predicted: readonly RealisticPredictions[],
  registeredModels: readonly string[],
  rules: RoutingRules,
  combination: CombinationFile,
): RealisticReport {
  const { set, rows } = prepared;
  const oos = set.labels.out_of_scope;
  const versions: RealisticVersionReport[] = [];
  const production = (model: string) => predicted.find((p) => p.model === model && p.stage === "production");
  // Each row scored with the weights fitted without its fold.
  const outOfFold = (i: number) => combination.folds[realisticFold(rows[i]!.row.id, combination.k)]!;
  const urgencyTruth = rows.map(({ row }) => row.urgency);

  for (const p of predicted) {
    const truthOf = REALISTIC_TRUTH[p.model];
    if (!truthOf) continue;
    const scored = rows.flatMap(({ row }, i) => {
      const truth = truthOf(row, oos);
      return truth === undefined ? [] : [{ truth, prediction: p.predictions[i]!, english: row.language === "en" }];
    });
    const accuracyOf = (english: boolean) =>
      mean(scored.filter((s) => s.english === english).map((s) => (s.prediction.label === s.truth ? 1 : 0)));
    const truth = scored.map((s) => s.truth);
    const scores = classificationReport(
      truth,
      scored.map((s) => s.prediction.label),
      scored.map((s) => s.prediction.confidence),
    );
    let extra: Partial<RealisticVersionReport> = {};
    if (p.model === MULTILINGUAL_MODELS.intent && p.threshold)
      extra = { outOfScope: outOfScopeAt(prepared, p.predictions, p.threshold) };
    if (p.model === "intent") {
      const category = predicted.find((c) => c.model === "category" && c.family === p.family) ?? production("category");
      const routed = category ? routeAll(prepared, rules, { intent: p, category }) : undefined;
      extra = {
        ...(p.threshold && { outOfScope: outOfScopeAt(prepared, p.predictions, p.threshold) }),
        ...(routed &&
          category && {
            department: {
              accuracy: mean(routed.map((d, i) => (d.department === rows[i]!.row.department ? 1 : 0))),
              categoryFrom: `${category.family}${category.family === p.family ? "" : ` (production; no ${p.family} category)`}`,
            },
          }),
      };
    }
    if (p.model === "urgency") {
      const routed = routeAll(prepared, rules, { ...productionParts(predicted), urgency: p }, outOfFold);
      extra = {
        served: classificationReport(
          urgencyTruth,
          routed.map((d) => d.urgency ?? "unknown"),
          routed.map(() => 1),
        ),
      };
    }
    versions.push({
      model: p.model,
      family: p.family,
      version: p.version,
      stage: p.stage,
      scores,
      accuracyByLanguage: { english: accuracyOf(true), other: accuracyOf(false) },
      majority: baseline(truth),
      ...extra,
    });
  }

  let pipeline: RealisticPipelineReport | undefined;
  const parts = productionParts(predicted);
  if (parts.intent && parts.category) {
    const routed = routeAll(prepared, rules, parts, outOfFold);
    const unflaggedRows = rows.flatMap((r, i) => (routed[i]!.human_review ? [] : [i]));
    // The intent and category each row was served (the multilingual pair's for a row not in English, when served).
    const servedIntent = rows.map(({ cleaned }, i) => pairFor(parts, cleaned.language).intent!.predictions[i]!.label);
    const servedCategory = rows.map(({ cleaned }, i) => pairFor(parts, cleaned.language).category!.predictions[i]!.label);
    const intentRight = (i: number) => (servedIntent[i] === rows[i]!.row.intent ? 1 : 0);
    const unflagged = unflaggedRows.map(intentRight);
    const inScope = (i: number) => rows[i]!.row.intent !== oos;
    const categoryRight = (i: number) => (servedCategory[i] === rows[i]!.row.category ? 1 : 0);
    const scoredCategory = (i: number) => inScope(i) && rows[i]!.row.category != null;
    const servedLevels = routed.map((d) => d.urgency ?? "unknown");
    const figuresOf = (of: readonly number[]): LanguageFigures => {
      const kept = of.filter((i) => !routed[i]!.human_review);
      return {
        n: of.length,
        intentAccuracy: mean(of.filter(inScope).map(intentRight)),
        categoryAccuracy: mean(of.filter(scoredCategory).map(categoryRight)),
        reviewRate: mean(of.map((i) => (routed[i]!.human_review ? 1 : 0))),
        unflagged: kept.length,
        unflaggedIntentAccuracy: mean(kept.map(intentRight)),
        unflaggedCategoryAccuracy: mean(kept.filter(scoredCategory).map(categoryRight)),
        unflaggedSentimentAccuracy: mean(kept.map((i) => (parts.sentiment?.predictions[i]!.label === rows[i]!.row.sentiment ? 1 : 0))),
        unflaggedUrgencyAccuracy: mean(kept.map((i) => (servedLevels[i] === urgencyTruth[i] ? 1 : 0))),
        reviewReasons: reasonCounts(of.map((i) => routed[i]!)),
      };
    };
    const rowsIn = (test: (language: string) => boolean) => rows.flatMap(({ row }, i) => (test(row.language) ? [i] : []));
    const byLanguage = Object.fromEntries(
      [...new Set(rows.map(({ row }) => row.language))].sort().map((language) => [language, figuresOf(rowsIn((l) => l === language))]),
    );
    const notEnglish = figuresOf(rowsIn((l) => l !== "en"));
    const urgencyServed = parts.urgency ? classificationReport(urgencyTruth, servedLevels, rows.map(() => 1)) : undefined;
    const urgencyFlagged = routed.map((d) => d.review_reasons.includes("low_confidence:urgency"));
    const actToday = (level: string) => level === "high" || level === "critical";
    const levels = ["low", "medium", "high", "critical"];
    const confusion = Object.fromEntries(
      levels.map((t) => [
        t,
        Object.fromEntries(levels.map((q) => [q, urgencyTruth.filter((u, i) => u === t && servedLevels[i] === q).length])),
      ]),
    );
    pipeline = {
      versions: versionsOf(parts),
      n: rows.length,
      department: {
        accuracy: mean(routed.map((d, i) => (d.department === rows[i]!.row.department ? 1 : 0))),
        majority: baseline(rows.map(({ row }) => row.department)),
      },
      urgency: {
        accuracy: urgencyServed?.accuracy ?? Number.NaN,
        macroF1: urgencyServed?.macroF1 ?? Number.NaN,
        majority: baseline(urgencyTruth),
        calibration: `out of fold: ${combination.k}-fold cross-validation over this set, folds by ${combination.foldRule}; each row scored with the weights fitted without its fold`,
        confusion,
        reviewRate: mean(urgencyFlagged.map((f) => (f ? 1 : 0))),
        unflaggedAccuracy: mean(rows.flatMap((r, i) => (urgencyFlagged[i] ? [] : [servedLevels[i] === urgencyTruth[i] ? 1 : 0]))),
        missedActToday: {
          missed: urgencyTruth.filter((u, i) => actToday(u) && !actToday(servedLevels[i]!)).length,
          of: urgencyTruth.filter(actToday).length,
          flagged: urgencyTruth.filter((u, i) => actToday(u) && !actToday(servedLevels[i]!) && urgencyFlagged[i]).length,
        },
        flaggedWrongSide: urgencyTruth.filter((u, i) => urgencyFlagged[i] && actToday(u) !== actToday(servedLevels[i]!)).length,
      },
      reviewRate: mean(routed.map((d) => (d.human_review ? 1 : 0))),
      reviewReasons: reasonCounts(routed),
      modelReviewRate: mean(routed.map((d) => (modelDoubt(d.review_reasons) ? 1 : 0))),
      unflaggedIntentAccuracy: mean(unflagged),
      unflaggedUrgencyAccuracy: mean(unflaggedRows.map((i) => (servedLevels[i] === urgencyTruth[i] ? 1 : 0))),
      ...(parts.intent.samples && { samples: streamReview(routeAll(prepared, rules, parts, undefined, "samples")) }),
      unflagged: unflagged.length,
      languageAccuracy: mean(rows.map(({ row, cleaned }) => (cleaned.language === row.language ? 1 : 0))),
      byLanguage,
      notEnglish,
    };
  }

  return {
    n: rows.length,
    outOfScope: rows.filter(({ row }) => row.intent === oos).length,
    notEnglish: rows.filter(({ row }) => row.language !== "en").length,
    sha256: set.sha256,
    versions,
    ...(pipeline && { pipeline }),
    skipped: [...new Set(registeredModels)]
      .filter((model) => !REALISTIC_TRUTH[model])
      .map((model) => ({ model, reason: NOT_ON_REALISTIC[model] ?? "its labels are not the set's" })),
  };
}
