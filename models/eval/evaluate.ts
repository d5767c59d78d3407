import type { Logger } from "pino";
import type { Family } from "../manifest.js";
import type { RegisteredVersion } from "../registry.js";
import { loadModelVersion, type LoadedModel } from "../version.js";
import { heldOutRows, type HeldOut, type HeldOutRow, type OfficialTest } from "./held-out.js";
import { IN_SCOPE_SIMILARITY, scopeScore, servedScopePoint, type ScopePoint } from "../scope.js";
import { classificationReport, outOfScopeReport, type ClassificationReport, type OutOfScopeReport } from "./metrics.js";
import { REALISTIC_TRUTH, type PreparedSet, type RealisticPredictions } from "./realistic.js";
import { inBatches, oneAtATime, type SingleInquiryCost } from "./serving-cost.js";
import { MULTILINGUAL_MODELS } from "../../processors/classify.js";

export interface EvaluationOptions {
  /** Rows per predict() call when measuring throughput (and scoring). */
  readonly batchSize: number;
  /** How many test inquiries are timed one at a time. */
  readonly latencySample: number;
}

/** What a version is scored on besides its own held-out split. */
export interface EvaluationExtras {
  /** The realistic set through `clean`: every version of a model it labels predicts on it. */
  readonly realistic?: PreparedSet;
  /** classify's threshold for an intent version without an operating point (SWITCHBOARD_OUT_OF_SCOPE_THRESHOLD). */
  readonly outOfScopeThreshold: number;
  /** CLINC150's official test split, for the versions trained on CLINC150 (read once, when first asked). */
  readonly officialTest?: () => Promise<OfficialTest>;
}

/** A version on CLINC150's official test split, or why not. */
export type OfficialTestEvaluation =
  | {
      readonly sha256: string;
      readonly test: ClassificationReport;
      readonly outOfScope?: OutOfScopeReport;
    }
  | { readonly absent: string };

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
  /** CLINC150 models: the official test split, beside the halved-validation one above. */
  readonly officialTest?: OfficialTestEvaluation;
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

/** In-scope metrics of `rows`, and the out-of-scope ones at `point` when given. */
async function scoreRows(
  model: LoadedModel,
  rows: readonly HeldOutRow[],
  oosLabel: string,
  point: ScopePoint | undefined,
  batchSize: number,
): Promise<{ test: ClassificationReport; truth: string[]; outOfScope?: OutOfScopeReport; perSecond: number }> {
  const labels = new Set(model.manifest.labels);
  const inScope = rows.filter((row) => labels.has(row.label));
  const outOfScope = rows.filter((row) => row.label === oosLabel);
  const unknown = rows.length - inScope.length - outOfScope.length;
  if (unknown > 0) throw new Error(`${unknown} test rows have labels the model does not know`);

  const scored = await inBatches(
    model,
    inScope.map((row) => row.text),
    batchSize,
  );
  const truth = inScope.map((row) => row.label);
  const test = classificationReport(
    truth,
    scored.predictions.map((p) => p.label),
    scored.predictions.map((p) => p.confidence),
  );
  let outOfScopeResult: OutOfScopeReport | undefined;
  if (point !== undefined && outOfScope.length > 0) {
    const refused = await inBatches(
      model,
      outOfScope.map((row) => row.text),
      batchSize,
    );
    outOfScopeResult = outOfScopeReport(
      point.threshold,
      scored.predictions.map((p, i) => ({ truth: truth[i]!, predicted: p.label, confidence: scopeScore(p, point) })),
      refused.predictions.map((p) => scopeScore(p, point)),
    );
  }
  return { test, truth, ...(outOfScopeResult && { outOfScope: outOfScopeResult }), perSecond: scored.perSecond };
}

const CLINC150 = "clinc150";

/**
 * Scores one version on its held-out test set through a real Node ONNX session, and measures its
 * serving cost; a CLINC150 version also on the official test split, and a version of a model the
 * realistic set labels on that set (its predictions are returned for the report to combine).
 */
export async function evaluateVersion(
  registered: RegisteredVersion,
  heldOut: HeldOutCache,
  options: EvaluationOptions,
  log: Logger,
  extras: EvaluationExtras = { outOfScopeThreshold: 0.4 },
): Promise<VersionEvaluation & { readonly realisticPredictions?: RealisticPredictions }> {
  const model = await loadModelVersion(registered.directory, log);
  try {
    const { manifest } = model;
    const split = await heldOut.get(registered.directory, manifest);
    const operating = manifest.operating_point;
    const threshold = operating?.threshold;
    // The version's own point on held-out English rows, served or not: what it measures.
    const point = operating ? servedScopePoint({ ...operating, served: true }, "en", extras.outOfScopeThreshold).point : undefined;
    const scored = await scoreRows(model, split.rows, split.oosLabel, point, options.batchSize);
    const { test, truth } = scored;
    const inScope = split.rows.filter((row) => row.label !== split.oosLabel);
    const majority = classificationReport(
      truth,
      truth.map(() => split.majority.label),
      truth.map(() => split.majority.share),
    );
    const outOfScopeResult = scored.outOfScope;

    let officialTest: OfficialTestEvaluation | undefined;
    const datasetName = (manifest.dataset as { name?: unknown } | null | undefined)?.name;
    if (datasetName === CLINC150 && extras.officialTest) {
      const official = await extras.officialTest();
      if ("absent" in official) officialTest = { absent: official.absent };
      else {
        const result = await scoreRows(model, official.rows, official.oosLabel, point, options.batchSize);
        officialTest = {
          sha256: official.sha256,
          test: result.test,
          ...(result.outOfScope && { outOfScope: result.outOfScope }),
        };
      }
    }

    let realisticPredictions: RealisticPredictions | undefined;
    if (extras.realistic && REALISTIC_TRUTH[manifest.model]) {
      // The demo samples ride along (unlabelled): the review rate on a normal stream beside the set's.
      const { rows, samples } = extras.realistic;
      const { predictions: all } = await inBatches(
        model,
        [...rows, ...samples].map((row) => row.input),
        options.batchSize,
      );
      const asRow = (p: (typeof all)[number]) => ({
        label: p.label,
        confidence: p.confidence,
        ...(p.inScopeSimilarity !== undefined && { inScopeSimilarity: p.inScopeSimilarity }),
        // Urgency's whole distribution: the combination reads the model's expected level.
        ...(manifest.model === "urgency" && {
          distribution: p.ranked.map((r) => ({ label: r.label, probability: r.score })),
        }),
      });
      realisticPredictions = {
        model: manifest.model,
        family: manifest.family,
        version: manifest.version,
        stage: registered.stage,
        predictions: all.slice(0, rows.length).map(asRow),
        samples: all.slice(rows.length).map(asRow),
        ...((manifest.model === "intent" || manifest.model === MULTILINGUAL_MODELS.intent) && {
          threshold:
            threshold === undefined
              ? { value: extras.outOfScopeThreshold, source: "fallback" as const }
              : {
                  value: threshold,
                  source: operating?.served === false ? ("measured point, not served" as const) : ("operating point" as const),
                  ...(point?.statistic === IN_SCOPE_SIMILARITY && { statistic: IN_SCOPE_SIMILARITY }),
                  served: extras.outOfScopeThreshold,
                },
        }),
      };
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
      ...(officialTest && { officialTest }),
      oneAtATime: latency,
      batched: { batchSize: options.batchSize, inquiriesPerSecond: scored.perSecond },
      ...(realisticPredictions && { realisticPredictions }),
    };
  } finally {
    await model.release();
  }
}
