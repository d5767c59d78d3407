/**
 * `npm run bench`: the whole triage pipeline (every processor its own process, as `switchboard up`
 * runs them) at offered loads of 100 and 1,000 inquiries/s and at saturation: end-to-end latency
 * from `inquiries.received` to `inquiries.responses`, per-stage latency, CPU and RSS per
 * processor; the six-hop pass-through baseline in the same run, with the ratio; and accuracy
 * through the pipeline on held-out rows next to the production models' offline figures.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { datasetInquiries, datasetInquiriesWithLabels, type LabeledInquiry } from "../../cli/samples/index.js";
import { createLogger } from "../../config/log.js";
import { postgresOptions } from "../../config/security.js";
import { loadConfig } from "../../config/settings.js";
import { productionVersionDir } from "../../models/index.js";
import type { PostgresEndpoint } from "../../storage/postgres.js";
import type {
  InquiryClassified,
  InquiryCleaned,
  InquiryReceived,
  InquiryResponse,
  InquiryRouted,
  InquirySentiment,
  InquiryUrgency,
  PredictionFeedback,
} from "../../schemas/types.generated.js";
import { localServices, resolveEndpoints, stackPorts } from "../../stack/index.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { preparePipeline, startPipeline, watch, type Pipeline } from "../e2e/pipeline.js";
import { histogramTotals, percentile, usageMeter } from "./measure.js";
import { benchmarkRelay } from "./runtime.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const SATURATION = Number(process.env.BENCH_RECORDS ?? 10_000);
const RATES = [100, 1_000];
/** The offered loads: both rates on tickets (long texts), and 100/s on short Bitext requests for comparison. */
const LOADS: readonly { rate: number; dataset: "tickets" | "bitext" }[] = [
  ...RATES.map((rate) => ({ rate, dataset: "tickets" as const })),
  { rate: 100, dataset: "bitext" },
];
const runId = `bench-${randomUUID().slice(0, 8)}`;

type Watch = Awaited<ReturnType<typeof watch>>;

/** Sends `inquiries` at `rate` per second (in 20 ms ticks), stamping each with its send time. */
async function offer(pipeline: Pipeline, inquiries: readonly InquiryReceived[], rate: number): Promise<void> {
  const tickMs = 20;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const started = performance.now();
  const sends: Promise<void>[] = [];
  for (let tick = 0; tick * perTick < inquiries.length; tick++) {
    const wait = started + tick * tickMs - performance.now();
    if (wait > 0) await sleep(wait);
    const now = Date.now();
    sends.push(pipeline.send(inquiries.slice(tick * perTick, (tick + 1) * perTick).map((i) => ({ ...i, envelope: { ...i.envelope, received_at: now } }))));
  }
  await Promise.all(sends);
}

async function waitAnswered(observed: Watch, ids: ReadonlySet<string>, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const answered = () => observed.of("inquiries.responses").filter((r) => ids.has(r.key)).length;
  while (answered() < ids.size && Date.now() < deadline) await sleep(200);
  return answered();
}

function withIds(inquiries: readonly InquiryReceived[], label: string): InquiryReceived[] {
  return inquiries.map((inquiry, i) => ({ ...inquiry, inquiry_id: `${runId}-${label}-${i}` }));
}

