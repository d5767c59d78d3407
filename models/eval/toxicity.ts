import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { REPO_ROOT } from "../../config/settings.js";
import { readArticles } from "../../knowledge-base/articles.js";
import { readMessages } from "../../processors/respond/messages.js";
import { retrievalReply, templateReply, type ReplyContext } from "../../processors/respond/templates.js";
import { checkToxicity, OFFENSIVE_LABEL, TOXICITY_MODEL, versionToxicity } from "../../processors/respond/toxicity.js";
import type { RegisteredVersion } from "../registry.js";
import { loadModelVersion } from "../version.js";
import { percentile } from "./metrics.js";
import { table } from "./report.js";

/**
 * `npm run eval`'s section on respond's reply guardrail: the production `toxicity` version on the
 * test rows of training/datasets/toxicity/held_out.jsonl (its threshold was chosen on the
 * validation rows), by language, as the model alone and as the guardrail (which also scores the
 * reply with disguised letters undone), plus the knowledge base's own replies it must pass and
 * the cost of one check per reply.
 */

export const TOXICITY_TASK = "toxicity";
export const HELD_OUT_FILE = "training/datasets/toxicity/held_out.jsonl";
const WARM_UP_CALLS = 20;

export interface BinaryFigures {
  readonly n: number;
  readonly precision: number;
  readonly recall: number;
  readonly f1: number;
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
  readonly tn: number;
}

export interface ToxicityEvaluation {
  readonly model: string;
  readonly version: string;
  readonly stage: RegisteredVersion["stage"];
  readonly threshold: number;
  readonly languages: readonly string[];
  /** Offensive-class figures on the test rows, per language and for all of them. */
  readonly model_only: Readonly<Record<string, BinaryFigures>>;
  readonly guardrail: Readonly<Record<string, BinaryFigures>>;
  /** Template and retrieval replies of every article: all must pass. */
  readonly ownReplies: { readonly n: number; readonly held: readonly string[] };
  /** checkToxicity() of one reply per call (one or two model runs), one intra-op thread. */
  readonly perReply: { readonly calls: number; readonly p50Ms: number; readonly p99Ms: number };
}

interface HeldOutRow {
  readonly text: string;
  readonly label: string;
  readonly language: string;
  readonly split: string;
}

async function heldOutTest(): Promise<HeldOutRow[]> {
  const text = await readFile(path.join(REPO_ROOT, HELD_OUT_FILE), "utf8");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as HeldOutRow)
    .filter((row) => row.split === "test");
}

export function binaryFigures(truth: readonly boolean[], flagged: readonly boolean[]): BinaryFigures {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  truth.forEach((t, i) => {
    if (t && flagged[i]) tp++;
    else if (flagged[i]) fp++;
    else if (t) fn++;
    else tn++;
  });
  const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
  const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { n: truth.length, precision, recall, f1, tp, fp, fn, tn };
}

function byLanguage(rows: readonly HeldOutRow[], flagged: readonly boolean[]): Record<string, BinaryFigures> {
  const languages = [...new Set(rows.map((row) => row.language))].sort();
  const figures = (keep: (row: HeldOutRow) => boolean) => {
    const picked = rows.flatMap((row, i) => (keep(row) ? [i] : []));
    return binaryFigures(
      picked.map((i) => rows[i]!.label === OFFENSIVE_LABEL),
      picked.map((i) => flagged[i]!),
    );
  };
  return {
    ...Object.fromEntries(languages.map((language) => [language, figures((row) => row.language === language)])),
    all: figures(() => true),
  };
}

function ownReplies(): string[] {
  const messages = readMessages();
  const context: ReplyContext = {
    entities: [{ type: "order_number", value: "48213" }],
    customer: { id: "c-1", email: null, name: "Dana", tier: null },
  };
  return readArticles().flatMap((article) => [
    templateReply(article, context, messages),
    retrievalReply(article, context, messages),
  ]);
}

