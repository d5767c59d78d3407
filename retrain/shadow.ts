import type pg from "pg";
import { APP_SCHEMA } from "../storage/postgres.js";

/**
 * Shadow evaluation, from the feedback sink's store: the inquiries the shadow version scored that
 * production scored too (same inquiry and task), and of those the ones with a resolved human
 * label (labels judge production's prediction: the shadow's has its own id and none).
 */
export interface ShadowFigures {
  /** Inquiries both scored. */
  readonly scored: number;
  /** Of those, with a resolved label. */
  readonly labelled: number;
  readonly shadowAccuracy: number | null;
  readonly productionAccuracy: number | null;
  readonly shadowMeanConfidence: number | null;
  readonly productionMeanConfidence: number | null;
  readonly shadowLatencyP95Ms: number | null;
  readonly productionLatencyP95Ms: number | null;
}

export async function shadowFigures(pool: pg.Pool, shadowModel: string): Promise<ShadowFigures> {
  const { rows } = await pool.query<Record<string, string | number | null>>(
    `WITH pairs AS (
       SELECT s.predicted_label AS shadow_label, s.confidence AS shadow_confidence,
              (s.features->'values'->>'latency_ms')::float8 AS shadow_latency,
              p.predicted_label AS production_label, p.confidence AS production_confidence,
              (p.features->'values'->>'latency_ms')::float8 AS production_latency,
              l.label
         FROM ${APP_SCHEMA}.feedback_predictions s
         JOIN ${APP_SCHEMA}.feedback_predictions p
           ON p.inquiry_id = s.inquiry_id AND p.task = s.task AND p.stage = 'production' AND p.predicted_at IS NOT NULL
         LEFT JOIN ${APP_SCHEMA}.labelled_predictions l ON l.prediction_id = p.prediction_id
        WHERE s.model = $1 AND s.stage = 'shadow' AND s.predicted_at IS NOT NULL)
     SELECT count(*)::int AS scored,
            count(label)::int AS labelled,
            avg((shadow_label = label)::int) FILTER (WHERE label IS NOT NULL) AS shadow_accuracy,
            avg((production_label = label)::int) FILTER (WHERE label IS NOT NULL) AS production_accuracy,
            avg(shadow_confidence) AS shadow_mean_confidence,
            avg(production_confidence) AS production_mean_confidence,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY shadow_latency) AS shadow_latency_p95_ms,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY production_latency) AS production_latency_p95_ms
       FROM pairs`,
    [shadowModel],
  );
  const row = rows[0]!;
  const num = (key: string) => (row[key] === null || row[key] === undefined ? null : Number(row[key]));
  return {
    scored: Number(row.scored),
    labelled: Number(row.labelled),
    shadowAccuracy: num("shadow_accuracy"),
    productionAccuracy: num("production_accuracy"),
    shadowMeanConfidence: num("shadow_mean_confidence"),
    productionMeanConfidence: num("production_mean_confidence"),
    shadowLatencyP95Ms: num("shadow_latency_p95_ms"),
    productionLatencyP95Ms: num("production_latency_p95_ms"),
  };
}

export interface ShadowBounds {
  /** Inquiries to score before judging. */
  readonly inquiries: number;
  readonly minLabelled: number;
  readonly maxConfidenceDrop: number;
  readonly maxLatencyRatio: number;
  readonly timeoutMs: number;
}

export type ShadowVerdict =
  | { readonly verdict: "wait"; readonly reason: string }
  | { readonly verdict: "promote" | "reject"; readonly reason: string; readonly numbers: Readonly<Record<string, number>> };