/** End-to-end and per-stage latency (ms) of the inquiries with `ids`, from the records' own timestamps. */
function latencies(observed: Watch, ids: ReadonlySet<string>) {
  const of = <T>(topic: string) => new Map(observed.of(topic).filter((r) => ids.has(r.key)).map((r) => [r.key, { value: r.value as T, at: r.at }]));
  const cleaned = of<InquiryCleaned>("inquiries.cleaned");
  const classified = of<InquiryClassified>("inquiries.classified");
  const sentiment = of<InquirySentiment>("inquiries.sentiment");
  const urgency = of<InquiryUrgency>("inquiries.urgency");
  const routed = of<InquiryRouted>("inquiries.routed");
  const responses = of<InquiryResponse>("inquiries.responses");
  const stages: Record<string, number[]> = { "end to end": [], clean: [], classify: [], sentiment: [], urgency: [], route: [], respond: [] };
  for (const [id, response] of responses) {
    const received = routed.get(id)?.value.envelope.received_at;
    const c = cleaned.get(id)?.value;
    const r = routed.get(id)?.value;
    if (received === undefined || !c || !r) continue;
    stages["end to end"]!.push(response.at - received);
    stages.clean!.push(c.cleaned_at - received);
    const k = classified.get(id)?.value;
    const s = sentiment.get(id)?.value;
    const u = urgency.get(id)?.value;
    if (k) stages.classify!.push(k.classified_at - c.cleaned_at);
    if (s) stages.sentiment!.push(s.scored_at - c.cleaned_at);
    if (u) stages.urgency!.push(u.scored_at - c.cleaned_at);
    // Routed after the join timeout with a part missing: no join time to measure.
    if (k && s && u && r.missing_parts.length === 0) stages.route!.push(r.routed_at - Math.max(k.classified_at, s.scored_at, u.scored_at));
    stages.respond!.push(response.value.responded_at - r.routed_at);
  }
  return Object.entries(stages).map(([stage, values]) => {
    const sorted = values.sort((a, b) => a - b);
    return { stage, n: sorted.length, "p50 ms": percentile(sorted, 50), "p95 ms": percentile(sorted, 95), "p99 ms": percentile(sorted, 99) };
  });
}

/** Accuracy through the pipeline (the models' own predictions, from the feedback records) on labeled held-out rows. */
function pipelineAccuracy(observed: Watch, labeled: readonly LabeledInquiry[]) {
  const truth = new Map(labeled.map((l) => [l.inquiry.inquiry_id, l.labels]));
  const tally = new Map<string, { right: number; total: number }>();
  for (const { key, value } of observed.of("predictions.feedback")) {
    const feedback = value as PredictionFeedback;
    const label = (truth.get(key) as Record<string, string | undefined> | undefined)?.[feedback.task];
    if (label === undefined) continue;
    const t = tally.get(feedback.task) ?? { right: 0, total: 0 };
    t.total++;
    if (feedback.predicted_label === label) t.right++;
    tally.set(feedback.task, t);
  }
  return tally;
}

async function offlineAccuracy(endpoints: PostgresEndpoint, modelsDir: string, model: string): Promise<number | undefined> {
  const pool = new pg.Pool(postgresOptions(endpoints));
  try {
    const dir = await productionVersionDir(pool, model, modelsDir);
    const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as { metrics?: { test?: { accuracy?: number } } };
    return manifest.metrics?.test?.accuracy;
  } catch {
    return undefined;
  } finally {
    await pool.end();
  }
}

