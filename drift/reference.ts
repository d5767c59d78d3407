import { z } from "zod";

/**
 * The reference distributions a model version's manifest carries (`reference`, written by
 * training/reference.py), as the features drift detection watches. The manifest keeps the field
 * open; this is the one reading of its shape, and a part that is missing or malformed is left out
 * with the reason, so a model trained before a summary existed is still watched on the rest.
 */

export type FeatureReference =
  /** Shares per category: predicted labels (test predictions), languages (training rows). */
  | { readonly kind: "categorical"; readonly feature: string; readonly shares: Readonly<Record<string, number>> }
  /** Counts per bin [edges[i], edges[i+1]); the last bin also takes values above when openEnded. */
  | {
      readonly kind: "histogram";
      readonly feature: string;
      readonly edges: readonly number[];
      readonly openEnded: boolean;
      readonly counts: readonly number[];
    }
  /** Mean and std of a per-inquiry number (active_features, embedding_centroid_cosine). */
  | { readonly kind: "scalar"; readonly feature: string; readonly mean: number; readonly std: number }
  /** Per-dimension mean (and std) of an embedding. */
  | {
      readonly kind: "vector";
      readonly feature: string;
      readonly mean: readonly number[];
      readonly std?: readonly number[];
    };

const sharesSpec = z.looseObject({ shares: z.record(z.string(), z.number().min(0)) });
const histogramSpec = z
  .looseObject({
    edges: z.array(z.number()).min(2),
    open_ended: z.boolean(),
    counts: z.array(z.number().int().min(0)),
  })
  .refine((h) => h.counts.length === h.edges.length - (h.open_ended ? 0 : 1), "one count per bin")
  .refine((h) => h.edges.every((edge, i) => i === 0 || edge > h.edges[i - 1]!), "edges increase");
const scalarSpec = z.looseObject({ name: z.string().min(1), mean: z.number(), std: z.number().min(0) });
const vectorSpec = z
  .looseObject({
    name: z.string().min(1),
    dimensions: z.number().int().min(1),
    mean: z.array(z.number()),
    std: z.array(z.number().min(0)).optional(),
  })
  .refine(
    (v) => v.mean.length === v.dimensions && (v.std === undefined || v.std.length === v.dimensions),
    "one value per dimension",
  );

/** Which reference entry feeds which watched feature (the feature name goes into `models.drift`). */
const CATEGORICAL = { prediction_distribution: "label", language_histogram: "language" } as const;
const HISTOGRAMS = { confidence_histogram: "confidence", input_length_histogram: "length" } as const;

export interface ParsedReference {
  readonly features: readonly FeatureReference[];
  /** Parts present but unusable, with the reason: worth a log line, not a refusal to watch the rest. */
  readonly skipped: readonly string[];
}

function problem(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ");
}

/** The watched features of a manifest's `reference` (null when the version has none). */
export function featureReferences(reference: Readonly<Record<string, unknown>> | null): ParsedReference {
  const features: FeatureReference[] = [];
  const skipped: string[] = [];
  if (!reference) return { features, skipped };
  for (const [key, feature] of Object.entries(CATEGORICAL)) {
    if (reference[key] === undefined) continue;
    const parsed = sharesSpec.safeParse(reference[key]);
    if (parsed.success) features.push({ kind: "categorical", feature, shares: parsed.data.shares });
    else skipped.push(`${key}: ${problem(parsed.error)}`);
  }
  for (const [key, feature] of Object.entries(HISTOGRAMS)) {
    if (reference[key] === undefined) continue;
    const parsed = histogramSpec.safeParse(reference[key]);
    if (parsed.success) {
      const { edges, open_ended: openEnded, counts } = parsed.data;
      features.push({ kind: "histogram", feature, edges, openEnded, counts });
    } else skipped.push(`${key}: ${problem(parsed.error)}`);
  }
  const summaries = Array.isArray(reference["features"]) ? (reference["features"] as unknown[]) : [];
  for (const [i, entry] of summaries.entries()) {
    const isVector = typeof entry === "object" && entry !== null && "dimensions" in entry;
    if (isVector) {
      const parsed = vectorSpec.safeParse(entry);
      if (parsed.success) {
        const { name, mean, std } = parsed.data;
        features.push(std ? { kind: "vector", feature: name, mean, std } : { kind: "vector", feature: name, mean });
      } else skipped.push(`features[${i}]: ${problem(parsed.error)}`);
    } else {
      const parsed = scalarSpec.safeParse(entry);
      if (parsed.success)
        features.push({ kind: "scalar", feature: parsed.data.name, mean: parsed.data.mean, std: parsed.data.std });
      else skipped.push(`features[${i}]: ${problem(parsed.error)}`);
    }
  }
  return { features, skipped };
}
