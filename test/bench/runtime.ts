/**
 * `npm run bench:runtime`: six chained pass-through processors (the pipeline's shape), each its
 * own process with transactions, against raw kafkajs produce→consume on the same broker.
 * Prints sustained throughput, end-to-end latency at a fixed offered load, CPU and RSS per
 * process, and the ratio to the baseline.
 */
import { randomUUID } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import type { Kafka } from "kafkajs";
import { loadConfig } from "../../config/settings.js";
import { createLogger } from "../../config/log.js";
import { localServices, resolveEndpoints, stackPorts, type Endpoints } from "../../stack/index.js";
import { kafka as kafkaService } from "../../stack/services/kafka.js";
import { schemaRegistry } from "../../stack/services/schema-registry.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { chainFixture, chainTopology, inquiries, quietLog, startWorker, stopChild } from "../support/topics.js";
import { percentile, usageMeter, type ProcessUsage } from "./measure.js";

const HOPS = 6;
const SATURATION_RECORDS = Number(process.env.BENCH_RECORDS ?? 30_000);
const OFFERED_RATE = 1_000;
const OFFERED_SECONDS = Number(process.env.BENCH_SECONDS ?? 20);

interface Path {
  /** Sends records stamped with their send time into the path. */
  send(values: InquiryReceived[]): Promise<void>;
  /** Called with the end-to-end latency (ms) of each record that comes out. */
  onArrival(listener: (latencyMs: number) => void): void;
  close(): Promise<void>;
}

/** A consumer on `topic` that reports each record's latency from its envelope's received_at. */
async function arrivals(kafka: Kafka, topic: string, decode: (bytes: Buffer) => Promise<InquiryReceived>, readCommitted: boolean) {
  let listener: (latencyMs: number) => void = () => undefined;
  const consumer = kafka.consumer({ groupId: `bench-${randomUUID()}`, readUncommitted: !readCommitted, maxWaitTimeInMs: 20 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const message of batch.messages) listener(now - (await decode(message.value!)).envelope.received_at);
    },
  });
  return { onArrival: (l: (latencyMs: number) => void) => (listener = l), close: () => consumer.disconnect() };
}

/** Sends `count` records and waits for all of them: every hop has joined its group and is warm. */
async function warmUp(path: Path, count = 200): Promise<void> {
  let arrived = 0;
  const done = new Promise<void>((resolve) => path.onArrival(() => ++arrived === count && resolve()));
  await path.send(inquiries(count, "warm").map((v) => ({ ...v, envelope: { ...v.envelope, received_at: Date.now() } })));
  await done;
}

async function measureSaturation(path: Path, records = SATURATION_RECORDS): Promise<number> {
  const values = inquiries(records, "sat");
  let arrived = 0;
  const done = new Promise<void>((resolve) =>
    path.onArrival(() => {
      if (++arrived === records) resolve();
    }),
  );
  const started = performance.now();
  for (let i = 0; i < values.length; i += 1000) {
    const now = Date.now();
    await path.send(values.slice(i, i + 1000).map((v) => ({ ...v, envelope: { ...v.envelope, received_at: now } })));
  }
  await done;
  return records / ((performance.now() - started) / 1000);
}

async function measureLatency(path: Path, rate = OFFERED_RATE, seconds = OFFERED_SECONDS): Promise<number[]> {
  const latencies: number[] = [];
  const total = rate * seconds;
  const done = new Promise<void>((resolve) =>
    path.onArrival((ms) => {
      if (latencies.push(ms) === total) resolve();
    }),
  );
  const tickMs = 20;
  const perTick = (rate * tickMs) / 1000;
  const values = inquiries(total, "lat");
  const started = performance.now();
  for (let tick = 0; tick * perTick < total; tick++) {
    const wait = started + tick * tickMs - performance.now();
    if (wait > 0) await sleep(wait);
    const now = Date.now();
    void path.send(values.slice(tick * perTick, (tick + 1) * perTick).map((v) => ({ ...v, envelope: { ...v.envelope, received_at: now } })));
  }
  await done;
  return latencies.sort((a, b) => a - b);
}

