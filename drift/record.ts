import type { DriftSeverity, ModelDrift } from "../schemas/types.generated.js";
import type { DriftEvent } from "./monitor.js";
import type { StatisticResult } from "./statistics.js";

/**
 * A drift event as its `models.drift` record. Severity:
 * - `info`: the alarm cleared; the window shown is the one that settled it (alerting resolves).
 * - `warning`: raised; the statistic is over its threshold.
 * - `critical`: raised, and far over: a p-value below α/1000 (5e-5 at α = 0.05) or a distance at
 *   least twice its threshold; for the domain classifier's ROC AUC, whose scale starts at chance
 *   (0.5), an AUC twice as far from chance as its threshold (0.68 at 0.59).
 *   This is what `retrain` should react to on its own.
 */

/** How far under α a p-value must fall, and how far over its threshold a distance must go, to be critical. */
export const CRITICAL_P_FACTOR = 1e-3;
export const CRITICAL_DISTANCE_FACTOR = 2;
const CHANCE_AUC = 0.5;

export function severity(transition: DriftEvent["transition"], result: StatisticResult): DriftSeverity {
  if (transition === "cleared") return "info";
  if (result.statistic === "domain_classifier_auc")
    return result.value - CHANCE_AUC >= (result.threshold - CHANCE_AUC) * CRITICAL_DISTANCE_FACTOR ? "critical" : "warning";
  const critical =
    result.pValue !== null && "alpha" in result.rule
      ? result.pValue < result.rule.alpha * CRITICAL_P_FACTOR
      : result.value >= result.threshold * CRITICAL_DISTANCE_FACTOR;
  return critical ? "critical" : "warning";
}

export interface RecordContext {
  readonly task: string;
  /** name@version of the model the predictions came from. */
  readonly model: string;
  readonly detectedAt: number;
}

export function driftRecord(context: RecordContext, event: DriftEvent): ModelDrift {
  return {
    task: context.task,
    model: context.model,
    feature: event.feature,
    window_start: event.window.start,
    window_end: event.window.end,
    sample_size: event.result.sampleSize,
    statistic: event.result.statistic,
    value: event.result.value,
    threshold: event.result.threshold,
    severity: severity(event.transition, event.result),
    detected_at: context.detectedAt,
  };
}
