import type { Manifest } from "./manifest.js";
import type { Prediction } from "./prediction.js";
import { UNDETERMINED_LANGUAGE } from "../text/language.js";

/**
 * `operating_point.statistic` of a point on a head's in-scope similarity, the cosine of the
 * inquiry's embedding to the nearest intent centroid (training/oos.py). Any other statistic is the
 * maximum calibrated probability, the prediction's confidence.
 */
export const IN_SCOPE_SIMILARITY = "in-scope similarity";

/** What classify compares an intent prediction with: below `threshold`, the inquiry is out of scope. */
export interface ScopePoint {
  readonly threshold: number;
  readonly statistic: "confidence" | "in-scope similarity";
}

/** Why classify took the configured threshold instead of the version's point; absent when it took the point. */
export type FallbackReason = "no point" | "point not served" | "point chosen on English text";

export interface ServedScopePoint {
  readonly point: ScopePoint;
  readonly fallback?: FallbackReason;
}

/**
 * The point classify applies to an inquiry in `language` answered by a version with `operating`
 * (its manifest's operating_point): that point when it is served; else the configured `fallback`
 * threshold on confidence. A similarity point is chosen on English text (Bitext, CLINC150), and
 * the English embedders place other languages far from every centroid (an English model answers
 * them only while the multilingual pair is not in production), so there it falls back too.
 */
export function servedScopePoint(
  operating: Manifest["operating_point"] | undefined,
  language: string,
  fallback: number,
): ServedScopePoint {
  const confidence = (reason: FallbackReason): ServedScopePoint => ({
    point: { threshold: fallback, statistic: "confidence" },
    fallback: reason,
  });
  if (!operating) return confidence("no point");
  if (operating.served === false) return confidence("point not served");
  if (operating.statistic !== IN_SCOPE_SIMILARITY) return { point: { threshold: operating.threshold, statistic: "confidence" } };
  if (language !== "en" && language !== UNDETERMINED_LANGUAGE) return confidence("point chosen on English text");
  return { point: { threshold: operating.threshold, statistic: IN_SCOPE_SIMILARITY } };
}

type Scored = Pick<Prediction, "confidence" | "inScopeSimilarity"> & { readonly model?: string };

/** The score `point` thresholds, of one prediction. */
export function scopeScore(prediction: Scored, point: ScopePoint): number {
  if (point.statistic === "confidence") return prediction.confidence;
  if (prediction.inScopeSimilarity === undefined)
    throw new Error(`${prediction.model ?? "an intent model"} has an out-of-scope point on in-scope similarity but its graph outputs none`);
  return prediction.inScopeSimilarity;
}

export function isOutOfScope(prediction: Scored, point: ScopePoint): boolean {
  return scopeScore(prediction, point) < point.threshold;
}