export interface RelayResult {
  readonly throughput: number;
  /** Sorted end-to-end latencies (ms) at each offered rate. */
  readonly latencies: ReadonlyMap<number, number[]>;
  readonly usage: readonly { process: string; cpuPercent: number; rssMb: number }[];
}

/** The foundation's six-hop transactional pass-through: sustained throughput and latency at the given rates. */
export async function benchmarkRelay(endpoints: Endpoints, rates: readonly number[], seconds: number, records: number): Promise<RelayResult> {
  const chain = await chainFixture("bench", endpoints, HOPS, 6);
  const workers: ChildProcess[] = chain.topology.processors.map((_, hop) =>
    startWorker(chain, { SWITCHBOARD_INSTANCE_ID: `bench-${hop}`, LOG_LEVEL: "warn" }, hop),
  );
  const producer = chain.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const chainOut = await arrivals(chain.kafka, chain.output, (b) => chain.codec.decode(chain.output, b) as Promise<InquiryReceived>, true);
  const pipeline: Path = {
    send: async (values) => {
      await producer.send({ topic: chain.input, messages: values.map((v) => ({ key: v.inquiry_id, value: chain.codec.encode(chain.input, v) })) });
    },
    ...chainOut,
  };
  await warmUp(pipeline);
  const meter = usageMeter(workers.map((w) => w.pid!));
  const sampler = setInterval(() => meter.sample(), 500);
  const throughput = await measureSaturation(pipeline, records);
  const latencies = new Map<number, number[]>();
  for (const rate of rates) latencies.set(rate, await measureLatency(pipeline, rate, seconds));
  clearInterval(sampler);
  const usage = meter.stop();
  await Promise.all(workers.map((w) => stopChild(w)));
  await chainOut.close();
  await producer.disconnect();
  return {
    throughput,
    latencies,
    usage: workers.map((w, hop) => ({ process: `hop ${hop + 1}`, ...(usage.get(w.pid!) as ProcessUsage) })),
  };
}

export interface RawResult {
  readonly throughput: number;
  /** Sorted end-to-end latencies (ms) at each offered rate. */
  readonly latencies: ReadonlyMap<number, number[]>;
  /** CPU ms per record at saturation: the producing and consuming process plus the broker. */
  readonly cpuMsPerRecord: number;
}

/**
 * The yardstick every target is a ratio to: raw kafkajs, one produce→consume hop, no
 * transactions, JSON values, in this process. `brokerPid` is measured with it.
 */
