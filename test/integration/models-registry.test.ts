import { execFile } from "node:child_process";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { createServingMetrics, openServedModel, productionVersionDir } from "../../models/index.js";
import { createPool } from "../../storage/postgres.js";
import { capturedLog, eventually, python, readManifest, tempModelsDir, train } from "./models-fixture.js";

const run = promisify(execFile);

const refused = (entry: Record<string, unknown>): boolean =>
  String(entry.msg).startsWith("production model version refused");

/**
 * The registry as training writes it (`python -m training train|rollback` against a schema of
 * this run's own), read by the Node side: production lookup, hot swap on rollback, a refused
 * production version, and `npm run eval` agreeing with training's own held-out metrics
 * (swaps on lifecycle records and shadow versions: model-lifecycle.test.ts).
 */
describe("model registry (real PostgreSQL, versions registered by the training CLI)", () => {
  const schema = `models_test_${process.pid}_${Date.now().toString(36)}`;
  const { log, entries } = capturedLog();
  let pool: pg.Pool;
  let modelsDir: string;
  let env: NodeJS.ProcessEnv;
  let first: string;
  let second: string;

  beforeAll(async () => {
    const endpoints = inject("endpoints");
    const { databaseUrl } = endpoints;
    pool = createPool(endpoints, "models-registry-test");
    modelsDir = tempModelsDir("models-registry");
    // A gate that promotes every candidate, so each training run changes production.
    env = {
      DATABASE_URL: databaseUrl,
      SWITCHBOARD_REGISTRY_SCHEMA: schema,
      SWITCHBOARD_GATE_MIN_GAIN: "-1",
      SWITCHBOARD_GATE_MAX_RECALL_DROP: "1",
    };
    await python(["-m", "training", "migrate"], env);
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await pool.end();
    rmSync(modelsDir, { recursive: true, force: true });
  });

  it("says clearly when a model has no production version, or the registry does not exist", async () => {
    await expect(productionVersionDir(pool, "sentiment", modelsDir, schema)).rejects.toThrow(
      /model sentiment has no production version in the registry/,
    );
    await expect(productionVersionDir(pool, "sentiment", modelsDir, `${schema}_absent`)).rejects.toThrow(
      /does not exist in this database: run `python -m training migrate`/,
    );
  });

  it("finds the production version directory training registered and promoted", async () => {
    ({ linear: first } = (await train(modelsDir, {
      task: "sentiment",
      family: "linear",
      limit: 600,
      register: true,
      env,
    })) as { linear: string });
    expect(await productionVersionDir(pool, "sentiment", modelsDir, schema)).toBe(first);
    ({ linear: second } = (await train(modelsDir, {
      task: "sentiment",
      family: "linear",
      limit: 600,
      seed: 1,
      register: true,
      env,
    })) as { linear: string });
    expect(await productionVersionDir(pool, "sentiment", modelsDir, schema)).toBe(second);
  });

  it("follows production: refuses a broken production version while the current one serves, takes it once fixed", async () => {
    const metrics = createServingMetrics(new Registry());
    const served = await openServedModel(pool, "sentiment", { modelsDir, pollMs: 100, metrics, log, schema });
    try {
      expect(served.current.directory).toBe(second);
      expect(served.shadow).toBeUndefined();
      // The version a rollback restores is damaged on disk before the registry points at it.
      const model = path.join(first, "model.onnx");
      copyFileSync(model, `${model}.intact`);
      writeFileSync(model, readFileSync(model).subarray(0, 1000));
      await python(["-m", "training", "rollback", "--model", "sentiment"], env);
      await eventually(() => entries.some((e) => refused(e) && e.directory === first), "the broken version to be refused");
      expect(served.current.directory).toBe(second);
      const { production } = await served.predict("the crew was lovely");
      expect(production.prediction.model).toBe(`sentiment@${path.basename(second)}`);
      expect(production.version.directory).toBe(second);

      copyFileSync(`${model}.intact`, model);
      await eventually(() => served.current.directory === first, "the repaired version to be swapped in");
      const refusal = entries.find(refused)!;
      expect((refusal.err as { message: string }).message).toMatch(/model\.onnx has sha256 .* \(corrupt or replaced\)/);
      expect(refusal.serving).toBe(path.basename(second));
      // Series start at 0 for every stage: the refusal is the production one's.
      expect((await metrics.refusals.get()).values.filter((v) => v.value > 0)).toMatchObject([{ labels: { model: "sentiment", stage: "production" } }]);
      // Counted once the replaced version is released, which follows the swap itself.
      await expect
        .poll(async () => (await metrics.swaps.get()).values.filter((v) => v.value > 0), { timeout: 10_000 })
        .toMatchObject([{ labels: { model: "sentiment", stage: "production", trigger: "poll" }, value: 1 }]);
    } finally {
      await served.close();
    }
  });

  it("npm run eval scores every registered family on the held-out split with training's own figures", async () => {
    await train(modelsDir, { task: "sentiment", family: "encoder", limit: 600, register: true, env });
    const output = path.join(modelsDir, "eval.json");
    const { stdout } = await run(
      "npx",
      ["tsx", "models/eval.ts", "--registry-schema", schema, "--latency-sample", "20", "--json", output],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, DATABASE_URL: env.DATABASE_URL, SWITCHBOARD_MODELS_DIR: modelsDir, LOG_LEVEL: "warn" },
        maxBuffer: 16 << 20,
      },
    );
    expect(stdout).toMatch(/Targets \(issues 3 and 13; \* = production\)/);
    expect(stdout).toMatch(/airline sentiment accuracy >= 0\.85/);

    const report = JSON.parse(readFileSync(output, "utf8")) as {
      versions: {
        version: string;
        family: string;
        stage: string;
        test: { n: number; accuracy: number; macroF1: number; ece: number };
        majority: { accuracy: number };
      }[];
      targets: { family: string; met: boolean }[];
    };
    expect(report.versions.map((v) => v.family).sort()).toEqual(["encoder", "linear"]);
    for (const evaluated of report.versions) {
      const manifest = readManifest(path.join(modelsDir, "sentiment", evaluated.version)) as unknown as {
        metrics: { test: { n: number; accuracy: number; macro_f1: number; ece: number } };
      };
      expect(evaluated.test.n).toBe(manifest.metrics.test.n);
      expect(evaluated.test.accuracy).toBeCloseTo(manifest.metrics.test.accuracy, 9);
      expect(evaluated.test.macroF1).toBeCloseTo(manifest.metrics.test.macro_f1, 9);
      expect(evaluated.test.ece).toBeCloseTo(manifest.metrics.test.ece, 5);
      expect(evaluated.majority.accuracy).toBeGreaterThan(0);
    }
    expect(report.targets.some((t) => t.family === "linear")).toBe(true);
  });
});
