/**
 * `npm run bench:client`: kafkajs against @confluentinc/kafka-javascript (librdkafka) on the same
 * broker, in one run, with the same JSON records: raw produce→consume (one hop, no transactions)
 * and a six-hop transactional relay (one process per hop: fetch batch → transaction with the
 * consumed offsets → commit), sustained throughput, end-to-end latency at fixed offered rates, and
 * CPU per record of the client processes and the broker.
 *
 * Both relays are the same loop written against the KafkaJS-style API the two clients share, so
 * the comparison is the client, not Switchboard's runtime. The confluent client is not a dependency
 * of the repository: it is installed on demand into .stack/bench-clients (built from source with
 * node-gyp, minutes). When it cannot be built or fails, the kafkajs figures are still printed.
 *
 * BENCH_RECORDS (default 30000) records at saturation, BENCH_SECONDS (default 20) per offered rate.
 */
import { randomUUID } from "node:crypto";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Kafka } from "kafkajs";
import pino from "pino";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { createLogger } from "../../config/log.js";
import { localServices, resolveEndpoints, stackPorts, type Endpoints } from "../../stack/index.js";
import { kafka as kafkaService } from "../../stack/services/kafka.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { createGroupCommit } from "../../streams/group-commit.js";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import { chainTopology, inquiries, quietLog, stopChild } from "../support/topics.js";
import { percentile, usageMeter } from "./measure.js";

const HOPS = 6;
const PARTITIONS = 6;
const RECORDS = Number(process.env.BENCH_RECORDS ?? 30_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const RATES = [100, 1_000] as const;
/** Every consumer of both clients waits at most this long in a fetch (the runtime bench's arrivals consumer does the same). */
const MAX_WAIT_MS = 20;
const TRANSACTION_TIMEOUT_MS = 30_000;
/** Initial retry backoff of the transactional producers of both clients (as streams/runtime.ts has it for kafkajs). */
const RETRY_BACKOFF_MS = 10;
/**
 * librdkafka properties added to every confluent producer and consumer, e.g. '{"linger.ms":0}'
 * (BENCH_CONFLUENT_CONFIG, JSON): what a tuning would buy, measured against the same kafkajs run.
 */
const extraConfluentConfig = JSON.parse(process.env.BENCH_CONFLUENT_CONFIG ?? "{}") as Record<
  string,
  string | number | boolean
>;
const CONFLUENT_VERSION = "1.10.1";
const CONFLUENT_PACKAGE = "@confluentinc/kafka-javascript";
const CLIENTS_DIR = path.join(REPO_ROOT, ".stack", "bench-clients");
const THIS_FILE = fileURLToPath(import.meta.url);

type ClientName = "kafkajs" | "confluent";

// ---------------------------------------------------------------------------------------------
// The KafkaJS-style surface both clients share, as far as this benchmark uses it.

interface OutMessage {
  readonly key?: Buffer | string | null;
  readonly value: Buffer | string | null;
}
interface InMessage {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly offset: string;
}
interface InBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: InMessage[];
}
interface TopicOffsets {
  topic: string;
  partitions: { partition: number; offset: string }[];
}
interface Transaction {
  send(record: { topic: string; messages: OutMessage[] }): Promise<unknown>;
  sendOffsets(args: unknown): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}
interface Producer {
  connect(): Promise<void>;
  send(record: { topic: string; messages: OutMessage[] }): Promise<unknown>;
  transaction(): Promise<Transaction>;
  disconnect(): Promise<void>;
}
interface Consumer {
  connect(): Promise<void>;
  subscribe(topic: string): Promise<void>;
  /** Calls `eachBatch` with each fetched partition batch; offsets are never auto-committed. */
  run(eachBatch: (batch: InBatch) => Promise<void>, partitionsConsumedConcurrently?: number): Promise<void>;
  disconnect(): Promise<void>;
  /** The client's own consumer object. */
  readonly native: unknown;
}
interface Client {
  readonly name: ClientName;
  /** Idempotent; transactional when `transactionalId` is given. */
  producer(transactionalId?: string): Producer;
  consumer(groupId: string, readCommitted: boolean): Consumer;
  /**
   * The argument of `transaction.sendOffsets`: kafkajs names the group (TxnOffsetCommit without the
   * group's generation), the confluent client passes the consumer (its group metadata, KIP-447).
   */
  offsets(consumer: Consumer, groupId: string, topics: TopicOffsets[]): unknown;
}

