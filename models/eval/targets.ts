import type { Family } from "../manifest.js";

/** What issue 3 asks of each model, on its held-out test set. */
export interface QualityTarget {
  readonly model: string;
  readonly description: string;
  readonly metrics: readonly {
    readonly name: "accuracy" | "macroF1" | "inScopeAccuracy" | "oosRecall";
    readonly atLeast: number;
  }[];
}

export const QUALITY_TARGETS: readonly QualityTarget[] = [
  { model: "intent", description: "Bitext intent macro-F1 >= 0.99", metrics: [{ name: "macroF1", atLeast: 0.99 }] },
  {
    model: "sentiment",
    description: "airline sentiment accuracy >= 0.85",
    metrics: [{ name: "accuracy", atLeast: 0.85 }],
  },
  {
    model: "intent-clinc150",
    description:
      "CLINC150 in-scope accuracy >= 0.93 (refusals count as errors) with out-of-scope recall >= 0.70, at the operating point",
    metrics: [
      { name: "inScopeAccuracy", atLeast: 0.93 },
      { name: "oosRecall", atLeast: 0.7 },
    ],
  },
];

/** Models with no absolute target: reported against the majority-class baseline and the linear family. */
export const BASELINE_ONLY_MODELS: readonly string[] = ["urgency", "department"];

/**
 * p99 of one inquiry per call on this machine. The ensemble runs the encoder (and the linear
 * graph beside it), so it gets the encoder's budget; a head runs its embedder (static: 0.1 ms) and a Gemm.
 */
export const P99_BUDGET_MS: Readonly<Record<Family, number>> = { linear: 1, encoder: 15, ensemble: 15, static: 1, head: 1 };
