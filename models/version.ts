import { readFile } from "node:fs/promises";
import path from "node:path";
import { Tensor } from "onnxruntime-node";
import type { Logger } from "pino";
import { ModelLoadError } from "./errors.js";
import { textFeed, tokenFeeds, type IdTokenizer } from "./feeds.js";
import { inlineSession, sharedInferencePool, type InferencePool, type ModelSession } from "./inference-pool.js";
import { EMBEDDING_TASK, idTokenizerSettings, parseManifest, type EmbedderPin, type Manifest } from "./manifest.js";
import { readVerifiedFile } from "./onnx-session.js";
import { toPredictions, type BatchOutputs, type Prediction } from "./prediction.js";
import { SharedEmbedders } from "./shared-embedders.js";
import { signatureOf, signatureProblems, takesTokenIds, type Signature } from "./signature.js";
import { UnigramTokenizer } from "./unigram.js";
import { WordPieceTokenizer } from "./wordpiece.js";

/** One model version, loaded, checked and warm. */
export interface LoadedModel {
  readonly name: string;
  readonly version: string;
  /** Absolute path of the version directory. */
  readonly directory: string;
  readonly manifest: Manifest;
  /** One prediction per text, in order, all from this version. Fails for an embedding-only model. */
  predict(texts: readonly string[]): Promise<Prediction[]>;
  /** One L2-normalized sentence embedding per text, in order. Fails for a model without an `embedding` output (linear). */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  /** Frees the ONNX session; predict() and embed() fail afterwards. */
  release(): Promise<void>;
}

/** Rows per session run: larger calls are split, so padding and memory stay bounded. */
export const MAX_BATCH = 32;
/** A row joins a batch while it is at most this much longer (in tokens) than the batch's shortest. */
const PADDED_LENGTH_RATIO = 1.2;
const PADDED_TOKENS = 4;

/** Inquiry-like texts of different lengths: the first runs allocate and plan, not a customer's. */
const WARM_UP_TEXTS = [
  "Where is my order?",
  "I was charged twice for the same subscription and nobody answers my emails. Please refund the second payment today.",
  "Meine Rechnung ist falsch, bitte prüfen Sie das.",
];
/** Calibrated probabilities of a row sum to 1, embeddings have norm 1; further off, the output is not what it claims. */
const UNIT_TOLERANCE = 1e-3;

/**
 * Reads every file the manifest lists and checks its sha256; the bytes returned are the bytes
 * checked. `inWorker`, the model file, is left to the inference worker, which reads and checks
 * it itself (hashing a 90 MB encoder here would stall the event loop during a hot swap).
 */
async function readVerified(
  directory: string,
  manifest: Manifest,
  required: readonly string[],
  inWorker?: string,
): Promise<Map<string, Buffer>> {
  for (const name of required) {
    if (!(name in manifest.files)) throw new Error(`manifest.files has no checksum for ${name}`);
  }
  const files = new Map<string, Buffer>();
  for (const [name, expected] of Object.entries(manifest.files)) {
    if (name !== inWorker) files.set(name, await readVerifiedFile(directory, name, expected));
  }
  return files;
}

function tokenizerOf(manifest: Manifest, files: ReadonlyMap<string, Buffer>): IdTokenizer {
  const settings = idTokenizerSettings(manifest);
  if (settings.kind === "unigram") {
    return UnigramTokenizer.fromJson(files.get(settings.vocab)!.toString("utf8"), settings.max_length, settings.prefix);
  }
  const tokenizer = WordPieceTokenizer.fromVocabulary(files.get(settings.vocab)!.toString("utf8"), settings.max_length);
  const actual = tokenizer.special;
  const expected = settings.special_ids;
  if (
    actual.cls !== expected.cls ||
    actual.sep !== expected.sep ||
    actual.pad !== expected.pad ||
    actual.unk !== expected.unk
  ) {
    throw new Error(
      `${settings.vocab} has special ids ${JSON.stringify(actual)}, the manifest says ${JSON.stringify(expected)}`,
    );
  }
  return tokenizer;
}

function checkUnitRows(tensor: Tensor, what: string, norm: (row: Float32Array) => number): void {
  const [rows, width] = tensor.dims as [number, number];
  const data = tensor.data as Float32Array;
  for (let row = 0; row < rows; row++) {
    const value = norm(data.subarray(row * width, (row + 1) * width));
    if (!(Math.abs(value - 1) <= UNIT_TOLERANCE)) throw new Error(`${what} of a warm-up row is ${value}, not 1`);
  }
}