// kafkajs, with the repository's client settings (createKafka: retries, pino logging).
function kafkajsClient(endpoints: Endpoints): Client {
  const kafka: Kafka = createKafka(endpoints, `bench-client-${randomUUID().slice(0, 8)}`, quietLog);
  return {
    name: "kafkajs",
    producer: (transactionalId) =>
      kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        // The runtime's transactional producer settings (streams/runtime.ts): the client-wide 300 ms
        // backoff would follow every CONCURRENT_TRANSACTIONS answer right after a commit.
        ...(transactionalId
          ? {
              transactionalId,
              transactionTimeout: TRANSACTION_TIMEOUT_MS,
              retry: { initialRetryTime: RETRY_BACKOFF_MS, multiplier: 2, maxRetryTime: 2_000, retries: 12 },
            }
          : {}),
      }) as unknown as Producer,
    consumer: (groupId, readCommitted) => {
      const consumer = kafka.consumer({ groupId, readUncommitted: !readCommitted, maxWaitTimeInMs: MAX_WAIT_MS });
      return {
        native: consumer,
        connect: () => consumer.connect(),
        subscribe: (topic) => consumer.subscribe({ topics: [topic], fromBeginning: true }),
        run: (eachBatch, partitionsConsumedConcurrently = 1) =>
          consumer.run({
            autoCommit: false,
            partitionsConsumedConcurrently,
            eachBatch: ({ batch }) => eachBatch(batch),
          }),
        disconnect: () => consumer.disconnect(),
      };
    },
    offsets: (_consumer, consumerGroupId, topics) => ({ consumerGroupId, topics }),
  };
}

interface ConfluentModule {
  KafkaJS: {
    Kafka: new (config: Record<string, unknown>) => {
      producer(config: Record<string, unknown>): Producer;
      consumer(config: Record<string, unknown>): {
        connect(): Promise<void>;
        subscribe(s: { topics: string[] }): Promise<void>;
        run(c: {
          partitionsConsumedConcurrently: number;
          eachBatch: (p: { batch: InBatch }) => Promise<void>;
        }): Promise<void>;
        disconnect(): Promise<void>;
      };
    };
    logLevel: Record<string, number>;
  };
  librdkafkaVersion?: string;
}

/**
 * The confluent client's KafkaJS-compatible API. Its defaults are kept (librdkafka's linger.ms 5,
 * idempotence with up to 5 requests in flight) except where they would make the loop differ from
 * kafkajs's: eachBatch gets everything fetched for a partition (`js.consumer.max.batch.size` -1,
 * kafkajs has no cap; the default 32 would make transactions of at most 32 records), the same
 * fetch wait, and the transactional producer's retry backoff and transaction timeout.
 */