/** The production toxicity version, else the newest one; undefined when none is registered. */
export function toxicityVersion(registered: readonly RegisteredVersion[]): RegisteredVersion | undefined {
  const versions = registered.filter((v) => v.model === TOXICITY_MODEL);
  return versions.find((v) => v.stage === "production") ?? versions.at(-1);
}

export async function evaluateToxicity(registered: RegisteredVersion, log: Logger): Promise<ToxicityEvaluation> {
  const model = await loadModelVersion(registered.directory, log);
  try {
    const guardrail = versionToxicity(model);
    const threshold = model.manifest.operating_point!.threshold;
    const rows = await heldOutTest();
    const scores = (await model.predict(rows.map((row) => row.text))).map(
      (p) => p.ranked.find((entry) => entry.label === OFFENSIVE_LABEL)!.score,
    );
    const findings = await Promise.all(rows.map((row) => checkToxicity(row.text, guardrail)));
    const replies = ownReplies();
    const replyFindings = await Promise.all(replies.map((reply) => checkToxicity(reply, guardrail)));
    const timed = [...replies, ...rows.map((row) => row.text)];
    for (const text of timed.slice(0, WARM_UP_CALLS)) await checkToxicity(text, guardrail);
    const durations: number[] = [];
    for (const text of timed) {
      const started = performance.now();
      await checkToxicity(text, guardrail);
      durations.push(performance.now() - started);
    }
    const parameters = model.manifest.parameters as { languages?: string[] };
    return {
      model: model.name,
      version: model.version,
      stage: registered.stage,
      threshold,
      languages: parameters.languages ?? [],
      model_only: byLanguage(
        rows,
        scores.map((score) => score >= threshold),
      ),
      guardrail: byLanguage(
        rows,
        findings.map((f) => f.held),
      ),
      ownReplies: {
        n: replies.length,
        held: replyFindings.flatMap((f, i) => (f.held ? [`${f.reason}: ${replies[i]!.slice(0, 60)}`] : [])),
      },
      perReply: { calls: durations.length, p50Ms: percentile(durations, 50), p99Ms: percentile(durations, 99) },
    };
  } finally {
    await model.release();
  }
}

const fixed = (value: number, digits = 3) => value.toFixed(digits);

export function renderToxicity(result: ToxicityEvaluation | { readonly error: string }): string {
  const title = "Reply guardrail (respond): toxicity, offensive class, held-out test rows of " + HELD_OUT_FILE;
  if ("error" in result) return [title, `  ${result.error}`].join("\n");
  const languages = Object.keys(result.guardrail);
  const rows = languages.flatMap((language) =>
    (["model_only", "guardrail"] as const).map((kind) => {
      const f = result[kind][language]!;
      return [
        language + (language !== "all" && !result.languages.includes(language) ? " (not covered)" : ""),
        kind === "model_only" ? "model" : "guardrail",
        String(f.n),
        fixed(f.precision),
        fixed(f.recall),
        fixed(f.f1),
        `${f.tp}/${f.fp}/${f.fn}/${f.tn}`,
      ];
    }),
  );
  return [
    title,
    `${result.model}@${result.version} (${result.stage}), threshold ${fixed(result.threshold, 4)} on P(offensive), chosen on the validation rows; ` +
      `languages the model covers: ${result.languages.join(", ") || "-"}. guardrail = also scored with disguised letters undone (1d10t).`,
    "",
    table(["language", "as", "n", "precision", "recall", "F1", "tp/fp/fn/tn"], rows),
    "",
    `Knowledge-base replies (template and retrieval of every article): ${result.ownReplies.n - result.ownReplies.held.length} of ${result.ownReplies.n} pass` +
      (result.ownReplies.held.length > 0 ? `; held: ${result.ownReplies.held.join(" | ")}` : "."),
    `Cost per reply, checkToxicity() one at a time: p50 ${fixed(result.perReply.p50Ms, 2)} ms, p99 ${fixed(result.perReply.p99Ms, 2)} ms (${result.perReply.calls} calls).`,
  ].join("\n");
}
