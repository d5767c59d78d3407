import { z } from "zod";

/**
 * manifest.json of a model version, as written by training/pipeline.py (see training/README.md,
 * "manifest.json"). Serving validates the fields it relies on and keeps the rest as it is
 * (metrics, reference distributions, lineage) for whoever reads them, e.g. drift detection.
 */

export const FAMILIES = ["linear", "encoder", "ensemble"] as const;
export type Family = (typeof FAMILIES)[number];

/** The task of a version that only embeds text (the knowledge base's `embedder`): no labels, no probabilities. */
export const EMBEDDING_TASK = "embedding";

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "a lowercase hex sha256");
const fileName = z
  .string()
  .regex(/^[^/\\]+$/, "a plain file name inside the version directory")
  .refine((name) => name !== "." && name !== "..", "a plain file name");

const tensorSpec = z.looseObject({ type: z.string(), shape: z.array(z.union([z.string(), z.number()])) });

const wordPieceSpec = z.looseObject({
  kind: z.literal("wordpiece"),
  vocab: fileName,
  max_length: z.number().int().min(3),
  special_ids: z.object({ cls: z.number().int(), sep: z.number().int(), pad: z.number().int(), unk: z.number().int() }),
});

/** CLINC150-style targets: below `threshold` (max calibrated probability) an inquiry is out of scope. */
const operatingPointSpec = z.looseObject({
  threshold: z.number().min(0).max(1),
  statistic: z.string().optional(),
  rule: z.string().optional(),
});

export const manifestSchema = z
  .looseObject({
    schema_version: z.literal(1),
    model: z.string().min(1),
    task: z.string().min(1),
    family: z.enum(FAMILIES),
    version: z.string().min(1),
    labels: z
      .array(z.string().min(1))
      .refine((labels) => new Set(labels).size === labels.length, "labels must be unique"),
    onnx: z.looseObject({
      file: fileName,
      inputs: z.record(z.string(), tensorSpec),
      outputs: z.record(z.string(), tensorSpec),
    }),
    tokenizer: z.looseObject({ kind: z.string() }),
    operating_point: operatingPointSpec.nullable(),
    files: z.record(fileName, sha256),
  })
  .refine((m) => (m.task === EMBEDDING_TASK ? m.labels.length === 0 : m.labels.length >= 2), {
    message: `a classifier lists at least two labels; an ${EMBEDDING_TASK} model none`,
    path: ["labels"],
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type OperatingPoint = z.infer<typeof operatingPointSpec>;
export type WordPieceSpec = z.infer<typeof wordPieceSpec>;

/** Parses manifest.json text; throws a message naming the offending fields. */
export function parseManifest(text: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`manifest.json is not valid JSON (${(error as Error).message})`, { cause: error });
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`);
    throw new Error(`manifest.json is invalid: ${problems.join("; ")}`);
  }
  return parsed.data;
}

/** The WordPiece settings of a family that takes token ids; throws when the manifest lacks them. */
export function wordPieceSettings(manifest: Manifest): WordPieceSpec {
  const parsed = wordPieceSpec.safeParse(manifest.tokenizer);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `tokenizer.${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`the ${manifest.family} family needs WordPiece settings in manifest.json: ${problems.join("; ")}`);
  }
  return parsed.data;
}
