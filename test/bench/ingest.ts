/**
 * `npm run bench:ingest`: inquiries into Kafka through the REST API (`switchboard run api`, its
 * own process) at fixed offered loads, paced evenly as the baseline is, and at saturation with
 * autocannon (64 connections), beside raw
 * kafkajs produce (acks all, idempotent) to the same broker in the same run as the baseline;
 * then emails parsed per second (test/bench/ingest-email.ts). Prints a table with the ratios to
 * the baseline and writes bench-results/ingest-<time>.json.
 *
 * The API process is the real connector writing to a topic of the benchmark's own (api-worker.ts),
 * so that its hundred thousand inquiries do not wait on inquiries.received for the pipeline.
 * `BENCH_SECONDS` (default 10) sets each load's duration; `BENCH_RECORDS` (default 30,000) the
 * baseline's saturation burst; `BENCH_LOADS` (default 500,1000) the fixed loads.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import autocannon from "autocannon";
import type { Kafka, Message } from "kafkajs";
import { SAMPLE_INQUIRIES, toInquiry } from "../../cli/samples/index.js";
import { createLogger } from "../../config/log.js";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { registerSchema, targetFor } from "../../schemas/registry.js";
import { localServices, resolveEndpoints, stackPorts, type Endpoints } from "../../stack/index.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { createTopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import type { Topology } from "../../streams/topology.js";
import { freePort, setupServices, testKey, until } from "../support/api.js";
import { quietLog, serviceEnv, stopChild } from "../support/topics.js";
import { benchEmailParsing, printEmailParsing } from "./ingest-email.js";
import { percentile, usageMeter } from "./measure.js";
import { schemaRegistryOptions } from "../../config/security.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const BASELINE_RECORDS = Number(process.env.BENCH_RECORDS ?? 30_000);
/** Offered loads in requests/s, in the order run (BENCH_LOADS=500,1000,500 repeats one to see warm-up). */
const FIXED_LOADS: readonly number[] = (process.env.BENCH_LOADS ?? "500,1000").split(",").map(Number);
const TARGET_ACCEPTED_PER_S = 2_000;
const TARGET_P99_MS_AT_500 = 25;

interface Row {
  readonly path: string;
  readonly offered: number | "saturation";
  readonly acceptedPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly refused: number;
  readonly errors: number;
  readonly apiCpuPercent?: number;
}

/** The body a client sends: a sample inquiry, as JSON. */
const SAMPLE = SAMPLE_INQUIRIES[0]!;
const BODY = JSON.stringify({ subject: SAMPLE.subject, body: SAMPLE.body, content_type: "text", customer: SAMPLE.customer, metadata: { source: "bench" } });

async function endOffsetSum(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((total, p) => total + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** `switchboard run api` as its own process, writing to the bench topic (api-worker.ts), healthy. */
async function startBenchApi(endpoints: Endpoints, topic: string): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", new URL("./api-worker.ts", import.meta.url).pathname], {
    env: {
      ...serviceEnv(endpoints),
      BENCH_TOPIC: topic,
      SWITCHBOARD_METRICS_PORT: String(port),
      // The rate limit is not what this measures; logs at warn, as in production.
      SWITCHBOARD_API_RATE_LIMIT: "1000000000",
      LOG_LEVEL: "warn",
      LOG_FORMAT: "json",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const healthy = await until(async () => (child.exitCode === null ? ((await fetch(`${url}/healthz`).catch(() => undefined))?.ok ? true : undefined) : false), 60_000);
  if (healthy !== true) throw new Error("the benchmark's API process did not become healthy");
  return { url, child, stop: () => stopChild(child) };
}

/**
 * POST /v1/inquiries at a fixed offered load, paced evenly (request i sent at i/rate s, whether or
 * not earlier ones were answered), each request's latency from its send to its answer, as the raw
 * baseline measures its sends. autocannon cannot offer this: its rate limit lets each connection
 * send its per-second quota back to back and then wait, so "500/s" arrives as a burst at
 * saturation speed at the top of every second.
 */
async function loadApiPaced(url: string, token: string, rate: number, idempotent: boolean, apiPid: number): Promise<Omit<Row, "path">> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const target = new URL(`${url}/v1/inquiries`);
  const body = Buffer.from(BODY);
  const post = () =>
    new Promise<number>((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": body.length };
      if (idempotent) headers["idempotency-key"] = randomUUID();
      const request = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent, headers }, (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      });
      request.on("error", reject);
      request.end(body);
    });
  const meter = usageMeter([apiPid]);
  const sampler = setInterval(() => meter.sample(), 500);
  const latencies: number[] = [];
  let accepted = 0;
  let refused = 0;
  let errors = 0;
  const total = rate * SECONDS;
  const requests: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    const sentAt = performance.now();
    requests.push(
      post().then(
        (status) => {
          latencies.push(performance.now() - sentAt);
          if (status === 202) accepted++;
          else refused++;
        },
        () => void errors++,
      ),
    );
  }
  await Promise.all(requests);
  const elapsed = (performance.now() - started) / 1000;
  clearInterval(sampler);
  agent.destroy();
  const usage = meter.stop().get(apiPid);
  latencies.sort((a, b) => a - b);
  return {
    offered: rate,
    acceptedPerS: Math.round(accepted / elapsed),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    refused,
    errors,
    ...(usage ? { apiCpuPercent: Math.round(usage.cpuPercent) } : {}),
  };
}

