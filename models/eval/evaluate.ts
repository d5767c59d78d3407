import type { Logger } from "pino";
import type { Family } from "../manifest.js";
import type { RegisteredVersion } from "../registry.js";
import { loadModelVersion } from "../version.js";
import { heldOutRows, type HeldOut } from "./held-out.js";
import { classificationReport, outOfScopeReport, type ClassificationReport, type OutOfScopeReport } from "./metrics.js";
import { inBatches, oneAtATime, type SingleInquiryCost } from "./serving-cost.js";

export interface EvaluationOptions {
  /** Rows per predict() call when measuring throughput (and scoring). */
  readonly batchSize: number;
  /** How many test inquiries are timed one at a time. */
  readonly latencySample: number;
}

export interface VersionEvaluation {
  readonly model: string;
  readonly task: string;
  readonly family: Family;
  readonly version: string;
  readonly stage: RegisteredVersion["stage"];
  readonly test: ClassificationReport;
  /** Test ECE before temperature scaling, from the manifest (training measured it on the same rows). */
  readonly eceUncalibrated?: number;
  readonly majority: ClassificationReport;
  readonly outOfScope?: OutOfScopeReport;
  readonly oneAtATime: SingleInquiryCost;
  readonly batched: { readonly batchSize: number; readonly inquiriesPerSecond: number };
}

export interface VersionFailure {
  readonly model: string;
  readonly version: string;
  readonly family: string;
  readonly stage: RegisteredVersion["stage"];
  readonly error: string;
}

/** Per model and family, the version to show: production if of that family, else the shadow, else the newest candidate, else the newest archived. */
export function versionsToEvaluate(registered: readonly RegisteredVersion[]): RegisteredVersion[] {
  const preference = { production: 3, shadow: 2, candidate: 1, archived: 0 } as const;
  const chosen = new Map<string, RegisteredVersion>();
  for (const version of registered) {
    const key = `${version.model}\u0000${version.family}`;
    const held = chosen.get(key);
    const better =
      !held ||
      preference[version.stage] > preference[held.stage] ||
      (preference[version.stage] === preference[held.stage] && version.createdAt >= held.createdAt);
    if (better) chosen.set(key, version);
  }
  return [...chosen.values()].sort((a, b) => a.model.localeCompare(b.model) || a.family.localeCompare(b.family));
}

/** Caches held-out splits: the families of one model share one split (same dataset, seed, limit and test digest). */
export class HeldOutCache {
  private readonly splits = new Map<string, Promise<HeldOut>>();

  get(versionDir: string, manifest: { model: string; dataset?: unknown }): Promise<HeldOut> {
    const dataset = (manifest.dataset ?? {}) as { seed?: unknown; limit?: unknown; digests?: { test?: unknown } };
    const key = JSON.stringify([manifest.model, dataset.seed, dataset.limit, dataset.digests?.test]);
    let split = this.splits.get(key);
    if (!split) {
      split = heldOutRows(versionDir);
      this.splits.set(key, split);
    }
    return split;
  }
}

/** Scores one version on its held-out test set through a real Node ONNX session, and measures its serving cost. */
export async function evaluateVersion(
  registered: RegisteredVersion,
  heldOut: HeldOutCache,
  options: EvaluationOptions,
  log: Logger,
): Promise<VersionEvaluation> {
  const model = await loadModelVersion(registered.directory, log);
  try {
    const { manifest } = model;
    const split = await heldOut.get(registered.directory, manifest);
    const labels = new Set(manifest.labels);
    const inScope = split.rows.filter((row) => labels.has(row.label));
    const outOfScope = split.rows.filter((row) => row.label === split.oosLabel);
    const unknown = split.rows.length - inScope.length - outOfScope.length;
    if (unknown > 0) throw new Error(`${unknown} held-out rows have labels the model does not know`);

    const scored = await inBatches(
      model,
      inScope.map((row) => row.text),
      options.batchSize,
    );
    const truth = inScope.map((row) => row.label);
    const test = classificationReport(
      truth,
      scored.predictions.map((p) => p.label),
      scored.predictions.map((p) => p.confidence),
    );
    const majority = classificationReport(
      truth,
      truth.map(() => split.majority.label),
      truth.map(() => split.majority.share),
    );

    let outOfScopeResult: OutOfScopeReport | undefined;
    if (manifest.operating_point && outOfScope.length > 0) {
      const refused = await inBatches(
        model,
        outOfScope.map((row) => row.text),
        options.batchSize,
      );
      outOfScopeResult = outOfScopeReport(
        manifest.operating_point.threshold,
        scored.predictions.map((p, i) => ({ truth: truth[i]!, predicted: p.label, confidence: p.confidence })),
        refused.predictions.map((p) => p.confidence),
      );
    }
    const latency = await oneAtATime(
      model,
      inScope.slice(0, options.latencySample).map((row) => row.text),
    );
    const calibration = manifest.calibration as { test_ece?: { before?: number } } | undefined;
    return {
      model: manifest.model,
      task: manifest.task,
      family: manifest.family,
      version: manifest.version,
      stage: registered.stage,
      test,
      ...(calibration?.test_ece?.before !== undefined && { eceUncalibrated: calibration.test_ece.before }),
      majority,
      ...(outOfScopeResult && { outOfScope: outOfScopeResult }),
      oneAtATime: latency,
      batched: { batchSize: options.batchSize, inquiriesPerSecond: scored.perSecond },
    };
  } finally {
    await model.release();
  }
}
