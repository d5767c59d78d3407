/**
 * Scores on the realistic set (./realistic-set.ts): each row goes through `clean` as the
 * pipeline runs it (processors/clean.ts cleanInquiry: quoted history, signature and personal data
 * removed, language and entities), then every registered version of the models the set labels
 * predicts on the model input serving builds (processors/feedback.ts modelInput). What the
 * pipeline adds to the models comes from the processors' own functions: the served urgency level
 * (processors/urgency: textSignals, combineUrgency; no repeat-contact history here, every row is a
 * first contact), out of scope at the intent version's operating point or classify's fallback
 * threshold, and department, queue and human review from route's decideRoute with the routing
 * rules.
 */
import type {
  InquiryClassified,
  InquiryCleaned,
  InquirySentiment,
  InquiryUrgency,
} from "../../schemas/types.generated.js";
import { cleanInquiry } from "../../processors/clean.js";
import { modelInput } from "../../processors/feedback.js";
import { decideRoute, type RoutingDecision } from "../../processors/route/decision.js";
import type { RoutingRules } from "../../processors/route/rules.js";
import { combineUrgency } from "../../processors/urgency/level.js";
import { textSignals, type UrgencySignal } from "../../processors/urgency/signals.js";
import { loadLanguageDetector } from "../../text/language.js";
import type { Family } from "../manifest.js";
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

export interface PreparedSet {
  readonly set: RealisticSet;
  readonly rows: readonly PreparedRow[];
}

export async function prepareRealistic(set: RealisticSet): Promise<PreparedSet> {
  const languages = await loadLanguageDetector();
  const rows = set.rows.map((row) => {
    const cleaned = cleanInquiry(receivedInquiry(row, set.receivedAt), languages, set.receivedAt);
    const input = modelInput(cleaned);
    return { row, cleaned, input, signals: textSignals(input, cleaned.entities, set.receivedAt) };
  });
  return { set, rows };
}

/** What one version predicted for every row of the set, in order. */
export interface RowPrediction {
  readonly label: string;
  readonly confidence: number;
}