interface Row {
  readonly index: number;
  readonly text: string;
  readonly ids: readonly number[];
}

/** The unit mean of the training embeddings, from the manifest's reference (`features[]` entry `embedding`). */
function referenceCentroid(manifest: Manifest): Float32Array | undefined {
  const features = manifest.reference?.["features"];
  if (!Array.isArray(features)) return undefined;
  const entry = features.find((f: unknown) => typeof f === "object" && f !== null && (f as { name?: unknown }).name === "embedding") as { mean?: unknown } | undefined;
  if (!Array.isArray(entry?.mean) || !entry.mean.every((v) => typeof v === "number")) return undefined;
  const mean = Float32Array.from(entry.mean as number[]);
  const norm = Math.hypot(...mean);
  return norm > 0 ? mean.map((v) => v / norm) : undefined;
}

function cosine(embedding: Float32Array, unit: Float32Array): number {
  if (embedding.length !== unit.length) return Number.NaN;
  let dot = 0;
  let norm = 0;
  for (let i = 0; i < embedding.length; i++) {
    dot += embedding[i]! * unit[i]!;
    norm += embedding[i]! * embedding[i]!;
  }
  return norm > 0 ? dot / Math.sqrt(norm) : 0;
}

class OnnxModel implements LoadedModel {
  readonly name: string;
  readonly version: string;
  private readonly id: string;
  /** The training embeddings' mean direction, for centroidCosine. */
  private readonly centroid: Float32Array | undefined;
  private released = false;

  constructor(
    readonly directory: string,
    readonly manifest: Manifest,
    private readonly signature: Signature,
    private readonly session: ModelSession,
    private readonly tokenizer: IdTokenizer | undefined,
    /** A head's embedder (the version it was trained on), held while the head is loaded. */
    private readonly embedder?: { readonly pin: EmbedderPin; readonly model: LoadedModel },
  ) {
    this.name = manifest.model;
    this.version = manifest.version;
    this.id = `${manifest.model}@${manifest.version}`;
    this.centroid = referenceCentroid(manifest);
  }

  predict(texts: readonly string[]): Promise<Prediction[]> {
    if (!this.signature.outputs.includes("probabilities"))
      return Promise.reject(new Error(`${this.id} is an embedding model: it has no labels to predict`));
    return this.inBatches(texts, (outputs) => {
      const predictions = toPredictions(outputs, this.manifest.labels, this.id);
      const centroid = this.centroid;
      if (!centroid) return predictions;
      return predictions.map((p) => (p.embedding ? { ...p, centroidCosine: cosine(p.embedding, centroid) } : p));
    });
  }

  embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (!this.signature.outputs.includes("embedding"))
      return Promise.reject(new Error(`${this.id} (${this.manifest.family}) outputs no embedding`));
    return this.inBatches(texts, (outputs) => {
      const [rows, width] = outputs.embedding!.dims as [number, number];
      const data = outputs.embedding!.data as Float32Array;
      return Array.from({ length: rows }, (_, row) => data.slice(row * width, (row + 1) * width));
    });
  }

  /** Runs the rows in batches of at most MAX_BATCH and puts each batch's results back in input order. */
  private async inBatches<T>(texts: readonly string[], convert: (outputs: BatchOutputs) => T[]): Promise<T[]> {
    if (this.released) throw new Error(`${this.id} has been released`);
    const results = new Array<T>(texts.length);
    for (const batch of this.batches(texts)) {
      const converted = convert(await this.run(batch));
      batch.forEach((row, i) => (results[row.index] = converted[i]!));
    }
    return results;
  }

  /**
   * Token-id rows of similar length go together, so little is padded: a batch of mixed lengths
   * costs an encoder more per text than running them one by one (tickets: 15.4 against 11.6 ms).
   */
  private batches(texts: readonly string[]): Row[][] {
    const rows = texts.map((text, index) => ({ index, text, ids: this.tokenizer?.encode(text) ?? [] }));
    if (this.tokenizer) rows.sort((a, b) => a.ids.length - b.ids.length);
    const batches: Row[][] = [];
    for (const row of rows) {
      const batch = batches.at(-1);
      const shortest = batch?.[0]?.ids.length ?? 0;
      if (batch && batch.length < MAX_BATCH && row.ids.length <= shortest * PADDED_LENGTH_RATIO + PADDED_TOKENS) batch.push(row);
      else batches.push([row]);
    }
    return batches;
  }

  private async run(rows: readonly Row[]): Promise<BatchOutputs> {
    const embedding = this.embedder && (await this.embeddingFeed(rows));
    // Tokenized here, fed in the session's thread: the feeds are built again if a crashed worker's run is retried.
    const feeds = (): Record<string, Tensor> => ({
      ...(embedding && { embedding }),
      ...("text" in this.signature.inputs && { text: textFeed(rows.map((row) => row.text)) }),
      ...(this.tokenizer &&
        tokenFeeds(
          rows.map((row) => row.ids),
          this.tokenizer,
        )),
    });
    const outputs = (await this.session.run(feeds)) as unknown as BatchOutputs;
    // A head's graph does not output the embedding it was fed; its predictions carry it all the same.
    return embedding && !outputs.embedding ? { ...outputs, embedding } : outputs;
  }

  /** A head's input: the rows' embeddings from its embedder (shared with every other head of the same texts). */
  private async embeddingFeed(rows: readonly Row[]): Promise<Tensor> {
    const { pin, model } = this.embedder!;
    const embeddings = await model.embed(rows.map((row) => row.text));
    const data = new Float32Array(rows.length * pin.dimensions);
    embeddings.forEach((embedding, row) => {
      if (embedding.length !== pin.dimensions) {
        throw new Error(`${model.name}@${model.version} gave ${embedding.length} dimensions, ${this.id} takes ${pin.dimensions}`);
      }
      data.set(embedding, row * pin.dimensions);
    });
    return new Tensor("float32", data, [rows.length, pin.dimensions]);
  }

  /**
   * Runs the warm-up texts together and checks the outputs against the manifest (label count,
   * probabilities summing to 1, embedding width and norm), then runs them one at a time, the
   * way processors call.
   */
  async warmUp(): Promise<void> {
    const { labels, onnx } = this.manifest;
    const outputs = await this.run(
      WARM_UP_TEXTS.map((text, index) => ({ index, text, ids: this.tokenizer?.encode(text) ?? [] })),
    );
    for (const name of this.signature.outputs) {
      const rows = outputs[name]?.dims[0];
      if (rows !== WARM_UP_TEXTS.length) throw new Error(`${name} has ${rows} rows for ${WARM_UP_TEXTS.length} inputs`);
    }
    if (this.signature.outputs.includes("probabilities")) {
      const width = outputs.probabilities.dims[1];
      if (width !== labels.length) {
        throw new Error(
          `the model outputs ${width} probabilities per row but the manifest lists ${labels.length} labels (${labels.join(", ")})`,
        );
      }
      checkUnitRows(outputs.probabilities, "the sum of the probabilities", (row) => row.reduce((sum, p) => sum + p, 0));
    }
    if (outputs.embedding) {
      const declared = onnx.outputs.embedding?.shape[1];
      if (typeof declared === "number" && outputs.embedding.dims[1] !== declared) {
        throw new Error(`embedding has ${outputs.embedding.dims[1]} dimensions, the manifest says ${declared}`);
      }
      checkUnitRows(outputs.embedding, "the norm of the embedding", (row) => Math.hypot(...row));
    }
    const single = this.signature.outputs.includes("probabilities")
      ? (text: string) => this.predict([text])
      : (text: string) => this.embed([text]);
    for (const text of WARM_UP_TEXTS) await single(text);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
    await this.embedder?.model.release();
  }
}

export interface LoadOptions {
  /** Where the session runs: a pool's worker, or null for the main thread. Default: the process's pool (SWITCHBOARD_INFERENCE_THREADS). */
  readonly pool?: InferencePool | null;
}

/** Every embedder version loaded in this process, shared by its holders (shared-embedders.ts). */
const sharedEmbedders = new SharedEmbedders();

async function readManifest(directory: string): Promise<Manifest> {
  let manifestText: string;
  try {
    manifestText = await readFile(path.join(directory, "manifest.json"), "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      code === "ENOENT" ? "manifest.json is missing" : `manifest.json cannot be read (${(error as Error).message})`,
      { cause: error },
    );
  }
  return parseManifest(manifestText);
}

/**
 * Loads a version directory for serving: validates manifest.json, verifies every file against
 * its sha256 (the bytes checked are the bytes loaded), creates the session (in an inference
 * worker unless the pool is null), checks the graph's inputs and outputs against the family and
 * the manifest, and warms it up. Anything wrong is a ModelLoadError naming the directory and the
 * problem; nothing is left allocated.
 *
 * An embedder version is loaded once per process and pool and shared (with a memo of recent
 * texts) by every caller that loads it; a `head` version holds the embedder version it names,
 * found beside its own model in the models directory (`<root>/<embedder.model>/<embedder.version>`).
 */
