/**
 * `npm run bench`: the whole triage pipeline (every processor its own process, as `switchboard up`
 * runs them) at offered loads of 100 and 1,000 inquiries/s and at saturation: end-to-end latency
 * from `inquiries.received` to `inquiries.responses`, per-stage latency, CPU and RSS per
 * processor; the six-hop pass-through baseline in the same run, with the ratio; and accuracy
 * through the pipeline on held-out rows next to the production models' offline figures.
 * BENCH_PROFILE=1 adds a CPU profile of the chained deployment's processes and inference workers
 * (profile.ts): the share of each package, folder and function, behind the figures.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { datasetInquiries, datasetInquiriesWithLabels, type LabeledInquiry } from "../../cli/samples/index.js";
import { createLogger } from "../../config/log.js";
import { postgresOptions } from "../../config/security.js";
import { REPO_ROOT, loadConfig, type Config } from "../../config/settings.js";
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
import { localServices, resolveEndpoints, stackPorts, type Endpoints } from "../../stack/index.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { preparePipeline, startPipeline, watch, type Deployment, type Pipeline } from "../e2e/pipeline.js";
import { histogramTotals, percentile, usageMeter } from "./measure.js";
import { latencyPlot } from "./plot.js";
import { printProfiles, summarizeProfiles, type ThreadProfile } from "./profile.js";
import { benchmarkRaw, benchmarkRelay } from "./runtime.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const SATURATION = Number(process.env.BENCH_RECORDS ?? 10_000);
/** Records through the raw and pass-through baselines at saturation. */
const BASELINE_RECORDS = Number(process.env.BENCH_BASELINE_RECORDS ?? 30_000);
type Dataset = "tickets" | "bitext";
interface Load {
  readonly rate: number;
  readonly dataset: Dataset;
}
/** The offered loads: tickets (long texts) and Bitext (short requests) at the rates the targets name, tickets at 1,000/s. */
const LOADS: readonly Load[] = [
  { rate: 100, dataset: "tickets" },
  { rate: 100, dataset: "bitext" },
  { rate: 500, dataset: "tickets" },
  { rate: 500, dataset: "bitext" },
  { rate: 1_000, dataset: "tickets" },
];
/** The deployment the chain replaces, measured in the same run on fewer loads (it is an order of magnitude slower). */
const COMPARED: Deployment | undefined = process.env.BENCH_COMPARE === "none" ? undefined : "unchained";
const COMPARED_LOADS: readonly Load[] = [{ rate: 100, dataset: "tickets" }];
const RAW_RATES = [100, 500, 1_000];
const RELAY_RATES = [100, 1_000];
const runId = `bench-${randomUUID().slice(0, 8)}`;
/** BENCH_PROFILE=1: the chained deployment's processes run with --cpu-prof; their profiles are summarized after the run. */
const PROFILE = process.env.BENCH_PROFILE === "1";

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

interface DeploymentResult {
  readonly deployment: Deployment;
  readonly loads: { load: string; rate: number; dataset: Dataset; answered: number; offered: number; routedOnTimeout: number; perSecond: number; p50: number; p95: number; p99: number }[];
  readonly stages: Map<string, ReturnType<typeof latencies>>;
  readonly saturation: { dataset: Dataset; answered: number; offered: number; perSecond: number }[];
  /** CPU over the loads and the saturation bursts, per process and service. */
  readonly usage: { process: string; cpuSeconds: number; cpuMsPerInquiry: number; cpuPercent: number; rssMb: number }[];
  readonly inquiries: number;
  readonly cpuMsPerInquiry: number;
  readonly benchCpuMsPerInquiry: number;
  readonly timeSpent: Awaited<ReturnType<typeof whereTimeGoes>>;
  readonly accuracy?: { task: string; n: number; pipeline: number; offline?: number }[];
  /** With BENCH_PROFILE=1: each process's threads, by what ran (process = the deployment's name for the pid). */
  profiles?: (ThreadProfile & { process: string })[];
}

const loadLabel = ({ rate, dataset }: Load) => `${rate}/s offered (${dataset})`;