/** Each processor's transactions, the mean time of each commit phase and of processing one record, from its own metrics. */
async function whereTimeGoes(pipeline: Pipeline, names: readonly string[]) {
  const mean = (t: { sum: number; count: number } | undefined) => (t && t.count > 0 ? ((t.sum / t.count) * 1000).toFixed(1) : "");
  const rows = [];
  for (const name of names) {
    const text = await pipeline.metrics(name);
    const phases = histogramTotals(text, "switchboard_transaction_phase_seconds", "phase");
    const processing = histogramTotals(text, "switchboard_processing_seconds", "processor").get(name);
    rows.push({
      processor: name,
      transactions: phases.get("commit")?.count ?? 0,
      "records/transaction": processing && phases.get("commit")?.count ? (processing.count / phases.get("commit")!.count).toFixed(1) : "",
      ...Object.fromEntries(["flush", "begin", "produce", "offsets", "commit"].map((phase) => [`${phase} ms`, mean(phases.get(phase))])),
      "processing ms/record": mean(processing),
    });
  }
  return rows;
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ logLevel: "warn" });
  const endpoints = resolveEndpoints(config);
  const supervisor = createSupervisor(config.stackHome, stackPorts(config), log);
  await supervisor.up(localServices(config));
  // The services share the machine with the processors: their CPU is part of what an inquiry costs.
  const services = new Map(
    (await supervisor.status(localServices(config))).flatMap((s) => (s.pid === undefined ? [] : [[`${s.name} (service)`, s.pid] as const])),
  );
  await preparePipeline(endpoints);
  const pipeline = await startPipeline(endpoints, { LOG_LEVEL: "warn" });
  const observed = await watch(pipeline.kafka, pipeline.codec, (key) => key.startsWith(runId));

  try {
    const warm = withIds(datasetInquiries("bitext", 200, 7), "warm");
    await pipeline.send(warm);
    await waitAnswered(observed, new Set(warm.map((i) => i.inquiry_id)), 120_000);

    const meter = usageMeter([...pipeline.pids().values(), ...services.values()]);
    const benchCpuStart = process.cpuUsage();
    const sampler = setInterval(() => meter.sample(), 500);
    const loadRows = [];
    const stageTables = new Map<string, ReturnType<typeof latencies>>();
    const loadLabel = (rate: number, dataset: string) => `${rate}/s offered (${dataset})`;
    for (const { rate, dataset } of LOADS) {
      const inquiries = withIds(datasetInquiries(dataset, rate * SECONDS, rate), `rate${rate}-${dataset}`);
      const ids = new Set(inquiries.map((i) => i.inquiry_id));
      const started = performance.now();
      await offer(pipeline, inquiries, rate);
      const answered = await waitAnswered(observed, ids, 300_000);
      const seconds = (performance.now() - started) / 1000;
      const table = latencies(observed, ids);
      stageTables.set(loadLabel(rate, dataset), table);
      const e2e = table[0]!;
      const partial = observed.of("inquiries.routed").filter((r) => ids.has(r.key) && (r.value as InquiryRouted).missing_parts.length > 0).length;
      loadRows.push({ load: loadLabel(rate, dataset), answered: `${answered}/${ids.size}`, "routed on timeout": partial, "inquiries/s": Math.round(answered / seconds), "p50 ms": e2e["p50 ms"], "p95 ms": e2e["p95 ms"], "p99 ms": e2e["p99 ms"] });
    }
    // Saturation on short requests (Bitext) and on long tickets: their cost per inquiry differs several times.
    const saturationRows = [];
    const saturations: number[] = [];
    for (const dataset of ["bitext", "tickets"] as const) {
      const burst = withIds(datasetInquiries(dataset, SATURATION, 11), `saturation-${dataset}`);
      const burstIds = new Set(burst.map((i) => i.inquiry_id));
      const burstStarted = performance.now();
      await pipeline.send(burst);
      const burstAnswered = await waitAnswered(observed, burstIds, 600_000);
      const rate = burstAnswered / ((performance.now() - burstStarted) / 1000);
      saturations.push(rate);
      saturationRows.push({ load: `saturation (${dataset})`, answered: `${burstAnswered}/${burstIds.size}`, "inquiries/s": Math.round(rate), "p50 ms": NaN, "p95 ms": NaN, "p99 ms": NaN });
    }
    const saturation = Math.min(...saturations);
    clearInterval(sampler);
    const usage = meter.stop();
    // The load generator and the watcher decoding every topic share the machine too; reported, not counted per inquiry.
    const benchCpu = process.cpuUsage(benchCpuStart);
    const benchCpuSeconds = (benchCpu.user + benchCpu.system) / 1e6;
    const inquiriesMeasured = LOADS.reduce((sum, { rate }) => sum + rate * SECONDS, 0) + 2 * SATURATION;
    const cpuSeconds = [...usage.values()].reduce((sum, u) => sum + u.cpuSeconds, 0);

    // Accuracy on held-out rows, through every stage (cleaning included).
    const labeled = [
      ...datasetInquiriesWithLabels("bitext", 1_000, 3),
      ...datasetInquiriesWithLabels("airline", 1_000, 3),
      ...datasetInquiriesWithLabels("tickets", 500, 3),
    ].map((l, i) => ({ ...l, inquiry: { ...l.inquiry, inquiry_id: `${runId}-accuracy-${i}` } }));
    await pipeline.send(labeled.map((l) => l.inquiry));
    await waitAnswered(observed, new Set(labeled.map((l) => l.inquiry.inquiry_id)), 300_000);
    const accuracy = pipelineAccuracy(observed, labeled);
    const pids = pipeline.pids();
    const timeSpent = await whereTimeGoes(pipeline, [...pids.keys()]);
    await observed.close();
    await pipeline.stop();

    const relay = await benchmarkRelay(endpoints, RATES, SECONDS, SATURATION);

    console.log(`\nPipeline benchmark (${runId}): clean → classify | sentiment | urgency → route → respond, plus the archive and search sinks; ${SECONDS} s per offered load`);
    console.table([...loadRows, ...saturationRows]);
    for (const [load, table] of stageTables) {
      console.log(`per stage at ${load} (stage output time minus its input's time; end to end = response seen minus received):`);
      console.table(table);
    }
    console.log("CPU and memory over the offered loads and the saturation burst (a service with all its processes):");
    console.table([...pids, ...services].map(([name, pid]) => ({ process: name, "cpu % (one core)": usage.get(pid)!.cpuPercent.toFixed(1), "peak RSS MB": usage.get(pid)!.rssMb.toFixed(0) })));
    console.log(
      `CPU per inquiry, every process above together: ${((cpuSeconds / inquiriesMeasured) * 1000).toFixed(1)} ms ` +
        `(${inquiriesMeasured} inquiries); this machine's ${os.cpus().length} cores bound throughput at ${Math.round((os.cpus().length * inquiriesMeasured) / cpuSeconds)}/s. ` +
        `The benchmark itself (load and watcher) used ${((benchCpuSeconds / inquiriesMeasured) * 1000).toFixed(1)} ms per inquiry more.`,
    );
    console.log("where each processor's time went over the whole run (mean ms per transaction phase, per record processed):");
    console.table(timeSpent);
    const relayP99 = (rate: number) => percentile(relay.latencies.get(rate)!, 99);
    const pipelineP99 = (rate: number) => stageTables.get(loadLabel(rate, "tickets"))![0]!["p99 ms"];
    console.log("six-hop pass-through baseline, same run:");
    console.table([
      ...RATES.map((rate) => ({ path: `relay at ${rate}/s`, "p50 ms": percentile(relay.latencies.get(rate)!, 50), "p99 ms": relayP99(rate), "pipeline/relay p99": (pipelineP99(rate) / relayP99(rate)).toFixed(1) })),
      { path: "relay saturation", "records/s": Math.round(relay.throughput), "pipeline/relay throughput": (saturation / relay.throughput).toFixed(2) },
    ]);
    const offline = {
      intent: await offlineAccuracy(endpoints, config.modelsDir, "intent"),
      category: await offlineAccuracy(endpoints, config.modelsDir, "category"),
      sentiment: await offlineAccuracy(endpoints, config.modelsDir, "sentiment"),
      urgency: await offlineAccuracy(endpoints, config.modelsDir, "urgency"),
    };
    console.log("accuracy on held-out rows through the pipeline vs the production model's offline test accuracy:");
    console.table(
      [...accuracy].map(([task, { right, total }]) => ({
        task,
        n: total,
        pipeline: (right / total).toFixed(4),
        offline: offline[task as keyof typeof offline]?.toFixed(4) ?? "?",
      })),
    );
    const p99at100 = pipelineP99(100);
    console.log(
      `targets: ≥ 1000 inquiries/s sustained: ${saturation >= 1000 ? "met" : "NOT met"} (${Math.round(saturation)}/s, the lower saturation); ` +
        `p99 ≤ 150 ms at 100/s: ${p99at100 <= 150 ? "met" : "NOT met"} (${p99at100} ms on tickets, ${stageTables.get(loadLabel(100, "bitext"))![0]!["p99 ms"]} ms on Bitext)`,
    );
  } catch (error) {
    await observed.close().catch(() => undefined);
    await pipeline.stop();
    throw error;
  }
}

await main();
process.exit(0);