export async function loadModelVersion(dir: string, log: Logger, options: LoadOptions = {}): Promise<LoadedModel> {
  const directory = path.resolve(dir);
  const pool = options.pool === undefined ? sharedInferencePool(log) : options.pool;
  let manifest: Manifest;
  try {
    manifest = await readManifest(directory);
  } catch (error) {
    throw new ModelLoadError(directory, (error as Error).message);
  }
  if (manifest.task !== EMBEDDING_TASK) return loadOnnxVersion(directory, manifest, log, pool);
  const hold = await sharedEmbedders.hold(directory, pool, () => loadOnnxVersion(directory, manifest, log, pool));
  return { name: manifest.model, version: manifest.version, directory, manifest, ...hold };
}

/** The embedder a head was trained on, checked against the head's pin. */
async function pinnedEmbedder(
  directory: string,
  manifest: Manifest,
  log: Logger,
  pool: InferencePool | null,
): Promise<{ pin: EmbedderPin; model: LoadedModel }> {
  const pin = manifest.embedder!;
  const id = `${pin.model}@${pin.version}`;
  const embedderDirectory = path.resolve(directory, "..", "..", pin.model, pin.version);
  let model: LoadedModel;
  try {
    model = await loadModelVersion(embedderDirectory, log, { pool });
  } catch (error) {
    throw new Error(`the embedder it was trained on, ${id}, cannot be served: ${(error as Error).message}`, { cause: error });
  }
  const actual = model.manifest.files[model.manifest.onnx.file];
  const width = model.manifest.onnx.outputs.embedding?.shape[1];
  const input = manifest.onnx.inputs.embedding?.shape[1];
  const problem =
    actual !== pin.sha256
      ? `${id}'s ${model.manifest.onnx.file} has sha256 ${actual}, the head was trained on ${pin.sha256}`
      : width !== pin.dimensions || input !== pin.dimensions
        ? `${id} outputs ${width} dimensions and the head takes ${input}, the manifest pins ${pin.dimensions}`
        : undefined;
  if (problem) {
    await model.release();
    throw new Error(problem);
  }
  return { pin, model };
}

async function loadOnnxVersion(
  directory: string,
  manifest: Manifest,
  log: Logger,
  sessionPool: InferencePool | null,
): Promise<LoadedModel> {
  const started = performance.now();
  // A head's run is one Gemm over a 384-wide row: less work than a round trip to a worker.
  const pool = manifest.family === "head" ? null : sessionPool;
  let session: ModelSession | undefined;
  let embedder: { pin: EmbedderPin; model: LoadedModel } | undefined;
  try {
    const signature = signatureOf(manifest);
    const vocab = takesTokenIds(signature) ? idTokenizerSettings(manifest).vocab : undefined;
    const file = manifest.onnx.file;
    const files = await readVerified(directory, manifest, vocab ? [file, vocab] : [file], pool ? file : undefined);
    const tokenizer = vocab ? tokenizerOf(manifest, files) : undefined;
    if (manifest.family === "head") embedder = await pinnedEmbedder(directory, manifest, log, sessionPool);
    session = pool
      ? await pool.open({ model: `${manifest.model}@${manifest.version}`, directory, file, sha256: manifest.files[file]! })
      : await inlineSession(files.get(file)!, file);
    const problems = signatureProblems(manifest, session);
    if (problems.length > 0) throw new Error(problems.join("; "));
    const model = new OnnxModel(directory, manifest, signature, session, tokenizer, embedder);
    try {
      await model.warmUp();
    } catch (error) {
      throw new Error(`warm-up failed: ${(error as Error).message}`, { cause: error });
    }
    log.info(
      {
        model: manifest.model,
        version: manifest.version,
        family: manifest.family,
        task: manifest.task,
        directory,
        loadMs: Math.round(performance.now() - started),
        inference: pool ? "worker" : "main thread",
        ...(embedder && { embedder: `${embedder.model.name}@${embedder.model.version}` }),
      },
      "model version loaded",
    );
    return model;
  } catch (error) {
    await session?.release().catch(() => undefined);
    await embedder?.model.release().catch(() => undefined);
    // The problem text already holds the underlying message; a `cause` would repeat it in the logs.
    throw new ModelLoadError(directory, (error as Error).message);
  }
}