export async function benchmarkRaw(endpoints: Endpoints, rates: readonly number[], seconds: number, records: number, brokerPid?: number): Promise<RawResult> {
  const kafka = createKafka(endpoints, `bench-raw-${randomUUID().slice(0, 8)}`, quietLog);
  const topic = `bench.baseline.${randomUUID().slice(0, 8)}`;
  await createTopics(kafka, chainTopology("baseline", [topic], 6), quietLog);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const out = await arrivals(kafka, topic, async (b) => JSON.parse(b.toString()) as InquiryReceived, false);
  const path: Path = {
    send: async (values) => {
      await producer.send({ topic, messages: values.map((v) => ({ key: v.inquiry_id, value: JSON.stringify(v) })) });
    },
    ...out,
  };
  await warmUp(path);
  const broker = brokerPid === undefined ? undefined : usageMeter([brokerPid]);
  const ownStart = process.cpuUsage();
  const throughput = await measureSaturation(path, records);
  const own = process.cpuUsage(ownStart);
  const brokerSeconds = broker?.stop().get(brokerPid!)?.cpuSeconds ?? 0;
  const cpuMsPerRecord = (((own.user + own.system) / 1e6 + brokerSeconds) * 1000) / records;
  const latencies = new Map<number, number[]>();
  for (const rate of rates) latencies.set(rate, await measureLatency(path, rate, seconds));
  await out.close();
  await producer.disconnect();
  return { throughput, latencies, cpuMsPerRecord };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ logLevel: "warn" });
  const endpoints = resolveEndpoints(config);
  await createSupervisor(config.stackHome, stackPorts(config), log).up(
    localServices(config).filter((s) => s === kafkaService || s === schemaRegistry),
  );

  // The pipeline: six transactional pass-through processes.
  const chain = await chainFixture("bench", endpoints, HOPS, 6);
  const workers: ChildProcess[] = chain.topology.processors.map((_, hop) =>
    startWorker(chain, { SWITCHBOARD_INSTANCE_ID: `bench-${hop}`, LOG_LEVEL: "warn" }, hop),
  );
  const producer = chain.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const chainOut = await arrivals(chain.kafka, chain.output, (b) => chain.codec.decode(chain.output, b) as Promise<InquiryReceived>, true);
  const pipeline: Path = {
    send: async (values) => {
      await producer.send({ topic: chain.input, messages: values.map((v) => ({ key: v.inquiry_id, value: chain.codec.encode(chain.input, v) })) });
    },
    ...chainOut,
  };
  await warmUp(pipeline);

  const meter = usageMeter(workers.map((w) => w.pid!));
  const sampler = setInterval(() => meter.sample(), 500);
  const pipelineThroughput = await measureSaturation(pipeline);
  const pipelineLatency = await measureLatency(pipeline);
  clearInterval(sampler);
  const usage = meter.stop();
  await Promise.all(workers.map((w) => stopChild(w)));

  // The baseline: raw kafkajs, one produce→consume hop, no transactions.
  const baseTopics = [`bench.baseline.${randomUUID().slice(0, 8)}`];
  await createTopics(chain.kafka, chainTopology("baseline", baseTopics, 6), quietLog);
  const baseOut = await arrivals(chain.kafka, baseTopics[0]!, async (b) => JSON.parse(b.toString()) as InquiryReceived, false);
  const baseline: Path = {
    send: async (values) => {
      await producer.send({ topic: baseTopics[0]!, messages: values.map((v) => ({ key: v.inquiry_id, value: JSON.stringify(v) })) });
    },
    ...baseOut,
  };
  await warmUp(baseline);
  const baselineThroughput = await measureSaturation(baseline);
  const baselineLatency = await measureLatency(baseline);
  await baseOut.close();
  await chainOut.close();
  await producer.disconnect();

  const row = (name: string, throughput: number, latencies: number[]) => ({
    path: name,
    "records/s": Math.round(throughput),
    "p50 ms": percentile(latencies, 50),
    "p95 ms": percentile(latencies, 95),
    "p99 ms": percentile(latencies, 99),
  });
  console.log(`\nRuntime benchmark: ${HOPS} transactional hops vs raw kafkajs, ${SATURATION_RECORDS} records at saturation, ${OFFERED_RATE}/s for ${OFFERED_SECONDS}s`);
  console.table([row(`pipeline (${HOPS} hops)`, pipelineThroughput, pipelineLatency), row("baseline (1 hop, raw)", baselineThroughput, baselineLatency)]);
  console.log(
    `ratio pipeline/baseline: throughput ${(pipelineThroughput / baselineThroughput).toFixed(2)}x, p99 latency ${(percentile(pipelineLatency, 99) / percentile(baselineLatency, 99)).toFixed(1)}x`,
  );
  console.log(`targets: ≥ 3000 records/s through ${HOPS} hops: ${pipelineThroughput >= 3000 ? "met" : "NOT met"}; p99 ≤ 100 ms at 1000/s: ${percentile(pipelineLatency, 99) <= 100 ? "met" : "NOT met"}`);
  console.table(
    chain.topology.processors.map((p, hop) => {
      const u = usage.get(workers[hop]!.pid!) as ProcessUsage;
      return { process: `hop ${hop + 1}`, "cpu % (one core)": u.cpuPercent.toFixed(1), "peak RSS MB": u.rssMb.toFixed(0) };
    }),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await main();
  process.exit(0);
}