/** autocannon against POST /v1/inquiries as fast as 64 connections go, with or without an Idempotency-Key each. */
async function loadApiSaturated(url: string, token: string, idempotent: boolean, apiPid: number): Promise<Omit<Row, "path">> {
  const meter = usageMeter([apiPid]);
  const sampler = setInterval(() => meter.sample(), 500);
  const result = await autocannon({
    url: `${url}/v1/inquiries`,
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: BODY,
    connections: 64,
    duration: SECONDS,
    ...(idempotent ? { requests: [{ setupRequest: (request) => ({ ...request, headers: { ...request.headers, "idempotency-key": randomUUID() } }) }] } : {}),
  });
  clearInterval(sampler);
  const usage = meter.stop().get(apiPid);
  return {
    offered: "saturation",
    acceptedPerS: Math.round(result["2xx"] / result.duration),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    refused: result.non2xx,
    errors: result.errors,
    ...(usage ? { apiCpuPercent: Math.round(usage.cpuPercent) } : {}),
  };
}

/** Raw kafkajs with the intake's producer settings (idempotent, acks all) on the bench topic. */
async function baseline(kafka: Kafka, topic: string, message: Message): Promise<Row[]> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const keyed = (n: number) => Array.from({ length: n }, () => ({ ...message, key: randomUUID() }));
    await producer.send({ topic, acks: -1, messages: keyed(1_000) });

    // Saturation: batches of 500, each awaited, as fast as the broker takes them.
    const records = keyed(BASELINE_RECORDS);
    let started = performance.now();
    for (let i = 0; i < records.length; i += 500) await producer.send({ topic, acks: -1, messages: records.slice(i, i + 500) });
    const saturation = BASELINE_RECORDS / ((performance.now() - started) / 1000);

    // Per record at a fixed offered rate: each its own send, sent on time, its latency to the acknowledgement.
    const rows: Row[] = [{ path: "raw kafkajs produce", offered: "saturation", acceptedPerS: Math.round(saturation), p50Ms: Number.NaN, p99Ms: Number.NaN, refused: 0, errors: 0 }];
    for (const rate of FIXED_LOADS) {
      const latencies: number[] = [];
      const total = rate * SECONDS;
      const sends: Promise<void>[] = [];
      started = performance.now();
      for (let i = 0; i < total; i++) {
        const due = started + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        const sentAt = performance.now();
        sends.push(producer.send({ topic, acks: -1, messages: keyed(1) }).then(() => void latencies.push(performance.now() - sentAt)));
      }
      await Promise.all(sends);
      const elapsed = (performance.now() - started) / 1000;
      latencies.sort((a, b) => a - b);
      rows.push({ path: "raw kafkajs produce", offered: rate, acceptedPerS: Math.round(total / elapsed), p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), refused: 0, errors: 0 });
    }
    return rows;
  } finally {
    await producer.disconnect();
  }
}

