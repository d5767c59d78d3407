import type { InferencePool } from "./inference-pool.js";
import type { Prediction } from "./prediction.js";

/**
 * One loaded copy of each embedder version per process (and inference pool), shared by whoever
 * embeds with it: the knowledge base's production embedder and every `head` version trained on
 * it. Each text's embedding is kept for a while, so the heads of one inquiry (intent, category,
 * sentiment, urgency in a chain) share one embedding pass: the first asks for it, the others get
 * the same result, or the same pending run.
 */

/** What a shared embedder version needs from the loaded model underneath. */
export interface EmbeddingModel {
  readonly name: string;
  readonly version: string;
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  release(): Promise<void>;
}

/**
 * Texts kept per embedder version. Above what a chain has in flight (256 records, each asked for
 * by up to four heads within milliseconds), small in memory: 4,096 × 384 floats ≈ 6 MB.
 */
export const EMBEDDING_MEMO_ENTRIES = 4096;

/** Recent texts' embeddings, least recently used first; a failed run is forgotten, so it is tried again. */
export class EmbeddingMemo {
  private readonly entries = new Map<string, Promise<Float32Array>>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly run: (texts: readonly string[]) => Promise<Float32Array[]>,
    private readonly capacity = EMBEDDING_MEMO_ENTRIES,
  ) {}

  embed(texts: readonly string[]): Promise<Float32Array[]> {
    const missing: string[] = [];
    const pending = texts.map((text) => {
      const known = this.entries.get(text);
      if (known) {
        this.hits++;
        this.entries.delete(text);
        this.entries.set(text, known);
        return known;
      }
      this.misses++;
      missing.push(text);
      // A placeholder, replaced below once the run for every missing text has started.
      return undefined;
    });
    if (missing.length > 0) {
      const unique = [...new Set(missing)];
      const run = this.run(unique);
      unique.forEach((text, i) => {
        const embedding = run.then((rows) => rows[i]!);
        embedding.catch(() => {
          if (this.entries.get(text) === embedding) this.entries.delete(text);
        });
        this.entries.set(text, embedding);
      });
      while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    }
    return Promise.all(pending.map((known, i) => known ?? this.entries.get(texts[i]!)!));
  }
}

interface Entry {
  readonly loaded: Promise<{ model: EmbeddingModel; memo: EmbeddingMemo }>;
  holders: number;
}

/** A holder's view of a shared version: its embed goes through the memo, release lets go of this hold only. */
export interface EmbedderHold {
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  predict(texts: readonly string[]): Promise<Prediction[]>;
  release(): Promise<void>;
}

const INLINE = Symbol("main thread");

export class SharedEmbedders {
  private readonly entries = new Map<InferencePool | typeof INLINE, Map<string, Entry>>();

  /** The version in `directory` for `pool`, loaded by `load` unless a holder has it already. */
  async hold(directory: string, pool: InferencePool | null, load: () => Promise<EmbeddingModel>): Promise<EmbedderHold> {
    const key = pool ?? INLINE;
    let byDirectory = this.entries.get(key);
    if (!byDirectory) this.entries.set(key, (byDirectory = new Map()));
    let entry = byDirectory.get(directory);
    if (!entry) {
      const loaded = load().then((model) => ({ model, memo: new EmbeddingMemo((texts) => model.embed(texts)) }));
      const created: Entry = { loaded, holders: 0 };
      loaded.catch(() => {
        if (byDirectory.get(directory) === created) byDirectory.delete(directory);
      });
      byDirectory.set(directory, (entry = created));
    }
    entry.holders++;
    const held = entry;
    let shared: Awaited<Entry["loaded"]>;
    try {
      shared = await held.loaded;
    } catch (error) {
      held.holders--;
      throw error;
    }
    let released = false;
    return {
      embed: (texts) =>
        released ? Promise.reject(new Error(`${shared.model.name}@${shared.model.version} has been released`)) : shared.memo.embed(texts),
      predict: () => Promise.reject(new Error(`${shared.model.name}@${shared.model.version} is an embedding model: it has no labels to predict`)),
      release: async () => {
        if (released) return;
        released = true;
        if (--held.holders > 0) return;
        if (byDirectory.get(directory) === held) byDirectory.delete(directory);
        await shared.model.release();
      },
    };
  }
}
