import type { Family } from "../manifest.js";
import type { VersionEvaluation } from "./evaluate.js";
import type { RealisticReport } from "./realistic.js";

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

/** One figure of an issue-13 target and its bound. */
export interface BoundedFigure {
  readonly name: string;
  readonly value: number;
  readonly atLeast?: number;
  readonly atMost?: number;
}

/** What issue 13 asks (its acceptance criteria), on the realistic set and CLINC150's official test split. */
export interface RealisticTarget {
  readonly model: string;
  readonly description: string;
  /** The figures of one version, or undefined when it has none to check (the set or the file absent). */
  readonly figures: (e: VersionEvaluation, realistic: RealisticReport | undefined) => BoundedFigure[] | undefined;
}

const onRealistic = (e: VersionEvaluation, realistic: RealisticReport | undefined) =>
  realistic?.versions.find((v) => v.model === e.model && v.version === e.version);

export const REALISTIC_TARGETS: readonly RealisticTarget[] = [
  {
    model: "intent",
    description: "realistic set intent accuracy >= 0.93 with ECE <= 0.05 (issue 13)",
    figures: (e, realistic) => {
      const v = onRealistic(e, realistic);
      return (
        v && [
          { name: "accuracy", value: v.scores.accuracy, atLeast: 0.93 },
          { name: "ECE", value: v.scores.ece, atMost: 0.05 },
        ]
      );
    },
  },
  {
    model: "intent-clinc150",
    description: "CLINC150 official test in-scope accuracy >= 0.97 (issue 13)",
    figures: (e) =>
      e.officialTest && !("absent" in e.officialTest)
        ? [{ name: "accuracy", value: e.officialTest.test.accuracy, atLeast: 0.97 }]
        : undefined,
  },
  {
    model: "intent-clinc150",
    description:
      "CLINC150 official test at the operating point: out-of-scope recall >= 0.85 with in-scope accuracy >= 0.95 (issue 13)",
    figures: (e) =>
      e.officialTest && !("absent" in e.officialTest) && e.officialTest.outOfScope
        ? [
            { name: "oosRecall", value: e.officialTest.outOfScope.oosRecall, atLeast: 0.85 },
            { name: "inScopeAccuracy", value: e.officialTest.outOfScope.inScopeAccuracy, atLeast: 0.95 },
          ]
        : undefined,
  },
  {
    model: "sentiment",
    description: "airline sentiment accuracy >= 0.87 (issue 13)",
    figures: (e) => [{ name: "accuracy", value: e.test.accuracy, atLeast: 0.87 }],
  },
];