function confluentClient(module: ConfluentModule, endpoints: Endpoints): Client {
  const { tls, ca, cert, key, sasl } = endpoints.security.kafka;
  const kafka = new module.KafkaJS.Kafka({
    kafkaJS: {
      brokers: [...endpoints.kafkaBrokers],
      clientId: `bench-client-${randomUUID().slice(0, 8)}`,
      logLevel: module.KafkaJS.logLevel.ERROR,
      ...(tls ? { ssl: true } : {}),
      ...(sasl ? { sasl: { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } } : {}),
    },
    ...(ca ? { "ssl.ca.pem": ca } : {}),
    ...(cert ? { "ssl.certificate.pem": cert, "ssl.key.pem": key } : {}),
  });
  return {
    name: "confluent",
    producer: (transactionalId) =>
      kafka.producer({
        kafkaJS: {
          idempotent: true,
          ...(transactionalId ? { transactionalId, transactionTimeout: TRANSACTION_TIMEOUT_MS } : {}),
        },
        // The same backoff as kafkajs's transactional producer (librdkafka's default is 100 ms, up to 1 s).
        ...(transactionalId ? { "retry.backoff.ms": RETRY_BACKOFF_MS, "retry.backoff.max.ms": 2_000 } : {}),
        ...extraConfluentConfig,
      }),
    consumer: (groupId, readCommitted) => {
      const consumer = kafka.consumer({
        kafkaJS: {
          groupId,
          readUncommitted: !readCommitted,
          maxWaitTimeInMs: MAX_WAIT_MS,
          fromBeginning: true,
          autoCommit: false,
        },
        "js.consumer.max.batch.size": -1,
        ...extraConfluentConfig,
      });
      return {
        native: consumer,
        connect: () => consumer.connect(),
        subscribe: (topic) => consumer.subscribe({ topics: [topic] }),
        run: (eachBatch, partitionsConsumedConcurrently = 1) =>
          consumer.run({ partitionsConsumedConcurrently, eachBatch: ({ batch }) => eachBatch(batch) }),
        disconnect: () => consumer.disconnect(),
      };
    },
    offsets: (consumer, _groupId, topics) => ({ consumer: consumer.native, topics }),
  };
}

const confluentRequire = () => createRequire(path.join(CLIENTS_DIR, "noop.js"));

function loadConfluent(): ConfluentModule {
  return confluentRequire()(CONFLUENT_PACKAGE) as ConfluentModule;
}

/**
 * The confluent client from .stack/bench-clients, installed there first when missing. The plain
 * install tries a prebuilt binary and then a static build that downloads zlib, OpenSSL, zstd and
 * curl sources; where only the package registry is reachable both fail, and the install is redone
 * linking librdkafka against the system's libraries (CKJS_LINKING=dynamic: OpenSSL and zlib; zstd
 * and curl are left out when their headers are missing).
 */
function ensureConfluent(): { module: ConfluentModule; buildSeconds?: number; linking?: string } {
  try {
    return { module: loadConfluent() };
  } catch {
    // not installed yet, or a broken install: (re)install below
  }
  mkdirSync(CLIENTS_DIR, { recursive: true });
  const started = performance.now();
  const install = (env: NodeJS.ProcessEnv) =>
    spawnSync(
      "nice",
      ["-n", "10", "npm", "install", "--prefix", CLIENTS_DIR, "--no-save", `${CONFLUENT_PACKAGE}@${CONFLUENT_VERSION}`],
      {
        env: { ...process.env, ...env },
        stdio: ["ignore", "ignore", "pipe"],
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      },
    );
  console.log(
    `${CONFLUENT_PACKAGE}@${CONFLUENT_VERSION} is not in ${CLIENTS_DIR}: installing it there, building librdkafka from source with node-gyp (this takes minutes) …`,
  );
  let result = install({});
  let linking = "static";
  if (result.status !== 0) {
    const reason = /Download of \S+ failed|ENOTFOUND \S+/.exec(result.stderr ?? "")?.[0] ?? `exit ${result.status}`;
    console.log(
      `the default build failed (${reason}); building again linked against the system's OpenSSL and zlib (CKJS_LINKING=dynamic) …`,
    );
    result = install({ CKJS_LINKING: "dynamic" });
    linking = "dynamic";
  }
  const buildSeconds = (performance.now() - started) / 1000;
  if (result.status !== 0) {
    const tail = (result.stderr ?? "")
      .split("\n")
      .filter((l) => /error|ERR!/i.test(l))
      .slice(-12)
      .join("\n");
    throw new Error(
      `npm install of ${CONFLUENT_PACKAGE} failed after ${buildSeconds.toFixed(0)} s (exit ${result.status}):\n${tail}`,
    );
  }
  console.log(`built and installed in ${buildSeconds.toFixed(0)} s (${linking} librdkafka)`);
  return { module: loadConfluent(), buildSeconds, linking };
}

