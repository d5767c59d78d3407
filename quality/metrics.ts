import type pg from "pg";
import { Gauge, type Registry } from "prom-client";
import { liveQuality, type QualityOptions, type QualityReport } from "./live.js";

/**
 * Live quality as Prometheus gauges, for the process that refreshes it on a schedule (the
 * `drift` processor): `createQualityMetrics(registry)` once, `refreshQuality(pool, metrics,
 * options)` on each tick. Labels: model (name@version), name (the registry model), stage
 * (production, shadow), window (its name: 1h, 1d, 1000); recall adds class.
 */

const LABELS = ["model", "name", "stage", "window"] as const;

export type QualityMetrics = ReturnType<typeof createQualityMetrics>;

export function createQualityMetrics(registry: Registry) {
  const gauge = (name: string, help: string, extra: readonly string[] = []) =>
    new Gauge({ name: `switchboard_quality_${name}`, help, labelNames: [...LABELS, ...extra], registers: [registry] });
  return {
    predictions: gauge("predictions", "Predictions of the model version in the window"),
    labelled: gauge("labelled", "Of them, those with a resolved label that counts (agent or outcome by default)"),
    accuracy: gauge("accuracy", "Measured accuracy on the labelled predictions of the window (absent without any)"),
    accuracyInterval: gauge("accuracy_interval", "Bounds of the measured accuracy's Wilson interval (95 % by default)", ["bound"]),
    macroF1: gauge("macro_f1", "Measured macro-F1 over the classes present in the labels"),
    recall: gauge("recall", "Measured recall per class (true label)", ["class"]),
    estimatedAccuracy: gauge("estimated_accuracy", "Label-free estimate: mean maximum calibrated probability over all predictions of the window (CBPE)"),
    estimatedAccuracyError: gauge("estimated_accuracy_error", "Standard error of the estimate, √Σp(1−p)/n; the stated interval is ±1.96 of it by default"),
    calibrationGap: gauge("calibration_gap", "Mean confidence minus measured accuracy on the labelled predictions (> 0 over-confident)"),
    calibrationGapError: gauge("calibration_gap_error", "The gap's sampling error were the model calibrated, √Σp(1−p)/n over the labelled"),
    ece: gauge("ece", "Expected calibration error of the labelled predictions, 15 bins"),
    trusted: gauge("estimate_trusted", "1 when the labelled subset confirms the calibration the estimate relies on; 0 when it contradicts it or has too few labels"),
    refreshed: new Gauge({
      name: "switchboard_quality_refreshed_timestamp_seconds",
      help: "When live quality was last computed (a stale value means refreshes fail: see the process log)",
      registers: [registry],
    }),
  };
}

/** Every gauge but the refresh time: set anew on each refresh, so a retired version's series go away. */
function seriesGauges(metrics: QualityMetrics): Gauge[] {
  return Object.values(metrics).filter((gauge) => gauge !== metrics.refreshed);
}

export function recordQuality(metrics: QualityMetrics, reports: readonly QualityReport[], at = Date.now()): void {
  for (const gauge of seriesGauges(metrics)) gauge.reset();
  for (const report of reports) {
    const labels = { model: report.version.model, name: report.version.name, stage: report.version.stage, window: report.window.name };
    metrics.predictions.set(labels, report.predictions);
    metrics.labelled.set(labels, report.labelled);
    metrics.trusted.set(labels, report.calibration.trusted ? 1 : 0);
    if (report.estimated) {
      metrics.estimatedAccuracy.set(labels, report.estimated.estimate);
      metrics.estimatedAccuracyError.set(labels, report.estimated.standardError);
    }
    const { measured, calibration } = report;
    if (measured) {
      metrics.accuracy.set(labels, measured.accuracy);
      metrics.accuracyInterval.set({ ...labels, bound: "low" }, measured.interval.low);
      metrics.accuracyInterval.set({ ...labels, bound: "high" }, measured.interval.high);
      metrics.macroF1.set(labels, measured.macroF1);
      for (const [label, recall] of Object.entries(measured.perClassRecall)) metrics.recall.set({ ...labels, class: label }, recall);
      metrics.calibrationGap.set(labels, calibration.gap);
      metrics.calibrationGapError.set(labels, calibration.standardError);
      metrics.ece.set(labels, calibration.ece);
    }
  }
  metrics.refreshed.set(at / 1000);
}

/**
 * Computes live quality (quality/live.ts) and sets the gauges; returns the reports (for a log
 * line). A failed read rejects and leaves the gauges as the last refresh set them.
 */
export async function refreshQuality(pool: pg.Pool, metrics: QualityMetrics, options: QualityOptions = {}): Promise<QualityReport[]> {
  const reports = await liveQuality(pool, options);
  recordQuality(metrics, reports, options.now);
  return reports;
}
