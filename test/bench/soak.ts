/**
 * `npm run bench:soak`: the pipeline as `switchboard up` deploys it (the triage chain and the
 * processors in no chain) on a private stack, at a fixed offered load for SOAK_MINUTES (default
 * 60): every SOAK_SAMPLE_SECONDS each process's RSS and CPU (from /proc, with its children), the
 * heap each Node process keeps alive (after its latest full garbage collection), the
 * consumer lag and error counters (from the private Prometheus), and received → response latency
 * of the inquiries answered in the interval. Reports each process's RSS and kept-heap slopes (MB/h, least
 * squares over the samples after the warm-up), the errors' growth, latency percentiles per
 * interval and overall, and every inquiry answered exactly once; writes bench-results/soak-*.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { createLogger } from "../../config/log.js";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { resolveEndpoints } from "../../stack/index.js";
import { freePort } from "../support/api.js";
import { answeredOnce, inquirySender, offerLoad, trackResponses } from "../support/load.js";
import { METRICS } from "../../monitoring/metric-names.js";
import { cleanUpOnInterrupt, copyModelRegistry, promQuery, startPrivateStack } from "../support/private-stack.js";
import { preparePipeline, runnablesOf, startPipeline } from "../e2e/pipeline.js";
import { percentile, processSamples, slope } from "./measure.js";

const MINUTES = Number(process.env.SOAK_MINUTES ?? 60);
const RATE = Number(process.env.SOAK_RATE ?? 50);
const SAMPLE_SECONDS = Number(process.env.SOAK_SAMPLE_SECONDS ?? 30);
/** Samples before this are the warm-up (JIT, caches, pools filling): left out of the slope. */
const WARMUP_MINUTES = Number(process.env.SOAK_WARMUP_MINUTES ?? Math.min(5, MINUTES / 6));
const runId = `soak${Date.now().toString(36)}`;

interface Sample {
  readonly minute: number;
  readonly processes: Record<string, { rssMb: number; cpuPercent: number }>;
  /** Per Node process (by scrape job): heap after its latest full collection, MB. */
  readonly heapKeptMb: Record<string, number>;
  readonly lag: Record<string, number>;
  readonly errors: Record<string, number>;
  readonly dlq: number;
  readonly answered: number;
  readonly latency: { n: number; p50: number; p95: number; p99: number };
  readonly queued: number;
  readonly load1: number;
}

const byJob = async (url: string, query: string) =>
  Object.fromEntries((await promQuery(url, query)).map((r) => [r.metric["job"] ?? r.metric["error_class"] ?? "all", Number(r.value[1])]));

