import type { VersionEvaluation, VersionFailure } from "./evaluate.js";
import { BASELINE_ONLY_MODELS, P99_BUDGET_MS, QUALITY_TARGETS } from "./targets.js";

export type Evaluated = VersionEvaluation | VersionFailure;

export interface TargetCheck {
  readonly model: string;
  readonly family: string;
  readonly version: string;
  readonly production: boolean;
  readonly target: string;
  readonly figure: string;
  readonly met: boolean;
}

/** Per-class recall is printed in full up to this many classes; beyond, only the weakest ones. */
const FULL_RECALL_LIST = 12;
const WEAKEST_SHOWN = 5;

function failed(e: Evaluated): e is VersionFailure {
  return "error" in e;
}

const fixed = (value: number | undefined, digits = 4): string =>
  value === undefined || Number.isNaN(value) ? "-" : value.toFixed(digits);

/** Columns padded to their widest cell, a rule under the header (also `switchboard models --live`). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, column) => Math.max(h.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** Every target of issue 3 against every evaluated family, production marked. */
export function targetChecks(evaluated: readonly Evaluated[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const ok = evaluated.filter((e): e is VersionEvaluation => !failed(e));
  for (const e of ok) {
    const base = { model: e.model, family: e.family, version: e.version, production: e.stage === "production" };
    for (const target of QUALITY_TARGETS.filter((t) => t.model === e.model)) {
      const values = target.metrics.map((m) => {
        const value = m.name === "accuracy" || m.name === "macroF1" ? e.test[m.name] : e.outOfScope?.[m.name];
        return { ...m, value };
      });
      checks.push({
        ...base,
        target: target.description,
        figure: values.map((v) => `${v.name} ${fixed(v.value)}`).join(", "),
        met: values.every((v) => v.value !== undefined && v.value >= v.atLeast),
      });
    }
    if (BASELINE_ONLY_MODELS.includes(e.model)) {
      const linear = ok.find((other) => other.model === e.model && other.family === "linear");
      const versusLinear = linear && e.family !== "linear" ? `, linear ${fixed(linear.test.macroF1)}` : "";
      checks.push({
        ...base,
        target: "macro-F1 above the majority-class baseline",
        figure: `macroF1 ${fixed(e.test.macroF1)} vs majority ${fixed(e.majority.macroF1)}${versusLinear}`,
        met: e.test.macroF1 > e.majority.macroF1,
      });
    }
    const budget = P99_BUDGET_MS[e.family];
    checks.push({
      ...base,
      target: `p99 <= ${budget} ms per inquiry, one at a time (${e.family})`,
      figure: `p99 ${fixed(e.oneAtATime.p99Ms, 2)} ms`,
      met: e.oneAtATime.p99Ms <= budget,
    });
  }
  return checks;
}

export interface MachineLoad {
  readonly cpus: number;
  /** One-minute load average when the run started and ended. */
  readonly loadAverage: { readonly start: number; readonly end: number };
}

export function renderReport(
  evaluated: readonly Evaluated[],
  checks: readonly TargetCheck[],
  machine: MachineLoad,
): string {
  const header = [
    "model",
    "family",
    "version",
    "stage",
    "n",
    "accuracy",
    "macro-F1",
    "ECE uncal->cal",
    "oos recall",
    "in-scope acc@thr",
    "p50 ms",
    "p99 ms",
    "inq/s @32",
  ];
  const rows: string[][] = [];
  const majorityShown = new Set<string>();
  for (const e of evaluated) {
    if (failed(e)) {
      rows.push([e.model, e.family, e.version, e.stage, "error", e.error]);
      continue;
    }
    if (!majorityShown.has(e.model)) {
      majorityShown.add(e.model);
      rows.push([
        e.model,
        "majority",
        "-",
        "-",
        String(e.majority.n),
        fixed(e.majority.accuracy),
        fixed(e.majority.macroF1),
        "-",
        "-",
        "-",
        "-",
        "-",
        "-",
      ]);
    }
    rows.push([
      e.model,
      e.family,
      e.version,
      e.stage,
      String(e.test.n),
      fixed(e.test.accuracy),
      fixed(e.test.macroF1),
      `${fixed(e.eceUncalibrated)}->${fixed(e.test.ece)}`,
      fixed(e.outOfScope?.oosRecall),
      fixed(e.outOfScope?.inScopeAccuracy),
      fixed(e.oneAtATime.p50Ms, 2),
      fixed(e.oneAtATime.p99Ms, 2),
      e.batched.inquiriesPerSecond.toFixed(0),
    ]);
  }
  const recall = evaluated
    .filter((e): e is VersionEvaluation => !failed(e))
    .map((e) => {
      const entries = Object.entries(e.test.perClassRecall).sort(([, a], [, b]) => a - b);
      const shown =
        entries.length <= FULL_RECALL_LIST
          ? entries.sort(([a], [b]) => a.localeCompare(b))
          : entries.slice(0, WEAKEST_SHOWN);
      const what = entries.length <= FULL_RECALL_LIST ? "" : ` (weakest ${WEAKEST_SHOWN} of ${entries.length})`;
      return `  ${e.model} ${e.family}${what}: ${shown.map(([label, r]) => `${label} ${r.toFixed(3)}`).join(", ")}`;
    });
  const targets = table(
    ["model", "family", "target", "figure", "met"],
    checks.map((c) => [c.model, c.family + (c.production ? " *" : ""), c.target, c.figure, c.met ? "met" : "NOT met"]),
  );
  return [
    "Held-out test split, through onnxruntime-node (1 intra-op thread); latency = predict() of one inquiry, tokenization included.",
    "In-scope rows only for accuracy/macro-F1/ECE; out-of-scope figures at the manifest's operating point (refused in-scope queries count as errors).",
    `Machine: ${machine.cpus} CPUs, load average ${machine.loadAverage.start.toFixed(2)} at the start, ${machine.loadAverage.end.toFixed(2)} at the end.`,
    "",
    table(header, rows),
    "",
    "Per-class recall:",
    ...recall,
    "",
    "Targets (issue 3; * = production):",
    targets,
  ].join("\n");
}
