import type { Tensor } from "onnxruntime-node";

export interface LabelScore {
  readonly label: string;
  readonly score: number;
}

export interface Prediction {
  /** The most probable label. */
  readonly label: string;
  /** Its calibrated probability (temperature scaling is baked into the graph). */
  readonly confidence: number;
  /** Every label, most probable first. */
  readonly ranked: readonly LabelScore[];
  /** "<name>@<version>" of the version that answered. */
  readonly model: string;
  /** Normalized sentence embedding, when the graph outputs one (encoder, ensemble). */
  readonly embedding?: Float32Array;
  /** Known n-grams in the input (linear, ensemble): a cheap out-of-vocabulary signal. */
  readonly activeFeatures?: number;
  /**
   * Cosine of the embedding to the mean direction of the training embeddings (the manifest's
   * reference `embedding` mean), when both exist: the embedding's drift signal as one number,
   * since a prediction record cannot carry 384 of them.
   */
  readonly centroidCosine?: number;
  /**
   * A head's cosine of its embedding to the nearest label centroid (its graph's
   * `in_scope_similarity`): the out-of-scope score of an intent version whose operating point is
   * on it (models/scope.ts).
   */
  readonly inScopeSimilarity?: number;
}

/** Graph outputs of one batch, as the session returned them. */
export interface BatchOutputs {
  readonly probabilities: Tensor;
  readonly active_features?: Tensor;
  readonly embedding?: Tensor;
  readonly in_scope_similarity?: Tensor;
}

/** One prediction per row of `outputs`; `labels` are the probability columns in order. */
export function toPredictions(outputs: BatchOutputs, labels: readonly string[], model: string): Prediction[] {
  const probabilities = outputs.probabilities.data as Float32Array;
  const rows = outputs.probabilities.dims[0]!;
  const embeddings = outputs.embedding?.data as Float32Array | undefined;
  const embeddingWidth = outputs.embedding?.dims[1] ?? 0;
  const activeFeatures = outputs.active_features?.data as Float32Array | undefined;
  const similarity = outputs.in_scope_similarity?.data as Float32Array | undefined;
  const width = labels.length;
  const predictions: Prediction[] = [];
  for (let row = 0; row < rows; row++) {
    const ranked = labels
      .map((label, column) => ({ label, score: probabilities[row * width + column]! }))
      .sort((a, b) => b.score - a.score);
    predictions.push({
      label: ranked[0]!.label,
      confidence: ranked[0]!.score,
      ranked,
      model,
      ...(embeddings && { embedding: embeddings.slice(row * embeddingWidth, (row + 1) * embeddingWidth) }),
      ...(activeFeatures && { activeFeatures: activeFeatures[row]! }),
      ...(similarity && { inScopeSimilarity: similarity[row]! }),
    });
  }
  return predictions;
}
