import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import {
  prepareRealistic,
  realisticPredictionFile,
  realisticReport,
  type PreparedSet,
  type RealisticPredictions,
} from "../../models/eval/realistic.js";
import {
  loadRealisticSet,
  rowProblems,
  type RealisticRow,
  type RealisticSet,
} from "../../models/eval/realistic-set.js";
import { renderRealistic } from "../../models/eval/report.js";
import { loadRulesFile } from "../../processors/route/rules-file.js";
import { loadCombination } from "../../processors/urgency/combination.js";
import type { RoutingRules } from "../../processors/route/rules.js";

const config = loadConfig();
let set: RealisticSet;
let rules: RoutingRules;

beforeAll(async () => {
  set = await loadRealisticSet();
  rules = await loadRulesFile(config.routingRules);
});

/** The routing rules' department for a row's true intent (route's departmentOf on the truth). */
function rulesDepartment(row: RealisticRow): string {
  if (row.intent === set.labels.out_of_scope) return rules.defaultDepartment.name;
  return (rules.intents.get(row.intent) ?? rules.categories.get(row.category!.toLowerCase()) ?? rules.defaultDepartment)
    .name;
}

describe("the realistic evaluation set", () => {
  it("loads with unique ids and keeps its shares: size, a tenth out of scope, a tenth or more not in English", () => {
    const { rows, labels } = set;
    expect(rows.length).toBeGreaterThanOrEqual(labels.shares.min_rows);
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
    const oos = rows.filter((r) => r.intent === labels.out_of_scope).length / rows.length;
    expect(oos).toBeGreaterThanOrEqual(labels.shares.out_of_scope[0]);
    expect(oos).toBeLessThanOrEqual(labels.shares.out_of_scope[1]);
    expect(rows.filter((r) => r.language !== "en").length / rows.length).toBeGreaterThanOrEqual(
      labels.shares.min_not_english,
    );
    expect(new Set(rows.map((r) => r.intent))).toEqual(new Set([...Object.keys(labels.intents), labels.out_of_scope]));
    expect(new Set(rows.map((r) => r.language))).toEqual(new Set(labels.languages));
    expect(set.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("has the routing rules' departments, each row the rules' one for its intent unless a note says why", () => {
    expect(new Set(set.labels.departments)).toEqual(new Set(rules.departments.keys()));
    for (const row of set.rows) {
      if (row.department === rulesDepartment(row)) expect(row.note, row.id).toBeUndefined();
      else expect(row.note, `${row.id}: ${row.department} vs ${rulesDepartment(row)}`).toBeDefined();
    }
  });

  it("has the served models' intents and categories (every intent and category version on this machine)", () => {
    for (const [model, labels] of [
      ["intent", Object.keys(set.labels.intents)],
      ["category", [...new Set(Object.values(set.labels.intents))]],
    ] as const) {
      const dir = path.join(config.modelsDir, model);
      if (!existsSync(dir)) continue;
      for (const version of readdirSync(dir)) {
        const manifest = path.join(dir, version, "manifest.json");
        if (!existsSync(manifest)) continue;
        const known = (JSON.parse(readFileSync(manifest, "utf8")) as { labels: string[] }).labels;
        expect(new Set(known), manifest).toEqual(new Set(labels));
      }
    }
  });

  it("refuses rows outside the label spaces", () => {
    const good = set.rows[0]!;
    expect(rowProblems(good, set.labels)).toEqual([]);
    expect(rowProblems({ ...good, intent: "where_is_my_parcel" }, set.labels)[0]).toMatch(/neither a served intent/);
    expect(rowProblems({ ...good, category: "REFUND" }, set.labels)[0]).toMatch(/is not track_order's \(ORDER\)/);
    expect(rowProblems({ ...good, intent: "out_of_scope" }, set.labels)[0]).toMatch(/no category/);
    expect(rowProblems({ ...good, language: "it" }, set.labels)[0]).toMatch(/language "it"/);
    expect(rowProblems({ ...good, department: "sales" }, set.labels)[0]).toMatch(/department "sales"/);
  });
});

describe("the realistic report", () => {
  let prepared: PreparedSet;
  beforeAll(async () => {
    prepared = await prepareRealistic(set);
  });

  /** Predictions that are the truth: what a perfect version of each model would say. */
  function perfect(model: string, label: (row: RealisticRow) => string, confidence = () => 0.9): RealisticPredictions {
    return {
      model,
      family: "linear",
      version: `${model}-perfect`,
      stage: "production",
      predictions: prepared.rows.map(({ row }) => ({ label: label(row), confidence: confidence() })),
    };
  }

  it("runs every row through clean as served: model input, language, urgency signals", () => {
    expect(prepared.rows).toHaveLength(set.rows.length);
    // The quoted message below a reply is not part of what the models see.
    const reply = prepared.rows.find(({ row }) => row.id === "rs-0006")!;
    expect(reply.row.body).toContain("Good news! Your order 70114 is on its way.");
    expect(reply.input).not.toContain("Good news!");
    const languages = prepared.rows.filter(({ row, cleaned }) => cleaned.language === row.language).length;
    expect(languages / prepared.rows.length).toBeGreaterThan(0.9);
    expect(prepared.rows.some(({ signals }) => signals.includes("asap"))).toBe(true);
  });

  it("writes each version's prediction per row beside the truth, out of scope without one (for training.paired)", () => {
    const oos = set.labels.out_of_scope;
    const file = realisticPredictionFile(prepared, [perfect("intent", (row) => row.intent)]);
    expect(file.sha256).toBe(set.sha256);
    const [version] = file.versions;
    expect(version!.version).toBe("intent-perfect");
    expect(version!.rows.map((r) => r.id)).toEqual(set.rows.map((r) => r.id));
    for (const [i, row] of set.rows.entries()) {
      expect(version!.rows[i]).toEqual({
        id: row.id,
        language: row.language,
        truth: row.intent === oos ? null : row.intent,
        label: row.intent,
        confidence: 0.9,
        in_scope_similarity: null,
      });
    }
    const similar = realisticPredictionFile(prepared, [
      { ...perfect("intent", (row) => row.intent), predictions: prepared.rows.map(({ row }) => ({ label: row.intent, confidence: 0.9, inScopeSimilarity: 0.5 })) },
    ]);
    expect(similar.versions[0]!.rows.every((r) => r.in_scope_similarity === 0.5)).toBe(true);
  });

  it("compares a similarity point with the fallback on the English rows: caught, handed off, and what only one of them refuses", () => {
    const oos = set.labels.out_of_scope;
    const english = prepared.rows.filter(({ row }) => row.language === "en");
    const inScope = english.filter(({ row }) => row.intent !== oos).map(({ row }) => row);
    // The point applies to the rows clean detects as English (models/scope.ts); the rest get the fallback.
    const detected = (language: string) => language === "en" || language === "und";
    const englishOos = english.length - inScope.length;
    const caught = english.filter(({ row, cleaned }) => row.intent === oos && detected(cleaned.language)).length;
    // Out of scope: far from every centroid yet confident (only the point refuses them); two in-scope
    // English rows: near, but unsure (only the fallback refuses them); a third: far, and wrong.
    const [unsure1, unsure2, far] = english.filter(({ row, cleaned }) => row.intent !== oos && detected(cleaned.language)).map(({ row }) => row);
    const intent: RealisticPredictions = {
      ...perfect("intent", (row) => row.intent),
      predictions: prepared.rows.map(({ row }) =>
        row.intent === oos
          ? { label: "complaint", confidence: 0.9, inScopeSimilarity: 0.1 }
          : row === unsure1 || row === unsure2
            ? { label: row.intent, confidence: 0.2, inScopeSimilarity: 0.8 }
            : row === far
              ? { label: "complaint", confidence: 0.9, inScopeSimilarity: 0.2 }
              : { label: row.intent, confidence: 0.9, inScopeSimilarity: 0.8 },
      ),
      threshold: { value: 0.45, source: "operating point", statistic: "in-scope similarity", served: 0.4 },
    };
    const report = realisticReport(prepared, [intent], ["intent"], rules, loadCombination());
    expect(caught).toBeGreaterThan(0);
    expect(report.versions.find((v) => v.model === "intent")!.outOfScope!.english).toEqual({
      point: { caught, outOfScope: englishOos, handedOff: 1, handedOffRight: 0, inScope: inScope.length, answeredRight: inScope.length - 1 },
      fallback: { caught: 0, outOfScope: englishOos, handedOff: 2, handedOffRight: 2, inScope: inScope.length, answeredRight: inScope.length - 3, threshold: 0.4 },
      onlyAtPoint: { rows: caught + 1, outOfScope: caught },
      onlyAtFallback: { rows: 2, outOfScope: 0 },
    });
    expect(renderRealistic(report)).toContain(`at its point ${caught} of ${englishOos} caught, 1 of ${inScope.length} in scope handed off`);
  });

  it("scores perfect models as perfect, the department up to the rules' reach, out of scope at the threshold", () => {
    const oos = set.labels.out_of_scope;
    const intent: RealisticPredictions = {
      ...perfect("intent", (row) => (row.intent === oos ? "complaint" : row.intent)),
      predictions: prepared.rows.map(({ row }) =>
        row.intent === oos ? { label: "complaint", confidence: 0.1 } : { label: row.intent, confidence: 0.9 },
      ),
      threshold: { value: 0.4, source: "fallback" },
    };
    const predicted = [
      intent,
      perfect("category", (row) => row.category ?? "FEEDBACK"),
      perfect("sentiment", (row) => row.sentiment),
      // The urgency model knows low/medium/high; critical comes from the signals, or not at all.
      perfect("urgency", (row) => (row.urgency === "critical" ? "high" : row.urgency)),
    ];
    const report = realisticReport(
      prepared,
      predicted,
      ["intent", "category", "sentiment", "urgency", "intent-clinc150"],
      rules,
      loadCombination(),
    );
    const of = (model: string) => report.versions.find((v) => v.model === model)!;

    expect(report.n).toBe(set.rows.length);
    expect(of("intent").scores.accuracy).toBe(1);
    expect(of("intent").scores.n).toBe(set.rows.length - report.outOfScope);
    expect(of("intent").outOfScope).toMatchObject({
      recall: 1,
      precision: 1,
      inScopeAccuracy: 1,
      refused: report.outOfScope,
    });
    const reachable = set.rows.filter((row) => row.note === undefined).length / set.rows.length;
    expect(of("intent").department!.accuracy).toBeCloseTo(reachable, 12);
    expect(of("category").scores.accuracy).toBe(1);
    expect(of("sentiment").scores.accuracy).toBe(1);
    // ECE of right answers at 0.9 confidence: |1 − 0.9|.
    expect(of("sentiment").scores.ece).toBeCloseTo(0.1, 6);
    const critical = set.rows.filter((row) => row.urgency === "critical").length;
    expect(of("urgency").scores.accuracy).toBeCloseTo(1 - critical / set.rows.length, 12);
    expect(of("urgency").majority).toMatchObject({ label: "low" });

    // Urgency as served is the fitted combination, scored out of fold, and says so.
    const served = report.pipeline!.urgency;
    expect(served.calibration).toMatch(/^out of fold: 5-fold cross-validation/);
    const confused = Object.values(served.confusion).flatMap((row) => Object.values(row));
    expect(confused.reduce((a, b) => a + b, 0)).toBe(set.rows.length);
    expect(of("urgency").served!.accuracy).toBeCloseTo(served.accuracy, 12);
    expect(served.reviewRate).toBeGreaterThanOrEqual(0);
    expect(report.pipeline!.unflaggedUrgencyAccuracy).toBeGreaterThan(0);

    expect(report.pipeline!.department.accuracy).toBeCloseTo(reachable, 12);
    expect(report.pipeline!.reviewReasons["out_of_scope"]).toBe(report.outOfScope);
    expect(report.pipeline!.reviewReasons["unsupported_language"]).toBeGreaterThan(0);
    expect(report.skipped).toEqual([{ model: "intent-clinc150", reason: "CLINC150's 150 intents are not the shop's" }]);

    const text = renderRealistic(report);
    expect(text).toContain(`sha256 ${set.sha256.slice(0, 12)}`);
    expect(text).toContain("ECE over 15 equal-width confidence bins");
    expect(text).toContain("Served pipeline (production:");
    expect(text).toContain("OUT OF FOLD");
    expect(text).toContain("urgency out of fold: 5-fold cross-validation");
  });

  it("classifies a row not in English with the multilingual pair once both are in production, as classify does", () => {
    const oos = set.labels.out_of_scope;
    const english = (language: string) => language === "en" || language === "und";
    // The English pair is right only on what `clean` detects as English; the multilingual one on every row.
    const pair = (intent: string, category: string, rightOn: (language: string) => boolean): RealisticPredictions[] => [
      {
        ...perfect(intent, (row) => row.intent),
        predictions: prepared.rows.map(({ row, cleaned }) =>
          row.intent !== oos && rightOn(cleaned.language) ? { label: row.intent, confidence: 0.9 } : { label: "complaint", confidence: 0.9 },
        ),
        threshold: { value: 0.4, source: "fallback" },
      },
      {
        ...perfect(category, (row) => row.category ?? "FEEDBACK"),
        predictions: prepared.rows.map(({ row, cleaned }) => ({
          label: rightOn(cleaned.language) ? (row.category ?? "FEEDBACK") : "FEEDBACK",
          confidence: 0.9,
        })),
      },
    ];
    const rest = [perfect("sentiment", (row) => row.sentiment), perfect("urgency", (row) => row.urgency)];
    const multilingual = pair("intent-multilingual", "category-multilingual", () => true);
    const models = ["intent", "category", "sentiment", "urgency", "intent-multilingual", "category-multilingual"];
    const report = (stage: RealisticPredictions["stage"]) =>
      realisticReport(
        prepared,
        [...pair("intent", "category", english), ...rest, ...multilingual.map((p) => ({ ...p, stage }))],
        models,
        rules,
        loadCombination(),
      ).pipeline!;
    const listed = rules.languages.classifiedInLanguage.languages;
    const detected = (test: (language: string) => boolean) => prepared.rows.filter(({ cleaned }) => test(cleaned.language)).length;

    const served = report("production");
    expect(served.versions.some((v) => v.startsWith("intent-multilingual@"))).toBe(true);
    for (const language of ["de", "es", "fr", "pt"]) expect(served.byLanguage[language]!.intentAccuracy).toBe(1);
    // Classified in their language: only languages the rules do not list are flagged.
    expect(served.reviewReasons["unsupported_language"] ?? 0).toBe(detected((l) => !english(l) && !listed.has(l)));

    const candidates = report("candidate");
    expect(candidates.versions.some((v) => v.startsWith("intent-multilingual@"))).toBe(false);
    expect(candidates.byLanguage["de"]!.intentAccuracy).toBeLessThan(0.5);
    expect(candidates.reviewReasons["unsupported_language"]).toBe(detected((l) => !english(l)));
  });
});
