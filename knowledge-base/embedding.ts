import type pg from "pg";
import type { Logger } from "pino";
import { openModelSlot, productionVersionDir, type ModelSlot } from "../models/index.js";
import type { ArticleContent } from "./articles.js";

/** The registry model that embeds the knowledge base and the inquiries searched in it. */
export const EMBEDDER_MODEL = "embedder";
/** Dimensions of its sentence embeddings (all-MiniLM-L6-v2, and the static table distilled from it). */
export const EMBEDDING_DIMS = 384;

/** Sentence embeddings for the knowledge base: the production `embedder` model, or any model with its shape. */
export interface TextEmbedder {
  /** name@version: recorded with every indexed article, so a new model version re-embeds them. */
  readonly model: string;
  /** One L2-normalized vector of EMBEDDING_DIMS per text, in order. */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
}

/** The embedder serving in a model slot; `model` follows the slot across hot swaps. */
export function slotEmbedder(slot: ModelSlot): TextEmbedder {
  return {
    get model() {
      return `${slot.current.name}@${slot.current.version}`;
    },
    embed: (texts) => slot.embed(texts),
  };
}

/**
 * Opens the production version of the embedder, checking its output width. Returns null (and
 * says why in the log) when there is none or it cannot serve: the knowledge base then works on
 * BM25 alone, which is worse but still answers.
 */
export async function openProductionEmbedder(pool: pg.Pool, modelsDir: string, log: Logger): Promise<ModelSlot | null> {
  const slot = await usableEmbedder(async () => openModelSlot(await productionVersionDir(pool, EMBEDDER_MODEL, modelsDir), log), log);
  if (slot === null) return null;
  if (!(await hasEmbeddingWidth(slot, log))) {
    await slot.close();
    return null;
  }
  return slot;
}

/**
 * The embedder `open` serves, if it serves one of the right width (a processor takes it from its
 * host's resources, which own it); null, saying why, when the knowledge base must do with BM25.
 */
export async function servedEmbedder(open: () => Promise<ModelSlot>, log: Logger): Promise<ModelSlot | null> {
  const slot = await usableEmbedder(open, log);
  return slot && (await hasEmbeddingWidth(slot, log)) ? slot : null;
}

async function usableEmbedder(open: () => Promise<ModelSlot>, log: Logger): Promise<ModelSlot | null> {
  try {
    return await open();
  } catch (error) {
    log.warn(
      { model: EMBEDDER_MODEL, reason: (error as Error).message },
      "no embedder to serve: the knowledge base is searched by BM25 only",
    );
    return null;
  }
}

async function hasEmbeddingWidth(slot: ModelSlot, log: Logger): Promise<boolean> {
  const [probe] = await slot.embed(["width check"]);
  if (probe?.length === EMBEDDING_DIMS) return true;
  log.warn(
    { model: EMBEDDER_MODEL, dimensions: probe?.length, expected: EMBEDDING_DIMS },
    "embedder has the wrong width: the knowledge base is searched by BM25 only",
  );
  return false;
}

/**
 * An article's vector: the normalized mean of the embeddings of its title and its example
 * questions. A centroid of the ways customers ask sits closer to a new phrasing of the same
 * request than the embedding of one long text would.
 */
export async function articleEmbedding(
  embedder: TextEmbedder,
  article: Pick<ArticleContent, "title" | "questions">,
): Promise<number[]> {
  const vectors = await embedder.embed([article.title, ...article.questions]);
  const mean = new Array<number>(EMBEDDING_DIMS).fill(0);
  for (const vector of vectors) {
    if (vector.length !== EMBEDDING_DIMS)
      throw new Error(`${embedder.model} returned ${vector.length} dimensions, expected ${EMBEDDING_DIMS}`);
    vector.forEach((x, i) => (mean[i]! += x));
  }
  const norm = Math.hypot(...mean);
  if (norm === 0) throw new Error(`${embedder.model} returned a zero vector for "${article.title}"`);
  return mean.map((x) => x / norm);
}
