/**
 * `npm run bench:embedding`: the knowledge base's embedder options (issue 10) on real queries.
 * For each kind the training CLI exports (`export-embedder --kind K --no-register`, into a cache
 * directory the static recipe is reused from): retrieval top-1 and recall@3 of kNN alone and of
 * the fused ranking respond uses (BM25 + kNN, reciprocal rank fusion), BM25 alone as baseline,
 * on the retrieval test's realistic inquiries and two Bitext samples (the test's 200 rows and
 * 1,000 others), each against its own freshly loaded index; then the CPU per query embedding in
 * this process (onnxruntime-node, one thread, tokenization included, one text per call as
 * respond calls) and, for int8, the cosine to fp32 MiniLM on the same queries.
 *
 * BENCH_EMBEDDERS=static,minilm (default: all kinds), BENCH_MODELS_DIR (default: the tests'
 * embedder cache in the system temp directory, kept between runs).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Client } from "@elastic/elasticsearch";
import { elasticsearchOptions } from "../../config/security.js";
import { loadConfig, REPO_ROOT } from "../../config/settings.js";
import { readArticles } from "../../knowledge-base/articles.js";
import type { TextEmbedder } from "../../knowledge-base/embedding.js";
import { loadKnowledgeBase } from "../../knowledge-base/load.js";
import { loadModelVersion, type LoadedModel } from "../../models/version.js";
import { knowledgeBaseRetriever, type Ranker, type Retrieval } from "../../processors/respond/retrieval.js";
import { resolveEndpoints } from "../../stack/index.js";
import {
  bitextSample,
  EMBEDDER_CACHE_DIR,
  kbIndexName,
  type EmbedderKind,
  type LabelledRequest,
} from "../integration/kb-fixture.js";
import { REALISTIC } from "../integration/kb-queries.js";
import { quietLog } from "../support/topics.js";
import { percentile } from "./measure.js";

const run = promisify(execFile);
const KINDS = ["minilm", "minilm-int8", "static-distill", "static"] as const satisfies readonly EmbedderKind[];
type Kind = (typeof KINDS)[number];
const kinds = (process.env.BENCH_EMBEDDERS?.split(",") ?? KINDS).filter((k): k is Kind =>
  (KINDS as readonly string[]).includes(k),
);
const modelsDir = process.env.BENCH_MODELS_DIR ?? EMBEDDER_CACHE_DIR;
/** What respond embeds of a query (retrieval.ts, MAX_EMBEDDED_CHARS). */
const EMBEDDED_CHARS = 256;

const articles = readArticles();
const categoryOf = new Map(articles.map((a) => [a.intent, a.category]));
const QUERY_SETS: Readonly<Record<string, readonly LabelledRequest[]>> = {
  realistic: Object.entries(REALISTIC).flatMap(([intent, texts]) =>
    texts.map((text) => ({ text, intent, category: categoryOf.get(intent)! })),
  ),
  "bitext-200": bitextSample(200, 3),
  "bitext-1000": bitextSample(1000, 11),
};

async function exportKind(kind: Kind): Promise<string> {
  mkdirSync(modelsDir, { recursive: true });
  const venv = path.join(REPO_ROOT, ".venv", "bin", "python3");
  const { stdout } = await run(
    existsSync(venv) ? venv : "python3",
    ["-m", "training", "export-embedder", "--kind", kind, "--no-register"],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: "WARNING", SWITCHBOARD_MODELS_DIR: modelsDir },
      maxBuffer: 16 << 20,
    },
  );
  const directory = /-> (.+)$/m.exec(stdout)?.[1];
  if (!directory) throw new Error(`export-embedder printed no version directory: ${stdout}`);
  return directory.trim();
}

interface Quality {
  readonly top1: number;
  readonly recall3: number;
}

/** Top-1 and recall@3 of one ranking over a query set. */
function quality(results: readonly { retrieval: Retrieval; intent: string }[], ranker: Ranker | "fused"): Quality {
  let top1 = 0;
  let recall3 = 0;
  for (const { retrieval, intent } of results) {
    const ranked =
      ranker === "fused"
        ? retrieval.hits.map((hit) => hit.article.id)
        : retrieval.hits
            .filter((hit) => hit.ranks[ranker] !== null)
            .sort((a, b) => a.ranks[ranker]! - b.ranks[ranker]!)
            .map((hit) => hit.article.id);
    if (ranked[0] === intent) top1++;
    if (ranked.slice(0, 3).includes(intent)) recall3++;
  }
  return { top1: top1 / results.length, recall3: recall3 / results.length };
}

