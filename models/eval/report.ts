import type { VersionEvaluation, VersionFailure } from "./evaluate.js";
import { ECE_BINS } from "./metrics.js";
import type { RealisticReport } from "./realistic.js";
import { BASELINE_ONLY_MODELS, P99_BUDGET_MS, QUALITY_TARGETS, REALISTIC_TARGETS } from "./targets.js";

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

/** Every target of issues 3 and 13 against every evaluated family, production marked. */
export function targetChecks(evaluated: readonly Evaluated[], realistic?: RealisticReport): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const ok = evaluated.filter((e): e is VersionEvaluation => !failed(e));
  for (const e of ok) {
    const base = { model: e.model, family: e.family, version: e.version, production: e.stage === "production" };
    for (const target of REALISTIC_TARGETS.filter((t) => t.model === e.model)) {
      const figures = target.figures(e, realistic);
      if (figures === undefined) continue;
      checks.push({
        ...base,
        target: target.description,
        figure: figures.map((f) => `${f.name} ${fixed(f.value)}`).join(", "),
        met: figures.every((f) => (f.atMost === undefined ? f.value >= f.atLeast! : f.value <= f.atMost)),
      });
    }
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

const share = (part: number, whole: number) => `${part} (${((100 * part) / whole).toFixed(1)} %)`;

/** The realistic set's table: each version on its model's labels, then the production pipeline. */
/** Per intent version with a point: on the English rows, what it catches and hands off beside classify's fallback. */
function englishOutOfScope(versions: RealisticReport["versions"]): string[] {
  const lines = versions.flatMap((v) => {
    const e = v.outOfScope?.english;
    if (!e) return [];
    const { point, fallback } = e;
    return [
      `  ${v.model} ${v.family}: at its point ${point.caught} of ${point.outOfScope} caught, ${point.handedOff} of ${point.inScope} in scope handed off ` +
        `(intent right on ${fixed(point.handedOffRight / point.handedOff, 3)} of them, ${fixed(point.answeredRight / (point.inScope - point.handedOff), 3)} of the rest); ` +
        `at the fallback (confidence ${fallback.threshold}) ${fallback.caught} of ${fallback.outOfScope}, ${fallback.handedOff} of ${fallback.inScope}; ` +
        `refused only at the point ${e.onlyAtPoint.rows} (${e.onlyAtPoint.outOfScope} out of scope), only at the fallback ${e.onlyAtFallback.rows} (${e.onlyAtFallback.outOfScope})`,
    ];
  });
  return lines.length > 0 ? ["", "Out of scope on the rows labelled English, the version's point beside classify's fallback threshold:", ...lines] : [];
}

export function renderRealistic(report: RealisticReport): string {
  const header = [
    "model",
    "family",
    "version",
    "stage",
    "n",
    "accuracy",
    "acc en/other",
    "macro-F1",
    "ECE",
    "majority acc",
    "oos thr",
    "oos recall",
    "oos precision",
    "in-scope acc@thr",
    "department acc",
    "served acc",
  ];
  const rows = report.versions.map((v) => [
    v.model,
    v.family,
    v.version,
    v.stage,
    String(v.scores.n),
    fixed(v.scores.accuracy),
    `${fixed(v.accuracyByLanguage.english, 3)}/${fixed(v.accuracyByLanguage.other, 3)}`,
    fixed(v.scores.macroF1),
    fixed(v.scores.ece),
    `${fixed(v.majority.accuracy)} (${v.majority.label})`,
    v.outOfScope
      ? `${fixed(v.outOfScope.threshold, 3)} ${v.outOfScope.source}${v.outOfScope.statistic === "confidence" ? "" : ` (${v.outOfScope.statistic})`}`
      : "-",
    fixed(v.outOfScope?.recall),
    fixed(v.outOfScope?.precision),
    fixed(v.outOfScope?.inScopeAccuracy),
    v.department ? `${fixed(v.department.accuracy)}${v.department.categoryFrom.includes(" ") ? " *" : ""}` : "-",
    fixed(v.served?.accuracy),
  ]);
  const weakest = report.versions
    .filter((v) => v.model === "intent")
    .map((v) => {
      const entries = Object.entries(v.scores.perClassRecall).sort(([a, x], [b, y]) => x - y || a.localeCompare(b));
      return `  intent ${v.family} (weakest ${WEAKEST_SHOWN} of ${entries.length}): ${entries
        .slice(0, WEAKEST_SHOWN)
        .map(([label, r]) => `${label} ${r.toFixed(3)}`)
        .join(", ")}`;
    });
  const lines = [
    `Realistic set: ${report.n} inquiries written for the project (training/datasets/realistic, sha256 ${report.sha256.slice(0, 12)}), ` +
      `${share(report.outOfScope, report.n)} out of scope, ${share(report.notEnglish, report.n)} not in English; each row through clean as served.`,
    `Intent and category on the in-scope rows, sentiment and urgency on all; ECE over ${ECE_BINS} equal-width confidence bins; majority = the set's most frequent label.`,
    "oos: out of scope at the intent version's operating point on confidence or, for a head, on in-scope similarity (the cosine to the nearest intent centroid; rows not in English get the fallback), or classify's fallback threshold on confidence (SWITCHBOARD_OUT_OF_SCOPE_THRESHOLD) when it has none; precision = refused rows that are out of scope.",
    "department acc: route's decideRoute with the routing rules, on this intent version and the category version of its family (* production's: none of its family).",
    "served acc: urgency as route serves it, the combination of this model's distribution, the signals and production intent and sentiment (processors/urgency/combination.ts; no repeat-contact history: every row is a first contact), OUT OF FOLD: the combination is fitted on this set, each row is scored with the weights fitted without its fold.",
    "",
    table(header, rows),
    ...(weakest.length > 0 ? ["", "Per-class recall on the realistic set:", ...weakest] : []),
    ...englishOutOfScope(report.versions),
  ];
  const p = report.pipeline;
  if (p) {
    const reasons = Object.entries(p.reviewReasons)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(", ");
    lines.push(
      "",
      `Served pipeline (production: ${p.versions.join(", ")}), ${p.n} inquiries:`,
      `  department ${fixed(p.department.accuracy)} (majority ${p.department.majority.label} ${fixed(p.department.majority.accuracy)}); ` +
        `urgency as served ${fixed(p.urgency.accuracy)}, macro-F1 ${fixed(p.urgency.macroF1)} (majority ${p.urgency.majority.label} ${fixed(p.urgency.majority.accuracy)}, macro-F1 ${fixed(p.urgency.majority.macroF1)})`,
      `  urgency ${p.urgency.calibration}`,
      `  urgency confusion (rows: agent's level, columns: served; low medium high critical): ${Object.entries(p.urgency.confusion)
        .map(([truth, row]) => `${truth} ${Object.values(row).join(" ")}`)
        .join("; ")}`,
      `  urgency review (low_confidence:urgency: unsure whether to act today) ${fixed(p.urgency.reviewRate, 3)} of the inquiries, urgency accuracy on the rest ${fixed(p.urgency.unflaggedAccuracy)}; ` +
        `act-today rows (high, critical) served lower: ${p.urgency.missedActToday.missed} of ${p.urgency.missedActToday.of}, ${p.urgency.missedActToday.flagged} of them flagged; ` +
        `flagged rows on the wrong side of act-today: ${p.urgency.flaggedWrongSide}`,
      `  human review ${fixed(p.reviewRate, 3)} of the inquiries, ${fixed(p.modelReviewRate, 3)} for a model's doubt (low_confidence:*, out_of_scope) (${reasons || "no reasons"}); on the ${p.unflagged} not flagged: intent accuracy ${fixed(p.unflaggedIntentAccuracy)}, urgency accuracy ${fixed(p.unflaggedUrgencyAccuracy)}`,
      ...(p.samples
        ? [
            `  demo samples (cli/samples, ${p.samples.n}, unlabelled; served weights): human review ${fixed(p.samples.reviewRate, 3)} (${
              Object.entries(p.samples.reviewReasons)
                .map(([reason, n]) => `${reason} ${n}`)
                .join(", ") || "no reasons"
            }), for a model's doubt ${fixed(p.samples.modelReviewRate, 3)}, low_confidence:urgency ${fixed(p.samples.urgencyReviewRate, 3)}; urgency levels ${Object.entries(p.samples.levels)
              .map(([level, n]) => `${level} ${n}`)
              .join(", ")}`,
          ]
        : []),
      `  clean's language detection ${fixed(p.languageAccuracy)} against the labelled language`,
      "  per labelled language (intent and category as served: the multilingual pair for a row not in English when both are in production):",
      ...[...Object.entries(p.byLanguage), ["not en", p.notEnglish] as const].map(
        ([language, l]) =>
          `    ${language} ${l.n}: intent ${fixed(l.intentAccuracy)}, category ${fixed(l.categoryAccuracy)}; human review ${fixed(l.reviewRate, 3)} (${
            Object.entries(l.reviewReasons)
              .map(([reason, n]) => `${reason} ${n}`)
              .join(", ") || "no reasons"
          }); on the ${l.unflagged} not flagged: intent ${fixed(l.unflaggedIntentAccuracy)}, category ${fixed(l.unflaggedCategoryAccuracy)}, sentiment ${fixed(l.unflaggedSentimentAccuracy)}, urgency ${fixed(l.unflaggedUrgencyAccuracy)}`,
      ),
    );
  }
  if (report.skipped.length > 0)
    lines.push(
      "",
      `Not scored on the realistic set: ${report.skipped.map((s) => `${s.model} (${s.reason})`).join("; ")}.`,
    );
  return lines.join("\n");
}

/** CLINC150 versions: the halved official validation split they were tested on, beside the official test split. */
export function renderOfficialTest(evaluated: readonly Evaluated[]): string | undefined {
  const clinc = evaluated.filter((e): e is VersionEvaluation => !failed(e) && e.officialTest !== undefined);
  if (clinc.length === 0) return undefined;
  const absent = clinc.find((e) => "absent" in e.officialTest!);
  const present = clinc.find((e) => !("absent" in e.officialTest!));
  const header = [
    "model",
    "family",
    "version",
    "stage",
    "split",
    "n",
    "accuracy",
    "macro-F1",
    "ECE",
    "oos recall",
    "in-scope acc@thr",
  ];
  const rows: string[][] = [];
  for (const e of clinc) {
    const split = (name: string, test: VersionEvaluation["test"], oos: VersionEvaluation["outOfScope"]) => [
      e.model,
      e.family,
      e.version,
      e.stage,
      name,
      `${test.n}+${oos?.outOfScope ?? 0}`,
      fixed(test.accuracy),
      fixed(test.macroF1),
      fixed(test.ece),
      fixed(oos?.oosRecall),
      fixed(oos?.inScopeAccuracy),
    ];
    rows.push(split("halved validation", e.test, e.outOfScope));
    const official = e.officialTest!;
    if ("absent" in official) rows.push([e.model, e.family, e.version, e.stage, "official test", "absent"]);
    else rows.push(split("official test", official.test, official.outOfScope));
  }
  const officialSha = present && !("absent" in present.officialTest!) ? present.officialTest!.sha256 : undefined;
  return [
    officialSha
      ? `CLINC150 official test split (data_full.json, sha256 ${officialSha}; official test queries that repeat a training query are left out), beside the halved official validation split the versions were tested on; n = in scope + out of scope, oos figures at the version's operating point:`
      : `CLINC150 official test split: the canonical file is not on this machine (${absent && "absent" in absent.officialTest! ? absent.officialTest.absent : "absent"}); only the halved validation split is reported.`,
    table(header, rows),
  ].join("\n");
}

export function renderReport(
  evaluated: readonly Evaluated[],
  checks: readonly TargetCheck[],
  machine: MachineLoad,
  realistic?: RealisticReport,
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
  const official = renderOfficialTest(evaluated);
  return [
    "Held-out test split, through onnxruntime-node (1 intra-op thread); latency = predict() of one inquiry, tokenization included.",
    "In-scope rows only for accuracy/macro-F1/ECE; out-of-scope figures at the manifest's operating point (refused in-scope queries count as errors).",
    `Machine: ${machine.cpus} CPUs, load average ${machine.loadAverage.start.toFixed(2)} at the start, ${machine.loadAverage.end.toFixed(2)} at the end.`,
    "",
    table(header, rows),
    "",
    "Per-class recall:",
    ...recall,
    ...(official ? ["", official] : []),
    ...(realistic ? ["", renderRealistic(realistic)] : []),
    "",
    "Targets (issues 3 and 13; * = production):",
    targets,
  ].join("\n");
}