const round = (n: number) => Math.round(n * 10) / 10;

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ logLevel: "warn" });
  await createSupervisor(config.stackHome, stackPorts(config), log).up(localServices(config));
  const endpoints = resolveEndpoints(config);
  await setupServices(endpoints);
  const kafka = createKafka(endpoints, "bench-ingest", quietLog);

  // One topic of the inquiries.received schema for the baseline and the API, deleted afterwards.
  const topic = `bench.ingest.${randomUUID().slice(0, 8)}`;
  const topology: Topology = {
    name: "bench-ingest",
    topics: [{ name: topic, description: "ingest benchmark", partitions: 6, retentionMs: 3_600_000, compacted: false, valueSchema: "inquiries.received" }],
    processors: [],
    chains: [],
    connectors: [],
  };
  await createTopics(kafka, topology, quietLog);
  await registerSchema(endpoints, targetFor(topic, "inquiries.received"));
  const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), topology.topics);
  const rows: Row[] = [];
  let written: number;
  try {
    const sample = toInquiry(SAMPLE);
    rows.push(...(await baseline(kafka, topic, { key: sample.inquiry_id, value: codec.encode(topic, { ...sample, envelope: { ...sample.envelope, channel: "api" } }) })));
    const { token } = await testKey(endpoints, ["ingest"], "bench");
    const api = await startBenchApi(endpoints, topic);
    const before = await endOffsetSum(kafka, topic);
    try {
      // Warm-up at the highest fixed load: connections, JIT, the producer's batches. At 200/s the
      // first measured load still carried it (p99 at 500/s 27-71 ms first, 15 ms when repeated).
      await loadApiPaced(api.url, token, Math.max(...FIXED_LOADS), true, api.child.pid!);
      for (const rate of FIXED_LOADS) rows.push({ path: "API, Idempotency-Key", ...(await loadApiPaced(api.url, token, rate, true, api.child.pid!)) });
      rows.push({ path: "API, Idempotency-Key", ...(await loadApiSaturated(api.url, token, true, api.child.pid!)) });
      rows.push({ path: "API, no key", ...(await loadApiSaturated(api.url, token, false, api.child.pid!)) });
    } finally {
      await api.stop();
    }
    written = (await endOffsetSum(kafka, topic)) - before;
  } finally {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
  const email = await benchEmailParsing();

  const raw = rows.find((r) => r.path === "raw kafkajs produce" && r.offered === "saturation")!.acceptedPerS;
  console.log(`\nIngest benchmark: ${SECONDS} s per load; POST /v1/inquiries (${Buffer.byteLength(BODY)} B body) to Kafka acks all; the load generator and the API on this machine (${os.cpus().length} cores)`);
  console.table(
    rows.map((r) => ({
      path: r.path,
      "offered/s": r.offered,
      "accepted/s": r.acceptedPerS,
      "× raw": (r.acceptedPerS / raw).toFixed(3),
      "p50 ms": r.p50Ms,
      "p99 ms": r.p99Ms,
      refused: r.refused,
      errors: r.errors,
      "API cpu %": r.apiCpuPercent ?? "",
    })),
  );
  // The slower of the two: a client that sends an Idempotency-Key with every request must get it too.
  const saturated = Math.min(...rows.filter((r) => r.path.startsWith("API") && r.offered === "saturation").map((r) => r.acceptedPerS));
  const at500 = rows.find((r) => r.path.startsWith("API") && r.offered === 500)!;
  console.log(`records the API wrote to ${topic}: ${written} (one per 202, warm-up included)`);
  console.log(`targets: ≥ ${TARGET_ACCEPTED_PER_S} accepted/s: ${saturated} (${(saturated / raw).toFixed(3)}× raw kafkajs ${raw}/s) — ${saturated >= TARGET_ACCEPTED_PER_S ? "met" : "NOT met"}; p99 ≤ ${TARGET_P99_MS_AT_500} ms at 500/s: ${at500.p99Ms} ms — ${at500.p99Ms <= TARGET_P99_MS_AT_500 ? "met" : "NOT met"}`);
  printEmailParsing(email);

  const dir = path.join(REPO_ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `ingest-${new Date().toISOString().replaceAll(":", "-").slice(0, 19)}.json`);
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), seconds: SECONDS, cores: os.cpus().length, bodyBytes: Buffer.byteLength(BODY), rows, recordsWritten: written, email }, null, 2)}\n`);
  console.log(`written ${path.relative(REPO_ROOT, file)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await main();
  process.exit(0);
}