async function clientFor(name: ClientName, endpoints: Endpoints): Promise<Client> {
  return name === "kafkajs" ? kafkajsClient(endpoints) : confluentClient(loadConfluent(), endpoints);
}

// ---------------------------------------------------------------------------------------------
// One relay hop, in its own process: the same minimal loop for both clients.

/**
 * How a hop makes transactions. `fetch`: the partition batches of one fetch (handled concurrently,
 * one per partition) join one transaction, the way streams/runtime.ts does it (with the same
 * streams/group-commit.ts, which knows nothing of the client). `partition`: one transaction per
 * partition batch, one batch at a time, the plainest loop.
 */
type RelayMode = "fetch" | "partition";
const RELAY_MODES = (process.env.BENCH_RELAY_MODES ?? "fetch,partition").split(",") as RelayMode[];

interface HopSpec {
  readonly client: ClientName;
  readonly mode: RelayMode;
  readonly input: string;
  readonly output: string;
  readonly groupId: string;
  readonly transactionalId: string;
}

async function runHop(spec: HopSpec): Promise<void> {
  const client = await clientFor(spec.client, resolveEndpoints(loadConfig()));
  const producer = client.producer(spec.transactionalId);
  const consumer = client.consumer(spec.groupId, true);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(0), 5_000);
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    clearTimeout(force);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe(spec.input);
  /** One transaction: every part's records to the next topic, and the offsets after them. */
  const commit = async (parts: readonly InBatch[]) => {
    const transaction = await producer.transaction();
    try {
      await transaction.send({
        topic: spec.output,
        messages: parts.flatMap((b) => b.messages.map((m) => ({ key: m.key, value: m.value }))),
      });
      const topics = [...new Set(parts.map((b) => b.topic))].map((topic) => ({
        topic,
        partitions: parts
          .filter((b) => b.topic === topic)
          .map((b) => ({ partition: b.partition, offset: (BigInt(b.messages.at(-1)!.offset) + 1n).toString() })),
      }));
      await transaction.sendOffsets(client.offsets(consumer, spec.groupId, topics));
      await transaction.commit();
    } catch (error) {
      await transaction.abort().catch(() => undefined);
      throw error;
    }
  };
  if (spec.mode === "partition") {
    await consumer.run(async (batch) => {
      if (batch.messages.length > 0 && !stopping) await commit([batch]);
    });
  } else {
    const group = createGroupCommit<InBatch>(commit);
    await consumer.run(async (batch) => {
      const ticket = group.begin();
      if (batch.messages.length === 0 || stopping) ticket.abandon();
      else await ticket.join(batch);
    }, PARTITIONS);
  }
}

function startHop(spec: HopSpec): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", THIS_FILE, "hop"], {
    env: { ...process.env, BENCH_HOP: JSON.stringify(spec) },
    stdio: ["ignore", "inherit", "inherit"],
  });
}

// ---------------------------------------------------------------------------------------------
// Driving a path: records stamped with their send time go in, arrivals report their latency.

interface Stamped {
  readonly inquiry_id: string;
  readonly envelope: { received_at: number };
}

interface Path {
  send(values: readonly Stamped[]): Promise<void>;
  onArrival(listener: (latencyMs: number) => void): void;
  close(): Promise<void>;
}

