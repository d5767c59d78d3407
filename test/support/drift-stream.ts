import type { FeatureReference } from "../../drift/reference.js";
import type { Observation } from "../../drift/window.js";

function pick(rand: () => number, weights: readonly number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let u = rand() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i]!;
    if (u < 0) return i;
  }
  return weights.length - 1;
}

function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/**
 * One record drawn from the reference itself: categories by their shares, a histogram's value
 * uniform inside a bin chosen by its counts (an open last bin as wide as the one before), a
 * scalar and each embedding dimension normal with the reference's mean and std.
 */
export function drawFromReference(
  references: readonly FeatureReference[],
  rand: () => number,
): Record<string, string | number | number[]> {
  const record: Record<string, string | number | number[]> = {};
  for (const reference of references) {
    switch (reference.kind) {
      case "categorical": {
        const keys = Object.keys(reference.shares);
        record[reference.feature] =
          keys[
            pick(
              rand,
              keys.map((k) => reference.shares[k]!),
            )
          ]!;
        break;
      }
      case "histogram": {
        const b = pick(rand, reference.counts);
        const lo = reference.edges[b]!;
        const hi = reference.edges[b + 1] ?? lo + (lo - reference.edges[b - 1]!);
        record[reference.feature] = lo + rand() * (hi - lo);
        break;
      }
      case "scalar":
        record[reference.feature] = reference.mean + reference.std * normal(rand);
        break;
      case "vector":
        record[reference.feature] = reference.mean.map((m, i) => m + (reference.std?.[i] ?? 0.1) * normal(rand));
        break;
    }
  }
  return record;
}

/** A manifest `reference` as training/reference.py writes it, shaped like a real intent model's. */
export function intentReference(): Record<string, unknown> {
  const labels = Array.from({ length: 20 }, (_, i) => `intent_${String(i).padStart(2, "0")}`);
  const weights = labels.map((_, i) => 1 + (i % 5));
  const total = weights.reduce((a, b) => a + b, 0);
  const shares = Object.fromEntries(labels.map((label, i) => [label, weights[i]! / total]));
  return {
    label_distribution: { computed_on: "train", shares },
    prediction_distribution: { computed_on: "test", shares },
    confidence_histogram: {
      computed_on: "test",
      statistic: "max calibrated probability",
      edges: Array.from({ length: 21 }, (_, i) => Math.round((i / 20) * 100) / 100),
      open_ended: false,
      counts: [0, 0, 0, 0, 0, 0, 2, 3, 5, 8, 12, 15, 20, 28, 40, 60, 90, 140, 300, 1700],
    },
    input_length_histogram: {
      computed_on: "train",
      unit: "characters",
      edges: [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
      open_ended: true,
      counts: [60, 1642, 7142, 5574, 3300, 1200, 400, 80, 15, 5],
    },
    language_histogram: { computed_on: "train", shares: { en: 0.92, es: 0.05, fr: 0.03 } },
    features: [
      { name: "active_features", computed_on: "train", mean: 185.14, std: 43.5, quantiles: { "0.5": 190 } },
      {
        name: "embedding",
        computed_on: "train",
        dimensions: 8,
        mean: [0.31, -0.12, 0.05, 0.22, -0.3, 0.18, 0.09, -0.04],
        std: [0.11, 0.09, 0.14, 0.08, 0.12, 0.1, 0.07, 0.13],
      },
    ],
  };
}

export type Draw = (rand: () => number) => Observation;
