import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { readArticles } from "../../knowledge-base/articles.js";
import { loadModelVersion, type LoadedModel } from "../../models/version.js";
import { readMessages } from "../../processors/respond/messages.js";
import { retrievalReply, templateReply, type ReplyContext } from "../../processors/respond/templates.js";
import { checkToxicity, OFFENSIVE_LABEL, versionToxicity } from "../../processors/respond/toxicity.js";
import { bitextSample } from "./kb-fixture.js";
import { quietLog } from "../support/topics.js";
import { python, tempModelsDir } from "./models-fixture.js";

/**
 * The reply guardrail's model as respond serves it: `export-toxicity` converts alt-profanity-check's
 * trained model to ONNX; onnxruntime-node must give the package's own predict_proba, and the
 * guardrail must hold offensive replies back and pass the knowledge base's own replies.
 */

const PARITY_TOLERANCE = 1e-5;
interface HeldOutRow {
  readonly text: string;
  readonly label: string;
  readonly language: string;
  readonly split: string;
}
const heldOut: HeldOutRow[] = readFileSync(path.join(REPO_ROOT, "training/datasets/toxicity/held_out.jsonl"), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line) as HeldOutRow);

const messages = readMessages();
const context: ReplyContext = {
  entities: [{ type: "order_number", value: "48213" }],
  customer: { id: "c-1", email: null, name: "Dana", tier: null },
};
/** Every reply the knowledge base can draft: each article's template and its retrieval reply. */
const ownReplies = readArticles().flatMap((article) => [
  templateReply(article, context, messages),
  retrievalReply(article, context, messages),
]);

let modelsDir: string;
let version: LoadedModel;

beforeAll(async () => {
  modelsDir = tempModelsDir("toxicity");
  const { stdout } = await python(["-m", "training", "export-toxicity", "--no-register"], {
    SWITCHBOARD_MODELS_DIR: modelsDir,
  });
  const directory = /-> (\S+)$/m.exec(stdout)![1]!;
  version = await loadModelVersion(directory, quietLog, { pool: null });
}, 120_000);

afterAll(async () => {
  await version?.release();
  if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
});

/** P(offensive) from the package itself (profanity_check's vectorizer and calibrated SVMs, checked by hash). */
async function packageProbabilities(texts: readonly string[]): Promise<number[]> {
  const script = [
    "import json, sys",
    "from training.toxicity import load_package",
    "print(json.dumps(load_package().probabilities(json.loads(sys.argv[1])).tolist()))",
  ].join("\n");
  const { stdout } = await python(["-c", script, JSON.stringify(texts)]);
  return JSON.parse(stdout) as number[];
}

describe("the toxicity model", () => {
  it("is a two-label linear version with its threshold chosen on held-out validation replies", () => {
    expect(version.manifest).toMatchObject({
      model: "toxicity",
      task: "toxicity",
      family: "linear",
      labels: ["clean", OFFENSIVE_LABEL],
      parameters: { package: "alt-profanity-check", package_version: "1.9.1", languages: ["en"] },
    });
    const threshold = version.manifest.operating_point!.threshold;
    expect(threshold).toBeGreaterThan(0.05);
    expect(threshold).toBeLessThan(0.95);
  });

  it("gives the package's own predict_proba (within 1e-5) in Node, on replies, inquiries and other languages", async () => {
    const texts = [
      ...heldOut.map((row) => row.text),
      ...ownReplies.slice(0, 20),
      ...bitextSample(40, 5).map((request) => request.text),
      "",
      "ok",
      "FUCK!!! this",
      "Straße, Ärger, naïve café — déjà vu",
      "ｆｕｌｌ ｗｉｄｔｈ idiot",
      "line one\nline two\tstupid\r\n",
      "a".repeat(3000),
    ];
    const node = (await version.predict(texts)).map(
      (p) => p.ranked.find((entry) => entry.label === OFFENSIVE_LABEL)!.score,
    );
    const reference = await packageProbabilities(texts);
    const gaps = node.map((p, i) => Math.abs(p - reference[i]!));
    const worst = gaps.indexOf(Math.max(...gaps));
    expect(gaps[worst], `largest gap, on ${JSON.stringify(texts[worst])}`).toBeLessThanOrEqual(PARITY_TOLERANCE);
  });

  it("holds offensive English replies back and passes clean ones, on the held-out test rows", async () => {
    const guardrail = versionToxicity(version);
    const english = heldOut.filter((row) => row.split === "test" && row.language === "en");
    const held = await Promise.all(english.map(async (row) => (await checkToxicity(row.text, guardrail)).held));
    const offensive = english.filter((row) => row.label === "offensive").length;
    const caught = english.filter((row, i) => row.label === "offensive" && held[i]).length;
    const wronglyHeld = english.filter((row, i) => row.label === "clean" && held[i]).length;
    expect(caught / offensive, "recall of the offensive replies").toBeGreaterThanOrEqual(0.7);
    expect(wronglyHeld, "clean replies held back").toBeLessThanOrEqual(1);
  });

  it("names the score, the threshold and the version when it holds a reply back", async () => {
    const finding = await checkToxicity(
      "What a stupid question, read the website, you idiot.",
      versionToxicity(version),
    );
    expect(finding.held).toBe(true);
    expect(finding.reason).toMatch(
      new RegExp(`^toxicity [01]\\.\\d{3} >= threshold 0\\.\\d{3} \\(toxicity@${version.version}\\)$`),
    );
  });

  it("passes every reply the knowledge base drafts by template or retrieval", async () => {
    const guardrail = versionToxicity(version);
    const findings = await Promise.all(ownReplies.map((reply) => checkToxicity(reply, guardrail)));
    const held = findings.flatMap((f, i) => (f.held ? [`${f.reason}: ${ownReplies[i]!.slice(0, 80)}`] : []));
    expect(held).toEqual([]);
  });
});
