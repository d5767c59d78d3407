/**
 * `npm run eval`: every registered model, each family side by side (production, else the newest
 * candidate or archived version), scored on its held-out test split through the real Node ONNX
 * sessions, with serving cost; CLINC150 versions also on the official test split; the models the
 * realistic set labels also on that set (training/datasets/realistic), with what the served
 * pipeline makes of them (department, urgency, review); checked against the targets of issues 3
 * and 13.
 */
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { createLogger } from "../config/log.js";
import { loadConfig } from "../config/settings.js";
import { createPool } from "../storage/postgres.js";
import { resolveEndpoints } from "../stack/index.js";
import { EMBEDDING_TASK } from "./manifest.js";
import { REGISTRY_SCHEMA, registeredVersions } from "./registry.js";
import { loadRulesFile } from "../processors/route/rules-file.js";
import { evaluateVersion, HeldOutCache, versionsToEvaluate } from "./eval/evaluate.js";
import { clinc150OfficialTest, type OfficialTest } from "./eval/held-out.js";
import { loadCombination } from "../processors/urgency/combination.js";
import {
  prepareRealistic,
  realisticPredictionFile,
  realisticReport,
  urgencyFeatureFile,
  type RealisticPredictions,
} from "./eval/realistic.js";
import { loadRealisticSet } from "./eval/realistic-set.js";
import { renderReport, targetChecks, type Evaluated } from "./eval/report.js";
import { evaluateToxicity, renderToxicity, TOXICITY_TASK, toxicityVersion, type ToxicityEvaluation } from "./eval/toxicity.js";

function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError("expected a positive integer");
  return parsed;
}

const program = new Command("npm run eval")
  .description(
    "held-out metrics and serving cost of every registered model version, per family, through onnxruntime-node",
  )
  .option("--json <path>", "also write the results as JSON to this file")
  .option("--model <names...>", "only these registry models")
  .option("--latency-sample <n>", "test inquiries timed one at a time per version", positiveInt, 300)
  .option("--batch-size <n>", "inquiries per predict() call for scoring and throughput", positiveInt, 32)
  .option("--registry-schema <schema>", "schema of the registry tables", REGISTRY_SCHEMA)
  .option("--no-realistic", "skip the realistic set")
  .option(
    "--urgency-features <path>",
    "write the urgency combination's inputs on the realistic set (production versions) for `python -m training urgency-fit`",
  )
  .option(
    "--realistic-predictions <path>",
    "write every version's prediction per realistic row (label, confidence, in-scope similarity of a head) as JSON, for `python -m training.paired`",
  )
  .parse();

const options = program.opts<{
  json?: string;
  model?: string[];
  latencySample: number;
  batchSize: number;
  registrySchema: string;
  realistic: boolean;
  urgencyFeatures?: string;
  realisticPredictions?: string;
}>();
const config = loadConfig();
// Logs go to stderr and only warnings: stdout is the report.
const log = createLogger({ logLevel: config.logLevel === "info" ? "warn" : config.logLevel }, "eval");
const pool = createPool(resolveEndpoints(config), "switchboard-eval");

try {
  const allRegistered = await registeredVersions(pool, config.modelsDir, options.registrySchema);
  const registered = allRegistered.filter(
    // The embedder has no labels, hence no held-out metric; the toxicity guardrail has its own section.
    (v) => v.task !== EMBEDDING_TASK && v.task !== TOXICITY_TASK && (!options.model || options.model.includes(v.model)),
  );
  const chosen = versionsToEvaluate(registered);
  // respond's reply guardrail (models/eval/toxicity.ts), with the rest or alone.
  const guardrailVersion = !options.model || options.model.includes("toxicity") ? toxicityVersion(allRegistered) : undefined;
  if (chosen.length === 0 && !guardrailVersion) {
    console.error(
      `no model versions to evaluate in the registry (schema ${options.registrySchema}): train some with \`switchboard train --task <task>\``,
    );
    process.exitCode = 1;
  } else {
    const loadAtStart = os.loadavg()[0]!;
    const heldOut = new HeldOutCache();
    const realisticSet = options.realistic && chosen.length > 0 ? await prepareRealistic(await loadRealisticSet()) : undefined;
    let officialTest: Promise<OfficialTest> | undefined;
    const extras = {
      ...(realisticSet && { realistic: realisticSet }),
      outOfScopeThreshold: config.outOfScopeThreshold,
      officialTest: () => (officialTest ??= clinc150OfficialTest()),
    };
    const evaluated: Evaluated[] = [];
    const realisticPredictions: RealisticPredictions[] = [];
    for (const version of chosen) {
      console.error(`evaluating ${version.model}@${version.version} (${version.family}, ${version.stage})`);
      try {
        const { realisticPredictions: predicted, ...evaluation } = await evaluateVersion(
          version,
          heldOut,
          options,
          log,
          extras,
        );
        evaluated.push(evaluation);
        if (predicted) realisticPredictions.push(predicted);
      } catch (error) {
        evaluated.push({
          model: version.model,
          version: version.version,
          family: version.family,
          stage: version.stage,
          error: (error as Error).message,
        });
      }
    }
    if (options.urgencyFeatures && realisticSet) {
      await mkdir(path.dirname(path.resolve(options.urgencyFeatures)), { recursive: true });
      const { rows, ...header } = urgencyFeatureFile(realisticSet, realisticPredictions);
      // One row a line: the file is committed beside the weights, and its diffs stay readable.
      const body = JSON.stringify({ ...header, rows: [] }, null, 1).replace(/"rows": \[\]/, `"rows": [\n${rows.map((r) => JSON.stringify(r)).join(",\n")}\n ]`);
      await writeFile(options.urgencyFeatures, `${body}\n`);
      console.error(`urgency combination inputs written to ${options.urgencyFeatures}`);
    }
    if (options.realisticPredictions && realisticSet) {
      await mkdir(path.dirname(path.resolve(options.realisticPredictions)), { recursive: true });
      const file = realisticPredictionFile(realisticSet, realisticPredictions);
      await writeFile(options.realisticPredictions, `${JSON.stringify(file)}\n`);
      console.error(`realistic predictions written to ${options.realisticPredictions}`);
    }
    const realistic =
      realisticSet &&
      realisticReport(
        realisticSet,
        realisticPredictions,
        chosen.map((v) => v.model),
        await loadRulesFile(config.routingRules),
        loadCombination(),
      );
    const checks = targetChecks(evaluated, realistic);
    // Latency depends on what else runs: say how busy the machine was.
    const machine = { cpus: os.cpus().length, loadAverage: { start: loadAtStart, end: os.loadavg()[0]! } };
    if (chosen.length > 0) console.log(renderReport(evaluated, checks, machine, realistic));
    let toxicity: ToxicityEvaluation | { error: string } | undefined;
    if (guardrailVersion) {
      console.error(`evaluating ${guardrailVersion.model}@${guardrailVersion.version} (reply guardrail)`);
      toxicity = await evaluateToxicity(guardrailVersion, log).catch((error: Error) => ({ error: error.message }));
      console.log(`\n${renderToxicity(toxicity)}`);
    }
    if (options.json) {
      await mkdir(path.dirname(path.resolve(options.json)), { recursive: true });
      await writeFile(
        options.json,
        `${JSON.stringify({ generatedAt: new Date().toISOString(), options, machine, versions: evaluated, realistic, targets: checks, toxicity }, null, 2)}\n`,
      );
    }
    if (evaluated.some((e) => "error" in e) || (toxicity && "error" in toxicity)) process.exitCode = 1;
  }
} finally {
  await pool.end();
}