async function retrieveAll(client: Client, index: string, embedder: TextEmbedder | null) {
  const retriever = knowledgeBaseRetriever({ client, index, embedder });
  const out: Record<string, { retrieval: Retrieval; intent: string }[]> = {};
  for (const [name, requests] of Object.entries(QUERY_SETS)) {
    out[name] = [];
    for (const request of requests)
      out[name].push({ retrieval: await retriever.retrieve({ text: request.text }), intent: request.intent });
  }
  return out;
}

interface Cost {
  readonly cpuMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** CPU and wall time of one `embed([text])` call per query, after a warm pass. */
async function cost(model: LoadedModel, texts: readonly string[]): Promise<Cost> {
  for (const text of texts.slice(0, 50)) await model.embed([text]);
  const wall: number[] = [];
  const before = process.cpuUsage();
  for (const text of texts) {
    const started = performance.now();
    await model.embed([text]);
    wall.push(performance.now() - started);
  }
  const used = process.cpuUsage(before);
  wall.sort((a, b) => a - b);
  return {
    cpuMs: (used.user + used.system) / 1000 / texts.length,
    p50Ms: percentile(wall, 50),
    p99Ms: percentile(wall, 99),
  };
}

function cosines(a: readonly Float32Array[], b: readonly Float32Array[]): { mean: number; min: number; p5: number } {
  const values = a.map((x, i) => x.reduce((sum, v, j) => sum + v * b[i]![j]!, 0)).sort((p, q) => p - q);
  return { mean: values.reduce((s, v) => s + v, 0) / values.length, min: values[0]!, p5: percentile(values, 5) };
}

const pct = (q: Quality) => `${(100 * q.top1).toFixed(1)} / ${(100 * q.recall3).toFixed(1)}`;

async function main(): Promise<void> {
  const endpoints = resolveEndpoints(loadConfig());
  const client = new Client(elasticsearchOptions(endpoints));
  const texts = [
    ...new Set(Object.values(QUERY_SETS).flatMap((set) => set.map((r) => r.text.slice(0, EMBEDDED_CHARS)))),
  ];
  const rows: string[][] = [];
  const indices: string[] = [];
  const models = new Map<Kind, LoadedModel>();
  try {
    const lexicalIndex = kbIndexName("bench-bm25");
    indices.push(lexicalIndex);
    await loadKnowledgeBase(client, lexicalIndex, articles, { log: quietLog });
    const lexical = await retrieveAll(client, lexicalIndex, null);
    rows.push(["BM25 only", ...Object.keys(QUERY_SETS).map((s) => pct(quality(lexical[s]!, "bm25"))), "-", "", "", ""]);

    for (const kind of kinds) {
      process.stderr.write(`exporting ${kind} (the static kinds take minutes the first time)...\n`);
      const model = await loadModelVersion(await exportKind(kind), quietLog);
      models.set(kind, model);
      const embedder: TextEmbedder = { model: `${model.name}@${model.version}`, embed: (t) => model.embed(t) };
      const index = kbIndexName(`bench-${kind}`);
      indices.push(index);
      await loadKnowledgeBase(client, index, articles, { embedder, log: quietLog });
      const results = await retrieveAll(client, index, embedder);
      const spent = await cost(model, texts);
      for (const ranker of ["knn", "fused"] as const) {
        rows.push([
          `${kind} ${ranker === "knn" ? "kNN" : "fused"}`,
          ...Object.keys(QUERY_SETS).map((s) => pct(quality(results[s]!, ranker))),
          ranker === "knn" ? spent.cpuMs.toFixed(3) : "",
          ranker === "knn" ? spent.p50Ms.toFixed(2) : "",
          ranker === "knn" ? spent.p99Ms.toFixed(2) : "",
          ranker === "knn" ? model.version : "",
        ]);
      }
    }
    const header = [
      "ranking",
      ...Object.keys(QUERY_SETS).map((s) => `${s} (${QUERY_SETS[s]!.length}) top-1 / R@3 %`),
      "CPU ms/query",
      "p50 ms",
      "p99 ms",
      "version",
    ];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
    console.log(line(header));
    console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
    for (const row of rows) console.log(line(row));

    const fp32 = models.get("minilm");
    const int8 = models.get("minilm-int8");
    if (fp32 && int8) {
      const c = cosines(await fp32.embed(texts), await int8.embed(texts));
      console.log(
        `\nint8 vs fp32 MiniLM on ${texts.length} queries: cosine mean ${c.mean.toFixed(4)}, 5th percentile ${c.p5.toFixed(4)}, min ${c.min.toFixed(4)}`,
      );
    }
    console.log(
      `\n${texts.length} distinct queries (first ${EMBEDDED_CHARS} characters, as respond embeds); load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}, ${os.cpus().length} cores`,
    );
  } finally {
    for (const index of indices) await client.indices.delete({ index, ignore_unavailable: true });
    for (const model of models.values()) await model.release();
    await client.close();
  }
}

await main();