/** The figures as a decision's numbers (numbers only; an unmeasured figure is left out). */
export function shadowNumbers(figures: ShadowFigures): Record<string, number> {
  const numbers: Record<string, number> = {};
  const put = (key: string, value: number | null) => {
    if (value !== null && Number.isFinite(value)) numbers[key] = value;
  };
  put("shadow_scored", figures.scored);
  put("shadow_labelled", figures.labelled);
  put("shadow_accuracy", figures.shadowAccuracy);
  put("production_accuracy", figures.productionAccuracy);
  put("shadow_mean_confidence", figures.shadowMeanConfidence);
  put("production_mean_confidence", figures.productionMeanConfidence);
  put("shadow_latency_p95_ms", figures.shadowLatencyP95Ms);
  put("production_latency_p95_ms", figures.productionLatencyP95Ms);
  return numbers;
}

const fixed = (value: number, digits = 3) => value.toFixed(digits);

/** A figure exactly at its bound passes, whatever the last bit of the subtraction or division that made it. */
const EPSILON = 1e-9;

/**
 * Promote only when the shadow is at least as accurate as production on the labelled inquiries
 * both scored, its mean confidence is at most `maxConfidenceDrop` below production's and its
 * latency p95 at most `maxLatencyRatio` times production's; wait while it has scored or been
 * labelled too little, until `timeoutMs` after it started, then reject for that.
 */
export function judgeShadow(figures: ShadowFigures, bounds: ShadowBounds, elapsedMs: number): ShadowVerdict {
  const numbers = shadowNumbers(figures);
  if (figures.scored < bounds.inquiries || figures.labelled < bounds.minLabelled) {
    const collected = `${figures.scored} of ${bounds.inquiries} inquiries scored beside production, ${figures.labelled} of ${bounds.minLabelled} labelled`;
    if (elapsedMs < bounds.timeoutMs) return { verdict: "wait", reason: collected };
    return { verdict: "reject", reason: `shadow evaluation timed out after ${Math.round(elapsedMs / 60_000)} min with ${collected}`, numbers };
  }
  const failures: string[] = [];
  const passes: string[] = [];
  const { shadowAccuracy, productionAccuracy, shadowMeanConfidence, productionMeanConfidence, shadowLatencyP95Ms, productionLatencyP95Ms } = figures;
  if (bounds.minLabelled > 0 || figures.labelled > 0) {
    if (shadowAccuracy === null || productionAccuracy === null) failures.push("no labelled inquiry to compare accuracy on");
    else {
      const text = `accuracy ${fixed(shadowAccuracy)} vs production ${fixed(productionAccuracy)} on ${figures.labelled} labelled`;
      (shadowAccuracy >= productionAccuracy ? passes : failures).push(text);
    }
  }
  if (shadowMeanConfidence === null || productionMeanConfidence === null) failures.push("mean confidence not measured");
  else {
    const drop = productionMeanConfidence - shadowMeanConfidence;
    const text = `mean confidence ${fixed(shadowMeanConfidence)} vs ${fixed(productionMeanConfidence)} (drop ${fixed(drop)}, bound ${bounds.maxConfidenceDrop})`;
    (drop <= bounds.maxConfidenceDrop + EPSILON ? passes : failures).push(text);
  }
  if (shadowLatencyP95Ms === null || productionLatencyP95Ms === null) failures.push("latency not measured (no latency_ms in the predictions' features)");
  else {
    const ratio = productionLatencyP95Ms > 0 ? shadowLatencyP95Ms / productionLatencyP95Ms : shadowLatencyP95Ms > 0 ? Infinity : 1;
    const text = `latency p95 ${fixed(shadowLatencyP95Ms, 1)} vs ${fixed(productionLatencyP95Ms, 1)} ms (ratio ${fixed(ratio, 2)}, bound ${bounds.maxLatencyRatio})`;
    (ratio <= bounds.maxLatencyRatio + EPSILON ? passes : failures).push(text);
  }
  const scored = `over ${figures.scored} inquiries scored beside production`;
  return failures.length > 0
    ? { verdict: "reject", reason: `shadow ${failures.join("; ")} ${scored}`, numbers }
    : { verdict: "promote", reason: `shadow ${passes.join("; ")} ${scored}`, numbers };
}
