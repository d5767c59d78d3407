import type { Logger } from "pino";
import { coalescing, type BatchCall } from "../streams/coalescing.js";
import type { Prediction } from "./prediction.js";
import { loadModelVersion, MAX_BATCH, type LoadedModel, type LoadOptions } from "./version.js";

/**
 * Holds the serving version of one model. swap() loads and warms the new version, swaps it in
 * atomically, and releases the old one once its in-flight calls finish; on failure it throws and
 * the old version keeps serving. Concurrent calls are coalesced into shared batches.
 */
export interface ModelSlot {
  readonly current: LoadedModel;
  predict(texts: readonly string[]): Promise<Prediction[]>;
  /** As predict, each prediction with the version that made it (a swap may come between the call and its answer). */
  answer(texts: readonly string[]): Promise<Answer[]>;
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  swap(dir: string): Promise<void>;
  /** Stops serving: waits for a swap under way and for in-flight calls, then releases the model. */
  close(): Promise<void>;
}

/** One prediction and the version that made it. */
export interface Answer {
  readonly prediction: Prediction;
  readonly version: LoadedModel;
}

/** A version and the calls it is answering; `drained` is set while it waits to be released. */
interface Lease {
  readonly model: LoadedModel;
  inFlight: number;
  drained?: () => void;
}

class SwappableSlot implements ModelSlot {
  private lease: Lease;
  /** Swaps run one after another; this is the tail of that queue. */
  private swaps: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly answerBatch: BatchCall<string, Answer> = coalescing(
    (texts) => this.onCurrent(async (version) => (await version.predict(texts)).map((prediction) => ({ prediction, version }))),
    MAX_BATCH,
  );
  private readonly embedBatch: BatchCall<string, Float32Array> = coalescing((texts) => this.onCurrent((model) => model.embed(texts)), MAX_BATCH);

  constructor(
    model: LoadedModel,
    private readonly log: Logger,
    private readonly options: LoadOptions,
  ) {
    this.lease = { model, inFlight: 0 };
  }

  get current(): LoadedModel {
    return this.lease.model;
  }

  async predict(texts: readonly string[]): Promise<Prediction[]> {
    return (await this.answerBatch(texts)).map((answer) => answer.prediction);
  }

  answer(texts: readonly string[]): Promise<Answer[]> {
    return this.answerBatch(texts);
  }

  embed(texts: readonly string[]): Promise<Float32Array[]> {
    return this.embedBatch(texts);
  }

  /** Runs one call on the serving version; a swap meanwhile leaves the call on the version it started with. */
  private async onCurrent<T>(call: (model: LoadedModel) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error(`the model slot of ${this.lease.model.name} is closed`);
    const lease = this.lease;
    lease.inFlight++;
    try {
      return await call(lease.model);
    } finally {
      lease.inFlight--;
      if (lease.inFlight === 0) lease.drained?.();
    }
  }

  swap(dir: string): Promise<void> {
    const swapped = this.swaps.then(() => this.replace(dir));
    this.swaps = swapped.catch(() => undefined);
    return swapped;
  }

  private async replace(dir: string): Promise<void> {
    if (this.closed) throw new Error(`the model slot of ${this.lease.model.name} is closed`);
    const incoming = await loadModelVersion(dir, this.log, this.options);
    const outgoing = this.lease;
    this.lease = { model: incoming, inFlight: 0 };
    this.log.info(
      { model: incoming.name, from: outgoing.model.version, to: incoming.version },
      "model version swapped in",
    );
    await retire(outgoing);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.swaps;
    await retire(this.lease);
  }
}

/** Releases a version once no call is using it any more. */
async function retire(lease: Lease): Promise<void> {
  if (lease.inFlight > 0) await new Promise<void>((resolve) => (lease.drained = resolve));
  await lease.model.release();
}

/** `options.pool`: where the versions run (default: the process's inference pool). */
export async function openModelSlot(dir: string, log: Logger, options: LoadOptions = {}): Promise<ModelSlot> {
  return new SwappableSlot(await loadModelVersion(dir, log, options), log, options);
}