async function main(): Promise<void> {
  const log = createLogger({ logLevel: "warn" });
  console.log(`soak ${runId}: ${MINUTES} min at ${RATE} inquiries/s (Bitext), a sample every ${SAMPLE_SECONDS} s; private stack starting`);
  const stack = await startPrivateStack({ log, scrapeIntervalSeconds: 5 });
  let pipeline: Awaited<ReturnType<typeof startPipeline>> | undefined;
  const cleanup = async () => {
    await pipeline?.stop().catch(() => undefined);
    await stack.down();
  };
  const release = cleanUpOnInterrupt(cleanup, log);
  try {
    await copyModelRegistry(resolveEndpoints(loadConfig()).databaseUrl, stack.endpoints.databaseUrl);
    await preparePipeline(stack.endpoints);
    const ports = new Map<string, number>();
    for (const task of runnablesOf("chained")) ports.set(task.name, await freePort());
    // The default session timeout (30 s), not the tests' 6 s: a shared machine's stalls must not cost the group membership.
    pipeline = await startPipeline(stack.endpoints, { LOG_LEVEL: "warn", SWITCHBOARD_SESSION_TIMEOUT_MS: "30000" }, "chained", [], ports);
    await stack.scrape(ports);
    const sender = await inquirySender(pipeline.kafka, pipeline.codec);
    let sendErrors = 0;
    const load = offerLoad(sender.send, { rate: RATE, runId, onSendError: () => sendErrors++ });
    const tracker = await trackResponses(pipeline.kafka, load, runId);

    const pids = new Map([...pipeline.pids(), ...[...(await stack.pids())].map(([name, pid]) => [`${name} (service)`, pid] as const)]);
    const started = Date.now();
    let previous = processSamples([...pids.values()]);
    let previousAt = performance.now();
    let seen = 0;
    const samples: Sample[] = [];
    while (Date.now() - started < MINUTES * 60_000) {
      await sleep(Math.min(SAMPLE_SECONDS * 1000, started + MINUTES * 60_000 - Date.now()));
      const now = processSamples([...pids.values()]);
      const seconds = (performance.now() - previousAt) / 1000;
      const processes = Object.fromEntries(
        [...pids].map(([name, pid]) => [name, { rssMb: now.get(pid)!.rssMb, cpuPercent: ((now.get(pid)!.cpuSeconds - previous.get(pid)!.cpuSeconds) / seconds) * 100 }]),
      );
      previous = now;
      previousAt = performance.now();
      const window = tracker.answered.slice(seen).map((a) => a.ms).sort((a, b) => a - b);
      seen = tracker.answered.length;
      const sample: Sample = {
        minute: (Date.now() - started) / 60_000,
        processes,
        heapKeptMb: Object.fromEntries(Object.entries(await byJob(stack.prometheusUrl, `sum by (job) (${METRICS.process.heapAfterMajorGc})`)).map(([job, bytes]) => [job, bytes / 2 ** 20])),
        lag: await byJob(stack.prometheusUrl, "sum by (job) (switchboard_consumer_lag)"),
        errors: await byJob(stack.prometheusUrl, "sum by (job) (switchboard_errors_total)"),
        dlq: Number((await promQuery(stack.prometheusUrl, "sum(switchboard_dlq_records_total)"))[0]?.value[1] ?? 0),
        answered: tracker.answered.length,
        latency: { n: window.length, p50: percentile(window, 50), p95: percentile(window, 95), p99: percentile(window, 99) },
        queued: load.queued(),
        load1: os.loadavg()[0]!,
      };
      samples.push(sample);
      const rss = Object.entries(processes).map(([name, p]) => `${name.replace(" (service)", "")} ${p.rssMb.toFixed(0)}`).join(", ");
      console.log(
        `${sample.minute.toFixed(1)} min: answered ${sample.answered}/${load.offered()}, p50/p99 ${sample.latency.p50}/${sample.latency.p99} ms, lag ${JSON.stringify(sample.lag)}, errors ${JSON.stringify(sample.errors)}, load ${sample.load1.toFixed(1)}; RSS MB ${rss}; heap kept MB ${Object.entries(sample.heapKeptMb).map(([job, mb]) => `${job} ${mb.toFixed(1)}`).join(", ")}`,
      );
    }
    await load.stop();
    const offered = load.offered();
    const deadline = Date.now() + 120_000;
    while (tracker.answered.length < offered && Date.now() < deadline) await sleep(500);
    await sleep(2_000); // a late duplicate would show now
    const { missing, duplicated, duplicatedResent } = answeredOnce(load, tracker, runId, offered);
    const db = new pg.Pool({ connectionString: stack.endpoints.databaseUrl });
    const archived = Number(
      (await db.query<{ n: string }>("SELECT count(*) AS n FROM switchboard.responses WHERE inquiry_id LIKE $1", [`${runId}-%`])).rows[0]!.n,
    );
    await db.end();
    await tracker.close();
    await sender.close();

    const warm = samples.filter((s) => s.minute >= WARMUP_MINUTES);
    const memory = [...pids.keys()].map((name) => {
      const points = warm.map((s) => ({ x: s.minute / 60, y: s.processes[name]!.rssMb }));
      const cpu = warm.map((s) => s.processes[name]!.cpuPercent);
      const heap = warm.flatMap((s) => (s.heapKeptMb[name] === undefined ? [] : [{ x: s.minute / 60, y: s.heapKeptMb[name] }]));
      return {
        process: name,
        "RSS start MB": points[0]?.y.toFixed(0),
        "RSS end MB": points.at(-1)?.y.toFixed(0),
        "RSS max MB": Math.max(...points.map((p) => p.y)).toFixed(0),
        "slope MB/h": slope(points).toFixed(1),
        ...(heap.length > 0 ? { "heap kept start MB": heap[0]!.y.toFixed(1), "heap kept end MB": heap.at(-1)!.y.toFixed(1), "heap kept slope MB/h": slope(heap).toFixed(1) } : {}),
        "CPU % mean": (cpu.reduce((a, b) => a + b, 0) / Math.max(1, cpu.length)).toFixed(1),
      };
    });
    const all = tracker.answered.map((a) => a.ms).sort((a, b) => a - b);
    const blockMinutes = Math.max(1, Math.round(MINUTES / 12));
    const blocks = [];
    for (let from = 0; from < MINUTES; from += blockMinutes) {
      const inBlock = tracker.answered.filter((a) => (a.at - started) / 60_000 >= from && (a.at - started) / 60_000 < from + blockMinutes).map((a) => a.ms).sort((a, b) => a - b);
      blocks.push({ minutes: `${from}–${from + blockMinutes}`, n: inBlock.length, "p50 ms": percentile(inBlock, 50), "p95 ms": percentile(inBlock, 95), "p99 ms": percentile(inBlock, 99), "max ms": inBlock.at(-1) });
    }
    const first = samples[0];
    const last = samples.at(-1);
    const errorGrowth = Object.keys({ ...first?.errors, ...last?.errors }).map((job) => ({ job, "errors at first sample": first?.errors[job] ?? 0, "errors at end": last?.errors[job] ?? 0 }));

    console.log(`\nsoak ${runId}: ${MINUTES} min at ${RATE}/s offered; ${offered} offered, ${tracker.answered.length} answered, missing ${missing.length}, answered twice ${duplicated.length} (+${duplicatedResent.length} of re-sent inquiries), archived responses ${archived}; send errors ${sendErrors}; DLQ'd ${last?.dlq ?? 0}`);
    console.log(`memory and CPU per process (after a ${WARMUP_MINUTES} min warm-up; slope: least squares over ${warm.length} samples):`);
    console.table(memory);
    console.log("received → response latency per interval:");
    console.table(blocks);
    console.log(`overall: p50 ${percentile(all, 50)} ms, p95 ${percentile(all, 95)} ms, p99 ${percentile(all, 99)} ms, max ${all.at(-1)} ms; max lag per job ${JSON.stringify(Object.fromEntries(Object.keys(last?.lag ?? {}).map((job) => [job, Math.max(...samples.map((s) => s.lag[job] ?? 0))])))}; machine load average ${Math.min(...samples.map((s) => s.load1)).toFixed(1)}–${Math.max(...samples.map((s) => s.load1)).toFixed(1)} (2 cores, shared)`);
    console.log("error counters (switchboard_errors_total, retried or not):");
    console.table(errorGrowth);

    const dir = path.join(REPO_ROOT, "bench-results");
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `soak-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ runId, minutes: MINUTES, rate: RATE, offered, answered: tracker.answered.length, missing: missing.length, duplicated: duplicated.length, duplicatedResent: duplicatedResent.length, archived, sendErrors, memory, blocks, overall: { p50: percentile(all, 50), p95: percentile(all, 95), p99: percentile(all, 99) }, errorGrowth, samples }, null, 2)}\n`,
    );
    console.log(`written: ${file}`);
  } finally {
    release();
    await cleanup();
  }
}

await main();
process.exit(0);