/** One deployment of the pipeline through `loads`, then saturation bursts of `saturationRecords` per dataset. */
async function measureDeployment(
  deployment: Deployment,
  loads: readonly Load[],
  saturationDatasets: readonly Dataset[],
  saturationRecords: number,
  context: { endpoints: Endpoints; config: Config; services: ReadonlyMap<string, number>; accuracy: boolean; profileDir?: string },
): Promise<DeploymentResult> {
  const { endpoints, config, services, profileDir } = context;
  // Written by each process (and inference worker) when it exits, so read after pipeline.stop().
  const profiling = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  const pipeline = await startPipeline(endpoints, { LOG_LEVEL: "warn" }, deployment, profiling);
  const processOf = new Map([...pipeline.pids()].map(([name, pid]) => [pid, name]));
  let result: DeploymentResult;
  const label = (what: string) => `${deployment}-${what}`;
  const observed = await watch(pipeline.kafka, pipeline.codec, (key) => key.startsWith(runId));
  try {
    const warm = withIds(datasetInquiries("bitext", 200, 7), label("warm"));
    await pipeline.send(warm);
    await waitAnswered(observed, new Set(warm.map((i) => i.inquiry_id)), 120_000);

    const meter = usageMeter([...pipeline.pids().values(), ...services.values()]);
    const benchCpuStart = process.cpuUsage();
    const sampler = setInterval(() => meter.sample(), 500);
    const loadRows: DeploymentResult["loads"] = [];
    const stages = new Map<string, ReturnType<typeof latencies>>();
    for (const load of loads) {
      const inquiries = withIds(datasetInquiries(load.dataset, load.rate * SECONDS, load.rate), label(`rate${load.rate}-${load.dataset}`));
      const ids = new Set(inquiries.map((i) => i.inquiry_id));
      const started = performance.now();
      await offer(pipeline, inquiries, load.rate);
      const answered = await waitAnswered(observed, ids, 300_000);
      const seconds = (performance.now() - started) / 1000;
      const table = latencies(observed, ids);
      stages.set(loadLabel(load), table);
      const e2e = table[0]!;
      const routedOnTimeout = observed.of("inquiries.routed").filter((r) => ids.has(r.key) && (r.value as InquiryRouted).missing_parts.length > 0).length;
      loadRows.push({ load: loadLabel(load), ...load, answered, offered: ids.size, routedOnTimeout, perSecond: answered / seconds, p50: e2e["p50 ms"], p95: e2e["p95 ms"], p99: e2e["p99 ms"] });
    }
    // Saturation on short requests (Bitext) and on long tickets: their cost per inquiry differs several times.
    const saturation: DeploymentResult["saturation"] = [];
    for (const dataset of saturationDatasets) {
      const burst = withIds(datasetInquiries(dataset, saturationRecords, 11), label(`saturation-${dataset}`));
      const burstIds = new Set(burst.map((i) => i.inquiry_id));
      const burstStarted = performance.now();
      await pipeline.send(burst);
      const answered = await waitAnswered(observed, burstIds, 600_000);
      saturation.push({ dataset, answered, offered: burstIds.size, perSecond: answered / ((performance.now() - burstStarted) / 1000) });
    }
    clearInterval(sampler);
    const usage = meter.stop();
    // The load generator and the watcher decoding every topic share the machine too; reported, not counted per inquiry.
    const benchCpu = process.cpuUsage(benchCpuStart);
    const inquiries = loads.reduce((sum, { rate }) => sum + rate * SECONDS, 0) + saturationDatasets.length * saturationRecords;
    const cpuSeconds = [...usage.values()].reduce((sum, u) => sum + u.cpuSeconds, 0);
    const processes = [...pipeline.pids(), ...services].map(([name, pid]) => {
      const u = usage.get(pid)!;
      return { process: name, cpuSeconds: u.cpuSeconds, cpuMsPerInquiry: (u.cpuSeconds * 1000) / inquiries, cpuPercent: u.cpuPercent, rssMb: u.rssMb };
    });

    let accuracy: DeploymentResult["accuracy"];
    if (context.accuracy) {
      // Accuracy on held-out rows, through every stage (cleaning included).
      const labeled = [
        ...datasetInquiriesWithLabels("bitext", 1_000, 3),
        ...datasetInquiriesWithLabels("airline", 1_000, 3),
        ...datasetInquiriesWithLabels("tickets", 500, 3),
      ].map((l, i) => ({ ...l, inquiry: { ...l.inquiry, inquiry_id: `${runId}-${label("accuracy")}-${i}` } }));
      await pipeline.send(labeled.map((l) => l.inquiry));
      await waitAnswered(observed, new Set(labeled.map((l) => l.inquiry.inquiry_id)), 300_000);
      accuracy = [];
      for (const [task, { right, total }] of pipelineAccuracy(observed, labeled)) {
        accuracy.push({ task, n: total, pipeline: right / total, offline: await offlineAccuracy(endpoints, config.modelsDir, task) });
      }
    }
    const timeSpent = await whereTimeGoes(pipeline, [...pipeline.pids().keys()]);
    result = {
      deployment,
      loads: loadRows,
      stages,
      saturation,
      usage: processes,
      inquiries,
      cpuMsPerInquiry: (cpuSeconds * 1000) / inquiries,
      benchCpuMsPerInquiry: ((benchCpu.user + benchCpu.system) / 1e3) / inquiries,
      timeSpent,
      ...(accuracy && { accuracy }),
    };
  } finally {
    await observed.close().catch(() => undefined);
    await pipeline.stop();
  }
  if (profileDir) result.profiles = summarizeProfiles(profileDir).map((p) => ({ ...p, process: processOf.get(p.pid) ?? `pid ${p.pid}` }));
  return result;
}

