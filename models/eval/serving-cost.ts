import type { Prediction } from "../prediction.js";
import type { LoadedModel } from "../version.js";
import { percentile } from "./metrics.js";

/** Calls before timing starts: JIT, allocator and caches settle, as in a processor that has been running. */
const WARM_UP_CALLS = 20;

export interface SingleInquiryCost {
  readonly calls: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Latency of predict() with one inquiry per call, tokenization included: what a processor pays per record. */
export async function oneAtATime(model: LoadedModel, texts: readonly string[]): Promise<SingleInquiryCost> {
  for (const text of texts.slice(0, WARM_UP_CALLS)) await model.predict([text]);
  const durations: number[] = [];
  for (const text of texts) {
    const started = performance.now();
    await model.predict([text]);
    durations.push(performance.now() - started);
  }
  return { calls: durations.length, p50Ms: percentile(durations, 50), p99Ms: percentile(durations, 99) };
}

/** All texts through predict() in calls of `batchSize`, in order; returns the predictions and the throughput. */
export async function inBatches(
  model: LoadedModel,
  texts: readonly string[],
  batchSize: number,
): Promise<{ predictions: Prediction[]; perSecond: number }> {
  const predictions: Prediction[] = [];
  const started = performance.now();
  for (let start = 0; start < texts.length; start += batchSize) {
    predictions.push(...(await model.predict(texts.slice(start, start + batchSize))));
  }
  const seconds = (performance.now() - started) / 1000;
  return { predictions, perSecond: texts.length / seconds };
}
