/**
 * `npm run bench:inference`: each production model (the registry's, when DATABASE_URL is set and
 * has one; else the newest version directory under SWITCHBOARD_MODELS_DIR) run on the main thread
 * and in the inference pool. Two measures per model and mode:
 *  - batch: rows/s and ms per row, calls of MAX_BATCH rows one after another (tokenization included);
 *  - load: CONCURRENCY callers each predicting one inquiry at a time through a model slot, as a
 *    processor's records in flight do, for BENCH_SECONDS; rows/s, and the main thread's
 *    event-loop delay (perf_hooks monitorEventLoopDelay, p99 and max), which is what the
 *    processor's Kafka and Elasticsearch I/O waits behind.
 * BENCH_MODELS=intent,embedder limits the models. The figures depend on the machine's load, which
 * the report prints.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import os from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import pg from "pg";
import pino from "pino";
import { postgresOptions } from "../../config/security.js";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { resolveEndpoints } from "../../stack/index.js";
import {
  EMBEDDING_TASK,
  InferencePool,
  MAX_BATCH,
  openModelSlot,
  productionVersionDir,
  type LoadedModel,
  type ModelSlot,
} from "../../models/index.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const BATCH_ROWS = Number(process.env.BENCH_BATCH_ROWS ?? 640);

const config = loadConfig();
const log = pino({ level: "warn" });

interface Row {
  model: string;
  family: string;
  mode: string;
  batchRowsPerSecond: number;
  batchMsPerRow: number;
  loadRowsPerSecond: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

function sampleTexts(): string[] {
  const samples = JSON.parse(readFileSync(path.join(REPO_ROOT, "cli/samples/sample-inquiries.json"), "utf8")) as {
    subject: string | null;
    body: string;
  }[];
  return samples.map((s) => (s.subject ? `${s.subject}\n${s.body}` : s.body));
}

async function versionDirs(): Promise<Map<string, string>> {
  const wanted = process.env.BENCH_MODELS?.split(",").filter(Boolean);
  const models = readdirSync(config.modelsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && (!wanted || wanted.includes(entry.name)))
    .map((entry) => entry.name)
    .sort();
  const registry = config.databaseUrl ? new pg.Pool({ ...postgresOptions(resolveEndpoints(config)), max: 1 }) : undefined;
  const dirs = new Map<string, string>();
  try {
    for (const model of models) {
      const production = await registry
        ?.query("SELECT 1")
        .then(() => productionVersionDir(registry, model, config.modelsDir))
        .catch(() => undefined);
      const newest = readdirSync(path.join(config.modelsDir, model)).sort().at(-1);
      const dir = production ?? (newest && path.join(config.modelsDir, model, newest));
      if (dir) dirs.set(model, dir);
    }
  } finally {
    await registry?.end();
  }
  return dirs;
}

/**
 * Every text is made new (a serial number appended): an embedder keeps recent texts' embeddings
 * (models/shared-embedders.ts), and a text seen before would measure the memo, not the model.
 */
let serial = 0;
const call = (model: LoadedModel | ModelSlot, embeds: boolean, texts: string[]): Promise<unknown[]> => {
  const fresh = texts.map((text) => `${text} ${++serial}`);
  return embeds ? model.embed(fresh) : model.predict(fresh);
};

async function measure(dir: string, mode: string, pool: InferencePool | null, texts: string[]): Promise<Row> {
  const slot = await openModelSlot(dir, log, { pool });
  const model = slot.current;
  const embeds = model.manifest.task === EMBEDDING_TASK;
  try {
    const batches = Array.from({ length: Math.ceil(BATCH_ROWS / MAX_BATCH) }, (_, b) =>
      Array.from({ length: MAX_BATCH }, (_, i) => texts[(b * MAX_BATCH + i) % texts.length]!),
    );
    await call(model, embeds, batches[0]!);
    // The faster of two passes: a busy machine's other work slows one pass, not the model.
    let batchMs = Infinity;
    for (let pass = 0; pass < 2; pass++) {
      const started = performance.now();
      for (const batch of batches) await call(model, embeds, batch);
      batchMs = Math.min(batchMs, performance.now() - started);
    }
    const batchRows = batches.length * MAX_BATCH;

    const delay = monitorEventLoopDelay({ resolution: 1 });
    let rows = 0;
    const deadline = performance.now() + SECONDS * 1000;
    delay.enable();
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, caller) => {
        for (let i = caller; performance.now() < deadline; i += CONCURRENCY) {
          await call(slot, embeds, [texts[i % texts.length]!]);
          rows++;
        }
      }),
    );
    const loadMs = performance.now() - started;
    delay.disable();
    return {
      model: model.name,
      family: model.manifest.family,
      mode,
      batchRowsPerSecond: (batchRows / batchMs) * 1000,
      batchMsPerRow: batchMs / batchRows,
      loadRowsPerSecond: (rows / loadMs) * 1000,
      loopP99Ms: delay.percentile(99) / 1e6,
      loopMaxMs: delay.max / 1e6,
    };
  } finally {
    await slot.close();
  }
}

function table(rows: readonly Row[]): string {
  const header = [
    "model",
    "family",
    "inference",
    "batch rows/s",
    "batch ms/row",
    "load rows/s",
    "loop delay p99 ms",
    "loop delay max ms",
  ];
  const lines = rows.map((r) => [
    r.model,
    r.family,
    r.mode,
    r.batchRowsPerSecond.toFixed(0),
    r.batchMsPerRow.toFixed(2),
    r.loadRowsPerSecond.toFixed(0),
    r.loopP99Ms.toFixed(1),
    r.loopMaxMs.toFixed(1),
  ]);
  return [header, header.map(() => "---"), ...lines].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

async function main(): Promise<void> {
  const dirs = await versionDirs();
  if (dirs.size === 0)
    throw new Error(`no model versions under ${config.modelsDir}: train some first (\`switchboard train --defaults\`)`);
  const texts = sampleTexts();
  const threads = Math.max(1, config.inferenceThreads);
  const pool = new InferencePool({ threads, log });
  const rows: Row[] = [];
  const loadBefore = os.loadavg()[0]!;
  try {
    for (const [name, dir] of dirs) {
      console.error(`${name}: ${path.relative(config.modelsDir, dir)}`);
      rows.push(await measure(dir, "main thread", null, texts));
      rows.push(await measure(dir, `pool (${threads} thread${threads > 1 ? "s" : ""})`, pool, texts));
    }
  } finally {
    await pool.close();
  }
  console.log(
    `\n${rows.length / 2} models; batch: ${Math.ceil(BATCH_ROWS / MAX_BATCH)} calls of ${MAX_BATCH} rows; load: ${CONCURRENCY} concurrent one-row callers through a slot for ${SECONDS} s`,
  );
  console.log(
    `machine: ${os.availableParallelism()} cores, load average ${loadBefore.toFixed(1)} before, ${os.loadavg()[0]!.toFixed(1)} after\n`,
  );
  console.log(table(rows));
}

await main();