function printDeployment(result: DeploymentResult): void {
  console.log(`\n=== ${result.deployment} (${SECONDS} s per offered load) ===`);
  console.table([
    ...result.loads.map((l) => ({ load: l.load, answered: `${l.answered}/${l.offered}`, "routed on timeout": l.routedOnTimeout, "inquiries/s": Math.round(l.perSecond), "p50 ms": l.p50, "p95 ms": l.p95, "p99 ms": l.p99 })),
    ...result.saturation.map((s) => ({ load: `saturation (${s.dataset})`, answered: `${s.answered}/${s.offered}`, "inquiries/s": Math.round(s.perSecond) })),
  ]);
  for (const [load, table] of result.stages) {
    console.log(`per stage at ${load} (stage output time minus its input's time; end to end = response seen minus received):`);
    console.table(table);
  }
  console.log(`CPU and memory over the offered loads and the saturation bursts (${result.inquiries} inquiries; a service with all its processes):`);
  console.table(result.usage.map((u) => ({ process: u.process, "cpu ms / inquiry": u.cpuMsPerInquiry.toFixed(2), "cpu % (one core)": u.cpuPercent.toFixed(1), "peak RSS MB": u.rssMb.toFixed(0) })));
  console.log(
    `CPU per inquiry, every process above together: ${result.cpuMsPerInquiry.toFixed(2)} ms; this machine's ${os.cpus().length} cores bound throughput at ${Math.round((os.cpus().length * 1000) / result.cpuMsPerInquiry)}/s. ` +
      `The benchmark itself (load and watcher) used ${result.benchCpuMsPerInquiry.toFixed(2)} ms per inquiry more.`,
  );
  console.log("where each process's time went over the whole run (mean ms per transaction phase, per record processed):");
  console.table(result.timeSpent);
  if (result.accuracy) {
    console.log("accuracy on held-out rows through the pipeline vs the production model's offline test accuracy:");
    console.table(result.accuracy.map((a) => ({ task: a.task, n: a.n, pipeline: a.pipeline.toFixed(4), offline: a.offline?.toFixed(4) ?? "?" })));
  }
  if (result.profiles) printProfiles(result.profiles, (pid) => result.profiles!.find((p) => p.pid === pid)!.process);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ logLevel: "warn" });
  const endpoints = resolveEndpoints(config);
  const supervisor = createSupervisor(config.stackHome, stackPorts(config), log);
  await supervisor.up(localServices(config));
  // The services share the machine with the processors: their CPU is part of what an inquiry costs.
  const status = await supervisor.status(localServices(config));
  const services = new Map(status.flatMap((s) => (s.pid === undefined ? [] : [[`${s.name} (service)`, s.pid] as const])));
  await preparePipeline(endpoints);

  const context = { endpoints, config, services, accuracy: true };
  // The unchained deployment first: the chain's new consumer group then starts where clean's
  // stopped, while the reverse order would leave clean the chain's whole run to consume again.
  const compared = COMPARED && (await measureDeployment(COMPARED, COMPARED_LOADS, ["tickets"], Math.round(SATURATION / 2), { ...context, accuracy: false }));
  const profileDir = PROFILE ? path.join(REPO_ROOT, "bench-results", `profiles-${runId}`) : undefined;
  const chained = await measureDeployment("chained", LOADS, ["bitext", "tickets"], SATURATION, { ...context, profileDir });
  const relay = await benchmarkRelay(endpoints, RELAY_RATES, SECONDS, BASELINE_RECORDS);
  const raw = await benchmarkRaw(endpoints, RAW_RATES, SECONDS, BASELINE_RECORDS, status.find((s) => s.name === "kafka")?.pid);

  console.log(`\nPipeline benchmark (${runId}): clean → classify | sentiment | urgency → route → respond, plus the archive, feedback and search sinks`);
  printDeployment(chained);
  if (compared) printDeployment(compared);

  const rawP99 = (rate: number) => percentile(raw.latencies.get(rate)!, 99);
  const relayP99 = (rate: number) => percentile(relay.latencies.get(rate)!, 99);
  console.log(`\nbaselines, same run: raw kafkajs (one hop, no transactions) and the six-hop transactional pass-through`);
  console.table([
    { path: "raw kafkajs saturation", "records/s": Math.round(raw.throughput), "cpu ms / record": raw.cpuMsPerRecord.toFixed(3) },
    ...RAW_RATES.map((rate) => ({ path: `raw kafkajs at ${rate}/s`, "p50 ms": percentile(raw.latencies.get(rate)!, 50), "p99 ms": rawP99(rate) })),
    { path: "pass-through saturation", "records/s": Math.round(relay.throughput), "ratio to raw": (relay.throughput / raw.throughput).toFixed(3) },
    ...RELAY_RATES.map((rate) => ({ path: `pass-through at ${rate}/s`, "p50 ms": percentile(relay.latencies.get(rate)!, 50), "p99 ms": relayP99(rate), "ratio to raw": (relayP99(rate) / rawP99(rate)).toFixed(1) })),
  ]);

  const saturation = Math.min(...chained.saturation.map((s) => s.perSecond));
  const p99Of = (rate: number, dataset: Dataset) => chained.loads.find((l) => l.rate === rate && l.dataset === dataset)!.p99;
  const worstP99 = (rate: number) => Math.max(p99Of(rate, "tickets"), p99Of(rate, "bitext"));
  const targets = [
    { target: "sustained throughput ≥ 1/35 of raw (≈ 1,000/s)", measured: `${Math.round(saturation)}/s (lower saturation)`, ratio: raw.throughput / saturation, limit: 35, lowerIsBetter: true },
    { target: "p99 at 100/s ≤ 15× raw p99 (≈ 150 ms)", measured: `${worstP99(100)} ms (worse of tickets, Bitext)`, ratio: worstP99(100) / rawP99(100), limit: 15, lowerIsBetter: true },
    { target: "p99 at 500/s ≤ 50× raw p99 (≈ 500 ms)", measured: `${worstP99(500)} ms (worse of tickets, Bitext)`, ratio: worstP99(500) / rawP99(500), limit: 50, lowerIsBetter: true },
    { target: "CPU per inquiry ≤ 2 ms (all processes)", measured: `${chained.cpuMsPerInquiry.toFixed(2)} ms`, ratio: chained.cpuMsPerInquiry / raw.cpuMsPerRecord, limit: 2 / 0.05, lowerIsBetter: true },
    { target: "pass-through ≥ 1/7 of raw throughput (≈ 5,000/s)", measured: `${Math.round(relay.throughput)}/s`, ratio: raw.throughput / relay.throughput, limit: 7, lowerIsBetter: true },
    { target: "pass-through p99 at 1,000/s ≤ 5× raw p99", measured: `${relayP99(1_000)} ms`, ratio: relayP99(1_000) / rawP99(1_000), limit: 5, lowerIsBetter: true },
  ].map((t) => ({ ...t, met: t.target.startsWith("CPU") ? chained.cpuMsPerInquiry <= 2 : t.ratio <= t.limit }));
  console.log("targets (ratio = how many times raw kafkajs; the CPU target is absolute, its ratio is to raw CPU per record):");
  console.table(targets.map((t) => ({ target: t.target, measured: t.measured, "× raw": t.ratio.toFixed(1), met: t.met ? "met" : "NOT met" })));
  if (compared) {
    const speedup = (saturation / Math.min(...compared.saturation.map((s) => s.perSecond))).toFixed(1);
    console.log(`chained vs unchained: saturation ${speedup}× ; p99 at 100/s (tickets) ${p99Of(100, "tickets")} vs ${compared.loads[0]!.p99} ms; CPU per inquiry ${chained.cpuMsPerInquiry.toFixed(2)} vs ${compared.cpuMsPerInquiry.toFixed(2)} ms`);
  }

  const at = new Date().toISOString();
  const dir = path.join(REPO_ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  const stamp = at.replace(/[:.]/g, "-").slice(0, 19);
  const plain = (r: DeploymentResult) => ({ ...r, stages: Object.fromEntries(r.stages) });
  const json = path.join(dir, `pipeline-${stamp}.json`);
  writeFileSync(
    json,
    `${JSON.stringify({ at, runId, seconds: SECONDS, cores: os.cpus().length, deployments: [plain(chained), ...(compared ? [plain(compared)] : [])], raw: { ...raw, latencies: summarize(raw.latencies) }, relay: { ...relay, latencies: summarize(relay.latencies) }, targets }, null, 2)}\n`,
  );
  const svg = path.join(dir, `pipeline-${stamp}.svg`);
  writeFileSync(svg, latencyPlot(chained.loads, RAW_RATES.map((rate) => ({ rate, p99: rawP99(rate) }))));
  console.log(`written: ${json} and ${svg} (latency percentiles against offered load)`);
}

/** p50/p95/p99 of each rate's sorted latencies, for the JSON. */
function summarize(latencies: ReadonlyMap<number, number[]>) {
  return Object.fromEntries([...latencies].map(([rate, sorted]) => [rate, { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), n: sorted.length }]));
}

await main();
process.exit(0);
