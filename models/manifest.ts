import { fileURLToPath } from "node:url";
import { z } from "zod";

/**
 * manifest.json of a model version. models/manifest.schema.json is its one description: training
 * validates every manifest against it before writing it. The zod schema below is that file in zod
 * (for the `Manifest` type and serving's messages); test/unit/models-manifest-schema.test.ts proves
 * both accept and refuse the same manifests (test/fixtures/manifest-cases.json, real versions) and
 * that FAMILIES and EMBEDDING_TASK are the schema's. Open fields (metrics, reference distributions,
 * lineage) are kept as written for whoever reads them, e.g. drift detection.
 */

/** models/manifest.schema.json's path, for whoever validates with the JSON Schema itself. */
export const MANIFEST_SCHEMA_FILE = fileURLToPath(new URL("./manifest.schema.json", import.meta.url));

/**
 * `static`: a token-embedding table (the knowledge base's distilled `embedder`), no classifier.
 * `head`: a classifier over the sentence embedding of the embedder version it names (`embedder`),
 * so every head of an inquiry shares one embedding pass.
 */
export const FAMILIES = ["linear", "encoder", "ensemble", "static", "head"] as const;
export type Family = (typeof FAMILIES)[number];

/** The task of a version that only embeds text (the knowledge base's `embedder`): no labels, no probabilities. */
export const EMBEDDING_TASK = "embedding";

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "a lowercase hex sha256");
const fileName = z.string().regex(/^(?!\.\.?$)[^/\\]+$/, "a plain file name inside the version directory (not . or ..)");
// JSON Schema's "object": not null, not an array.
const openObject = z.record(z.string(), z.unknown());

const tensorSpec = z.looseObject({ type: z.string(), shape: z.array(z.union([z.string(), z.number().int()])) });

const wordPieceSpec = z.looseObject({
  kind: z.literal("wordpiece"),
  vocab: fileName,
  max_length: z.number().int().min(3),
  special_ids: z.looseObject({ cls: z.number().int(), sep: z.number().int(), pad: z.number().int(), unk: z.number().int() }),
});

/** The multilingual encoder's tokenizer (models/unigram.ts); training/models/multilingual.py writes it. */
const unigramSpec = z.looseObject({
  kind: z.literal("unigram"),
  vocab: fileName,
  max_length: z.number().int().min(3),
  prefix: z.string(),
});

/** The schema's `if kind is wordpiece then $defs/wordPiece`: other kinds need only a kind. */
const tokenizerSpec = z.looseObject({ kind: z.string() }).check((ctx) => {
  if (ctx.value.kind !== "wordpiece") return;
  const parsed = wordPieceSpec.safeParse(ctx.value);
  for (const issue of parsed.error?.issues ?? []) {
    ctx.issues.push({ code: "custom", message: issue.message, path: issue.path, input: ctx.value });
  }
});

/** The one embedder version a head was trained on, and so the only one it can be served with. */
const embedderPinSpec = z.looseObject({
  model: z.string().min(1),
  version: z.string().min(1),
  family: z.string().min(1),
  dimensions: z.number().int().min(1),
  /** sha256 of that version's model.onnx (its manifest.files entry). */
  sha256,
});

/** Intent models (CLINC150 and the served Bitext one): below `threshold` an inquiry is out of scope; `statistic` says on what (models/scope.ts). */
const operatingPointSpec = z.looseObject({
  threshold: z.number().min(0).max(1),
  statistic: z.string().optional(),
  rule: z.string().optional(),
  /** false: measured and reported, not used by classify (which takes the configured fallback). */
  served: z.boolean().optional(),
});

export const manifestSchema = z
  .looseObject({
    schema_version: z.literal(1),
    model: z.string().min(1),
    task: z.string().min(1),
    family: z.enum(FAMILIES),
    version: z.string().min(1),
    created_at: z.string().min(1),
    labels: z
      .array(z.string().min(1))
      .refine((labels) => new Set(labels).size === labels.length, "labels must be unique"),
    training_data_digest: sha256.nullable(),
    dataset: openObject.nullable(),
    parameters: openObject,
    training_seconds: z.number().min(0),
    calibration: openObject.nullable(),
    metrics: openObject,
    operating_point: operatingPointSpec.nullable(),
    onnx: z.looseObject({
      file: fileName,
      inputs: z.record(z.string(), tensorSpec),
      outputs: z.record(z.string(), tensorSpec),
    }),
    tokenizer: tokenizerSpec,
    reference: openObject.nullable(),
    files: z.record(fileName, sha256),
    embedder: embedderPinSpec.optional(),
  })
  .refine((m) => m.family !== "head" || m.embedder !== undefined, {
    message: "a head version names the embedder version it was trained on",
    path: ["embedder"],
  })
  .refine((m) => (m.task === EMBEDDING_TASK ? m.labels.length === 0 : m.labels.length >= 2), {
    message: `a classifier lists at least two labels; an ${EMBEDDING_TASK} model none`,
    path: ["labels"],
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type OperatingPoint = z.infer<typeof operatingPointSpec>;
export type WordPieceSpec = z.infer<typeof wordPieceSpec>;
export type UnigramSpec = z.infer<typeof unigramSpec>;
export type EmbedderPin = z.infer<typeof embedderPinSpec>;

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

/** The token-id tokenizer a family that takes ids names: Unigram (kind `unigram`) or WordPiece. */
export function idTokenizerSettings(manifest: Manifest): WordPieceSpec | UnigramSpec {
  if (manifest.tokenizer.kind !== "unigram") return wordPieceSettings(manifest);
  const parsed = unigramSpec.safeParse(manifest.tokenizer);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `tokenizer.${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`the unigram tokenizer settings in manifest.json are invalid: ${problems.join("; ")}`);
  }
  return parsed.data;
}
