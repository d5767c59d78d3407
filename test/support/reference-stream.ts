import { readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { parseManifest } from "../../models/manifest.js";
import { REGISTRY_SCHEMA } from "../../models/registry.js";
import type { PredictionFeedback } from "../../schemas/types.generated.js";
import { seededRandom as seeded } from "../../drift/seeded.js";

export { seeded };

/**
 * Prediction records drawn from a model version's own reference distributions (its manifest),
 * so a stream of them is what drift must call stable; and the same with one feature moved, the
 * shifts drift must catch. Seeded, so a run can be repeated. Used by the drift tests and
 * `npm run bench:drift`.
 */

export interface ProductionVersion {
  readonly model: string;
  readonly version: string;
  readonly directory: string;
  readonly reference: Record<string, unknown>;
}

export async function productionVersion(pool: pg.Pool, model: string, modelsDir: string): Promise<ProductionVersion> {
  const { rows } = await pool.query<{ version: string; artifact_path: string }>(
    `SELECT version, artifact_path FROM ${REGISTRY_SCHEMA}.versions WHERE model = $1 AND stage = 'production'`,
    [model],
  );
  const row = rows[0];
  if (!row) throw new Error(`${model} has no production version: run \`switchboard train --defaults\` first`);
  const directory = path.resolve(modelsDir, row.artifact_path);
  const manifest = parseManifest(readFileSync(path.join(directory, "manifest.json"), "utf8"));
  if (!manifest.reference) throw new Error(`${model}@${row.version} has no reference distributions`);
  return { model, version: row.version, directory, reference: manifest.reference };
}

function pick(random: () => number, weights: readonly [string, number][]): string {
  const total = weights.reduce((s, [, w]) => s + w, 0);
  let r = random() * total;
  for (const [key, w] of weights) {
    r -= w;
    if (r <= 0) return key;
  }
  return weights.at(-1)![0];
}

function fromHistogram(random: () => number, histogram: { edges: number[]; counts: number[]; open_ended: boolean }): number {
  const bins = histogram.counts.map((c, i) => [String(i), c] as [string, number]);
  const i = Number(pick(random, bins));
  const lo = histogram.edges[i]!;
  const hi = histogram.edges[i + 1] ?? lo + (lo - histogram.edges[i - 1]!);
  return lo + random() * (hi - lo);
}

function normal(random: () => number, mean: number, std: number): number {
  const u = Math.max(random(), 1e-12);
  return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

export type Shift =
  /** Predictions of two labels only, instead of the reference's mix. */
  | "label_mix"
  /** A fifth of the predictions moved to two labels, the rest as the reference. */
  | "label_mix_fifth"
  /** Spanish-only traffic. */
  | "language"
  /** Inputs five times longer (quoted email threads). */
  | "length";

export interface StreamOptions {
  readonly task: string;
  readonly seed?: number;
  readonly shift?: Shift;
  readonly startAt?: number;
  readonly stepMs?: number;
}

/** An endless generator of prediction records of `version`, stable or shifted. */
export function* referenceStream(version: ProductionVersion, options: StreamOptions): Generator<PredictionFeedback> {
  const random = seeded(options.seed ?? 1);
  const ref = version.reference as {
    prediction_distribution: { shares: Record<string, number> };
    language_histogram: { shares: Record<string, number> };
    confidence_histogram: { edges: number[]; counts: number[]; open_ended: boolean };
    input_length_histogram: { edges: number[]; counts: number[]; open_ended: boolean };
    features?: { name: string; mean?: number | number[]; std?: number | number[]; dimensions?: number }[];
  };
  const labels = Object.entries(ref.prediction_distribution.shares).filter(([, s]) => s > 0);
  const shifted = options.shift === "label_mix" ? labels.slice(0, 2).map(([l]) => [l, 1] as [string, number]) : labels;
  const languages = options.shift === "language" ? ([["es", 1]] as [string, number][]) : Object.entries(ref.language_histogram.shares);
  const scalars = (ref.features ?? []).filter((f) => f.dimensions === undefined && typeof f.mean === "number");
  let at = options.startAt ?? Date.UTC(2026, 0, 1);
  for (let i = 0; ; i++) {
    const length = Math.max(1, Math.round(fromHistogram(random, ref.input_length_histogram) * (options.shift === "length" ? 5 : 1)));
    const values = Object.fromEntries(scalars.map((f) => [f.name, normal(random, f.mean as number, f.std as number)]));
    yield {
      prediction_id: `reference-${options.seed ?? 1}-${i}`,
      inquiry_id: `reference-${options.seed ?? 1}-${i}`,
      task: options.task,
      model: `${version.model}@${version.version}`,
      input_digest: "0".repeat(64),
      features: { length, language: pick(random, languages), values },
      predicted_label: options.shift === "label_mix_fifth" && random() < 0.2 ? pick(random, labels.slice(0, 2)) : pick(random, shifted),
      confidence: Math.min(1, fromHistogram(random, ref.confidence_histogram)),
      label: null,
      label_source: "model",
      occurred_at: at,
      stage: "production",
    };
    at += options.stepMs ?? 100;
  }
}