export interface RealisticPredictions {
  readonly model: string;
  readonly family: Family;
  readonly version: string;
  readonly stage: RegisteredVersion["stage"];
  readonly predictions: readonly RowPrediction[];
  /** The intent version's out-of-scope threshold and where it comes from. */
  readonly threshold?: {
    readonly value: number;
    readonly source: "operating point" | "fallback" | "measured point, not served";
    /** What classify uses when it is not `value` (a point measured, not served: the fallback). */
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
  /** Out-of-scope rows refused (confidence below the threshold). */
  readonly recall: number;
  /** Refused rows that are out of scope; NaN when nothing is refused. */
  readonly precision: number;
  /** In-scope rows answered with the right intent (a refusal counts as an error). */
  readonly inScopeAccuracy: number;
  readonly refused: number;
  readonly outOfScope: number;
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
  /** Urgency as the pipeline serves it: the model's level raised by the text signals. */
  readonly served?: ClassificationReport;
  /** Intent: department by route with this version's intent (and category, `categoryFrom`). */
  readonly department?: { readonly accuracy: number; readonly categoryFrom: string };
}

export interface RealisticPipelineReport {
  /** The production version of each model the pipeline serves, as model@version (family). */
  readonly versions: readonly string[];
  readonly n: number;
  readonly department: { readonly accuracy: number; readonly majority: Baseline };
  readonly urgency: { readonly accuracy: number; readonly macroF1: number; readonly majority: Baseline };
  /** Rows route flags for human review, and the most frequent reasons. */
  readonly reviewRate: number;
  readonly reviewReasons: Readonly<Record<string, number>>;
  /** Accuracy of the intents of the rows neither refused nor flagged for review. */
  readonly unflaggedIntentAccuracy: number;
  readonly unflagged: number;
  /** `clean`'s language against the labelled one. */
  readonly languageAccuracy: number;
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
  const refused = predictions.map((p) => p.confidence < threshold.value);
  const isOos = prepared.rows.map(({ row }) => row.intent === oos);
  const refusedOos = refused.filter((r, i) => r && isOos[i]).length;
  const refusedCount = refused.filter(Boolean).length;
  return {
    threshold: threshold.value,
    source: threshold.source,
    recall: refusedOos / isOos.filter(Boolean).length,
    precision: refusedCount === 0 ? Number.NaN : refusedOos / refusedCount,
    inScopeAccuracy: mean(
      prepared.rows.flatMap(({ row }, i) =>
        isOos[i] ? [] : [!refused[i] && predictions[i]!.label === row.intent ? 1 : 0],
      ),
    ),
    refused: refusedCount,
    outOfScope: isOos.filter(Boolean).length,
  };
}

/** The routing decision of every row from one prediction per model (a missing model: route's own default). */
function routeAll(
  prepared: PreparedSet,
  rules: RoutingRules,
  parts: {
    intent?: RealisticPredictions;
    category?: RealisticPredictions;
    sentiment?: RealisticPredictions;
    urgency?: RealisticPredictions;
  },
): RoutingDecision[] {
  return prepared.rows.map(({ cleaned, signals }, i) => {
    const id = cleaned.inquiry_id;
    const intent = parts.intent?.predictions[i];
    const category = parts.category?.predictions[i];
    const classified: InquiryClassified | undefined =
      intent && category
        ? {
            inquiry_id: id,
            intent: intent.label,
            category: category.label,
            confidence: intent.confidence,
            out_of_scope: intent.confidence < (parts.intent!.threshold!.served ?? parts.intent!.threshold!.value),
            top_k: [{ label: intent.label, probability: intent.confidence }],
            model: `${parts.intent!.model}@${parts.intent!.version}`,
            classified_at: 0,
          }
        : undefined;
    const sentimentPrediction = parts.sentiment?.predictions[i];
    const sentiment: InquirySentiment | undefined = sentimentPrediction && {
      inquiry_id: id,
      label: sentimentPrediction.label as InquirySentiment["label"],
      score: sentimentPrediction.confidence,
      probabilities: [],
      model: `${parts.sentiment!.model}@${parts.sentiment!.version}`,
      scored_at: 0,
    };
    const urgencyPrediction = parts.urgency?.predictions[i];
    const urgency: InquiryUrgency | undefined = urgencyPrediction && {
      inquiry_id: id,
      level: combineUrgency(urgencyPrediction.label, signals),
      score: urgencyPrediction.confidence,
      signals: [...signals],
      model: `${parts.urgency!.model}@${parts.urgency!.version}`,
      scored_at: 0,
    };
    return decideRoute({ cleaned, classified, sentiment, urgency, missing: [] }, rules);
  });
}

/** Per version, the figures of its model's labels; then the production pipeline as a whole. */
export function realisticReport(
  prepared: PreparedSet,
  predicted: readonly RealisticPredictions[],
  registeredModels: readonly string[],
  rules: RoutingRules,
): RealisticReport {
  const { set, rows } = prepared;
  const oos = set.labels.out_of_scope;
  const versions: RealisticVersionReport[] = [];
  const production = (model: string) => predicted.find((p) => p.model === model && p.stage === "production");

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
      const served = rows.map(({ signals }, i) => combineUrgency(p.predictions[i]!.label, signals));
      extra = {
        served: classificationReport(
          rows.map(({ row }) => row.urgency),
          served,
          p.predictions.map((q) => q.confidence),
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
  const parts = {
    intent: production("intent"),
    category: production("category"),
    sentiment: production("sentiment"),
    urgency: production("urgency"),
  };
  if (parts.intent && parts.category) {
    const routed = routeAll(prepared, rules, parts);
    const reasons: Record<string, number> = {};
    for (const decision of routed)
      for (const reason of decision.review_reasons) {
        const kind = reason.startsWith("unsupported_language:") ? "unsupported_language" : reason;
        reasons[kind] = (reasons[kind] ?? 0) + 1;
      }
    const unflagged = rows.flatMap(({ row }, i) =>
      routed[i]!.human_review ? [] : [parts.intent!.predictions[i]!.label === row.intent ? 1 : 0],
    );
    const urgencyTruth = rows.map(({ row }) => row.urgency);
    const urgencyServed = parts.urgency
      ? classificationReport(
          urgencyTruth,
          rows.map(({ signals }, i) => combineUrgency(parts.urgency!.predictions[i]!.label, signals)),
          rows.map(() => 1),
        )
      : undefined;
    pipeline = {
      versions: Object.values(parts).flatMap((v) => (v ? [`${v.model}@${v.version} (${v.family})`] : [])),
      n: rows.length,
      department: {
        accuracy: mean(routed.map((d, i) => (d.department === rows[i]!.row.department ? 1 : 0))),
        majority: baseline(rows.map(({ row }) => row.department)),
      },
      urgency: {
        accuracy: urgencyServed?.accuracy ?? Number.NaN,
        macroF1: urgencyServed?.macroF1 ?? Number.NaN,
        majority: baseline(urgencyTruth),
      },
      reviewRate: mean(routed.map((d) => (d.human_review ? 1 : 0))),
      reviewReasons: Object.fromEntries(Object.entries(reasons).sort((a, b) => b[1] - a[1])),
      unflaggedIntentAccuracy: mean(unflagged),
      unflagged: unflagged.length,
      languageAccuracy: mean(rows.map(({ row, cleaned }) => (cleaned.language === row.language ? 1 : 0))),
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