async function openPath(client: Client, input: string, output: string, readCommitted: boolean): Promise<Path> {
  const producer = client.producer();
  await producer.connect();
  let listener: (latencyMs: number) => void = () => undefined;
  const consumer = client.consumer(`bench-client-sink-${randomUUID()}`, readCommitted);
  await consumer.connect();
  await consumer.subscribe(output);
  await consumer.run(async (batch) => {
    const now = Date.now();
    for (const message of batch.messages)
      listener(now - (JSON.parse(message.value!.toString()) as Stamped).envelope.received_at);
  });
  return {
    send: async (values) => {
      await producer.send({
        topic: input,
        messages: values.map((v) => ({ key: v.inquiry_id, value: JSON.stringify(v) })),
      });
    },
    onArrival: (l) => (listener = l),
    close: async () => {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
}

const stamped = (values: readonly Stamped[]) => {
  const now = Date.now();
  return values.map((v) => ({ ...v, envelope: { ...v.envelope, received_at: now } }));
};

/** `done`, or a clear error after `ms` (a hop that died, or a client that stalls, must not hang the run). */
async function within<T>(done: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000} s`)), ms)),
  );
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function warmUp(path: Path, count = 200): Promise<void> {
  let arrived = 0;
  const done = new Promise<void>((resolve) => path.onArrival(() => ++arrived === count && resolve()));
  await path.send(stamped(inquiries(count, "warm")));
  await within(done, 120_000, "warm-up");
}

async function saturation(path: Path, records: number): Promise<number> {
  const values = inquiries(records, "sat");
  let arrived = 0;
  const done = new Promise<void>((resolve) => path.onArrival(() => ++arrived === records && resolve()));
  const started = performance.now();
  for (let i = 0; i < values.length; i += 1000) await path.send(stamped(values.slice(i, i + 1000)));
  await within(done, 300_000, `saturation (${arrived} of ${records} arrived)`);
  return records / ((performance.now() - started) / 1000);
}

async function latencyAt(path: Path, rate: number, seconds: number): Promise<number[]> {
  const latencies: number[] = [];
  const total = rate * seconds;
  const done = new Promise<void>((resolve) => path.onArrival((ms) => latencies.push(ms) === total && resolve()));
  const tickMs = 20;
  const perTick = (rate * tickMs) / 1000;
  const values = inquiries(total, "lat");
  const started = performance.now();
  const sends: Promise<void>[] = [];
  for (let tick = 0; tick * perTick < total; tick++) {
    const wait = started + tick * tickMs - performance.now();
    if (wait > 0) await sleep(wait);
    sends.push(path.send(stamped(values.slice(tick * perTick, (tick + 1) * perTick))));
  }
  await Promise.all(sends);
  await within(done, 120_000, `latency at ${rate}/s (${latencies.length} of ${total} arrived)`);
  return latencies.sort((a, b) => a - b);
}

interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly n: number;
}
const summary = (sorted: number[]): Percentiles => ({
  p50: percentile(sorted, 50),
  p95: percentile(sorted, 95),
  p99: percentile(sorted, 99),
  n: sorted.length,
});

interface PathResult {
  readonly throughput: number;
  readonly latency: Record<number, Percentiles>;
  /** CPU ms per record at saturation: the client processes (raw: this process producing and consuming; relay: the six hops together). */
  readonly clientCpuMsPerRecord: number;
  readonly brokerCpuMsPerRecord: number;
  /** Relay only: this process (producing into and consuming out of the relay), and each hop. */
  readonly driverCpuMsPerRecord?: number;
  readonly hopCpuMsPerRecord?: number[];
  readonly hopPeakRssMb?: number[];
}

const cpuSecondsOf = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1e6;

async function benchRaw(client: Client, topic: string, brokerPid: number | undefined): Promise<PathResult> {
  const path = await openPath(client, topic, topic, false);
  try {
    await warmUp(path);
    const broker = brokerPid === undefined ? undefined : usageMeter([brokerPid]);
    const own = process.cpuUsage();
    const throughput = await saturation(path, RECORDS);
    const ownSeconds = cpuSecondsOf(process.cpuUsage(own));
    const brokerSeconds = broker?.stop().get(brokerPid!)?.cpuSeconds ?? Number.NaN;
    const latency: Record<number, Percentiles> = {};
    for (const rate of RATES) latency[rate] = summary(await latencyAt(path, rate, SECONDS));
    return {
      throughput,
      latency,
      clientCpuMsPerRecord: (ownSeconds * 1000) / RECORDS,
      brokerCpuMsPerRecord: (brokerSeconds * 1000) / RECORDS,
    };
  } finally {
    await path.close();
  }
}

async function benchRelay(
  client: Client,
  mode: RelayMode,
  topics: readonly string[],
  runId: string,
  brokerPid: number | undefined,
): Promise<PathResult> {
  const hops = topics.slice(1).map((output, i) =>
    startHop({
      client: client.name,
      mode,
      input: topics[i]!,
      output,
      groupId: `bench-client-${runId}-${client.name}-${mode}-hop${i + 1}`,
      transactionalId: `bench-client-${runId}-${client.name}-${mode}-hop${i + 1}`,
    }),
  );
  const died = new Promise<never>((_, reject) => {
    for (const [i, hop] of hops.entries())
      hop.once("exit", (code, signal) => reject(new Error(`hop ${i + 1} exited (${signal ?? code}) during the run`)));
  });
  died.catch(() => undefined);
  let path: Path | undefined;
  try {
    path = await openPath(client, topics[0]!, topics.at(-1)!, true);
    const p = path;
    await Promise.race([warmUp(p), died]);
    const pids = hops.map((h) => h.pid!);
    const meter = usageMeter(brokerPid === undefined ? pids : [...pids, brokerPid]);
    const sampler = setInterval(() => meter.sample(), 500);
    const own = process.cpuUsage();
    const throughput = await Promise.race([saturation(p, RECORDS), died]);
    const ownSeconds = cpuSecondsOf(process.cpuUsage(own));
    clearInterval(sampler);
    const usage = meter.stop();
    const hopCpu = pids.map((pid) => (usage.get(pid)!.cpuSeconds * 1000) / RECORDS);
    const latency: Record<number, Percentiles> = {};
    for (const rate of RATES) latency[rate] = summary(await Promise.race([latencyAt(p, rate, SECONDS), died]));
    return {
      throughput,
      latency,
      clientCpuMsPerRecord: hopCpu.reduce((a, b) => a + b, 0),
      brokerCpuMsPerRecord: brokerPid === undefined ? Number.NaN : (usage.get(brokerPid)!.cpuSeconds * 1000) / RECORDS,
      driverCpuMsPerRecord: (ownSeconds * 1000) / RECORDS,
      hopCpuMsPerRecord: hopCpu,
      hopPeakRssMb: pids.map((pid) => usage.get(pid)!.rssMb),
    };
  } finally {
    for (const hop of hops) hop.removeAllListeners("exit");
    await Promise.all(hops.map((h) => stopChild(h)));
    await path?.close();
  }
}

// ---------------------------------------------------------------------------------------------

type PathKind = "raw" | `relay-${RelayMode}`;
const PATHS: readonly PathKind[] = ["raw", ...RELAY_MODES.map((m) => `relay-${m}` as const)];
const PATH_LABELS: Record<PathKind, string> = {
  raw: "raw, 1 hop",
  "relay-fetch": `relay ${HOPS} hops, txn per fetch`,
  "relay-partition": `relay ${HOPS} hops, txn per partition batch`,
};

interface ClientRun {
  paths: Partial<Record<PathKind, PathResult>>;
  errors: string[];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ logLevel: "warn" });
  const endpoints = resolveEndpoints(config);
  const supervisor = createSupervisor(config.stackHome, stackPorts(config), log);
  const kafkaServices = localServices(config).filter((s) => s === kafkaService);
  if (kafkaServices.length > 0) await supervisor.up(kafkaServices);
  const brokerPid = kafkaServices.length > 0 ? (await supervisor.status(kafkaServices))[0]?.pid : undefined;
  if (brokerPid === undefined) console.log("the broker is not a local stack service: its CPU is not measured");

  // Whatever else the machine runs shares its cores with the clients and the broker.
  const loadAtStart = os.loadavg();
  const runs: Record<ClientName, ClientRun> = {
    kafkajs: { paths: {}, errors: [] },
    confluent: { paths: {}, errors: [] },
  };
  let confluentBuild: { seconds?: number; linking?: string; librdkafka?: string } = {};
  let confluentReady = false;
  try {
    const { module, buildSeconds, linking } = ensureConfluent();
    confluentBuild = { seconds: buildSeconds, linking, librdkafka: module.librdkafkaVersion };
    confluentReady = true;
  } catch (error) {
    const message = `${CONFLUENT_PACKAGE} is not available, only kafkajs is measured: ${messageOf(error)}`;
    console.error(`\n*** ${message}\n`);
    runs.confluent.errors.push(message);
  }
  const names: ClientName[] = confluentReady ? ["kafkajs", "confluent"] : ["kafkajs"];

  const runId = randomUUID().slice(0, 8);
  const prefix = `bench.client.${runId}`;
  // Silent: createTopics's leader wait logs kafkajs's answers for not yet ready partitions as errors.
  const admin = createKafka(endpoints, `bench-client-admin-${runId}`, pino({ level: "silent" }));
  const rawTopic = (name: ClientName) => `${prefix}.${name}.raw`;
  const relayTopics = (name: ClientName, mode: RelayMode) =>
    Array.from({ length: HOPS + 1 }, (_, i) => `${prefix}.${name}.${mode}.${i}`);
  for (const name of names) {
    await createTopics(admin, chainTopology(`bench-client-${name}-raw`, [rawTopic(name)], PARTITIONS), quietLog);
    for (const mode of RELAY_MODES)
      await createTopics(
        admin,
        chainTopology(`bench-client-${name}-${mode}`, relayTopics(name, mode), PARTITIONS),
        quietLog,
      );
  }

  // Path by path, each client measured alone and in the same order.
  for (const kind of PATHS) {
    for (const name of names) {
      console.log(`${name}: ${PATH_LABELS[kind]} …`);
      try {
        const client = await clientFor(name, endpoints);
        const mode = kind === "raw" ? undefined : (kind.slice("relay-".length) as RelayMode);
        runs[name].paths[kind] = mode
          ? await benchRelay(client, mode, relayTopics(name, mode), runId, brokerPid)
          : await benchRaw(client, rawTopic(name), brokerPid);
      } catch (error) {
        runs[name].errors.push(`${PATH_LABELS[kind]}: ${messageOf(error)}`);
        console.error(`${name} ${PATH_LABELS[kind]} failed: ${messageOf(error)}`);
      }
    }
  }

  const kafkaAdmin = admin.admin();
  try {
    await kafkaAdmin.connect();
    const ours = (await kafkaAdmin.listTopics()).filter((t) => t.startsWith(prefix));
    if (ours.length > 0) await kafkaAdmin.deleteTopics({ topics: ours });
  } catch (error) {
    console.error(`deleting the run's topics failed (${messageOf(error)}); they start with ${prefix}`);
  } finally {
    await kafkaAdmin.disconnect();
  }

  const fixed = (n: number | undefined, digits = 3) => (n === undefined || Number.isNaN(n) ? "?" : n.toFixed(digits));
  const rows = names.flatMap((name) =>
    PATHS.map((kind): Record<string, string | number> => {
      const r = runs[name].paths[kind];
      if (!r) return { client: name, path: PATH_LABELS[kind], "records/s": "failed" };
      return {
        client: name,
        path: PATH_LABELS[kind],
        "records/s": Math.round(r.throughput),
        ...Object.fromEntries(
          RATES.flatMap((rate) => [
            [`p50@${rate}`, r.latency[rate]!.p50],
            [`p95@${rate}`, r.latency[rate]!.p95],
            [`p99@${rate}`, r.latency[rate]!.p99],
          ]),
        ),
        "cpu ms/rec client": fixed(r.clientCpuMsPerRecord),
        "cpu ms/rec broker": fixed(r.brokerCpuMsPerRecord),
      };
    }),
  );
  console.log(
    `\nClient benchmark (${runId}): kafkajs vs ${CONFLUENT_PACKAGE}@${CONFLUENT_VERSION}${confluentBuild.librdkafka ? ` (librdkafka ${confluentBuild.librdkafka})` : ""}, ${RECORDS} records at saturation, ${SECONDS} s at each of ${RATES.join(", ")}/s, latencies in ms, ${PARTITIONS} partitions, ${os.cpus().length} cores, load average at the start ${loadAtStart.map((l) => l.toFixed(1)).join(" ")} and at the end ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  if (Object.keys(extraConfluentConfig).length > 0)
    console.log(`confluent clients with BENCH_CONFLUENT_CONFIG ${JSON.stringify(extraConfluentConfig)}`);
  console.log(
    "client CPU: raw = the producing and consuming process; relay = the six hop processes together (per record through the relay); at saturation",
  );
  console.table(rows);
  for (const name of names) {
    for (const mode of RELAY_MODES) {
      const relay = runs[name].paths[`relay-${mode}`];
      if (!relay) continue;
      console.log(
        `${name} ${PATH_LABELS[`relay-${mode}`]}: per hop CPU ms/record ${relay.hopCpuMsPerRecord!.map((c) => c.toFixed(3)).join(", ")}; peak RSS MB ${relay.hopPeakRssMb!.map((m) => m.toFixed(0)).join(", ")}; driver (producer + sink) ${fixed(relay.driverCpuMsPerRecord)} ms/record`,
      );
    }
  }

  const ratios: Record<string, string>[] = [];
  if (confluentReady) {
    for (const kind of PATHS) {
      const k = runs.kafkajs.paths[kind];
      const c = runs.confluent.paths[kind];
      if (!k || !c) continue;
      ratios.push({
        path: PATH_LABELS[kind],
        throughput: (c.throughput / k.throughput).toFixed(2),
        ...Object.fromEntries(
          RATES.flatMap((rate) => [
            [`p50@${rate}`, (c.latency[rate]!.p50 / k.latency[rate]!.p50).toFixed(2)],
            [`p99@${rate}`, (c.latency[rate]!.p99 / k.latency[rate]!.p99).toFixed(2)],
          ]),
        ),
        "cpu client": (c.clientCpuMsPerRecord / k.clientCpuMsPerRecord).toFixed(2),
        "cpu broker": (c.brokerCpuMsPerRecord / k.brokerCpuMsPerRecord).toFixed(2),
      });
    }
    console.log("ratios confluent / kafkajs (throughput: higher is better; latency and CPU: lower is better):");
    console.table(ratios);
    if (confluentBuild.seconds !== undefined)
      console.log(
        `${CONFLUENT_PACKAGE} was built in this run: ${confluentBuild.seconds.toFixed(0)} s (${confluentBuild.linking} librdkafka)`,
      );
  }
  for (const name of names) for (const error of runs[name].errors) console.error(`${name}: ${error}`);
  if (!confluentReady) for (const error of runs.confluent.errors) console.error(error);

  const at = new Date().toISOString();
  const dir = path.join(REPO_ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `client-${at.replace(/[:.]/g, "-").slice(0, 19)}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ at, runId, records: RECORDS, seconds: SECONDS, rates: RATES, hops: HOPS, partitions: PARTITIONS, cores: os.cpus().length, loadAverage: { start: loadAtStart, end: os.loadavg() }, confluent: { version: CONFLUENT_VERSION, available: confluentReady, extraConfig: extraConfluentConfig, ...confluentBuild }, runs, ratios }, null, 2)}\n`,
  );
  console.log(`written: ${file}`);
}

if (process.argv[2] === "hop") {
  await runHop(JSON.parse(process.env.BENCH_HOP!) as HopSpec);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await main();
  process.exit(0);
}
