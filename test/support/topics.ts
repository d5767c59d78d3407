import { randomUUID } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka } from "kafkajs";
import pino from "pino";
import { toInquiry, SAMPLE_INQUIRIES } from "../../cli/samples/index.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { registerSchema, targetFor } from "../../schemas/registry.js";
import type { Endpoints } from "../../stack/index.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import type { ProcessorDeclaration, Topology } from "../../streams/topology.js";
import { schemaRegistryOptions } from "../../config/security.js";

export const quietLog = pino({ level: "error" });

const chainTopic = (name: string, partitions: number) => ({
  name,
  description: name,
  partitions,
  retentionMs: 86_400_000,
  compacted: false,
  valueSchema: "inquiries.received",
});

/** A chain of pass-through hops over `topics` (hop i reads topics[i] and writes topics[i + 1]). */
export function chainTopology(name: string, topics: readonly string[], partitions = 3): Topology {
  return {
    name,
    topics: topics.map((t) => chainTopic(t, partitions)),
    processors: topics.slice(1).map((output, i) => ({
      name: `${name}-hop${i + 1}`,
      description: "test pass-through",
      inputs: [topics[i]!],
      outputs: [output],
      metricsPort: 0,
    })),
    chains: [],
    connectors: [],
  };
}

export function passthroughTopology(name: string, input: string, output: string): { topology: Topology; processor: ProcessorDeclaration } {
  const topology = chainTopology(name, [input, output]);
  return { topology, processor: { ...topology.processors[0]!, name } };
}

export interface ChainFixture {
  readonly endpoints: Endpoints;
  readonly kafka: Kafka;
  readonly codec: TopicCodec;
  readonly name: string;
  readonly topics: readonly string[];
  /** First and last topic of the chain. */
  readonly input: string;
  readonly output: string;
  readonly topology: Topology;
}

/** Fresh topics for a chain of `hops` pass-throughs (and their DLQs), with registered schemas, unique to one run. */
export async function chainFixture(label: string, endpoints: Endpoints, hops = 1, partitions = 3): Promise<ChainFixture> {
  const id = `${label}-${randomUUID().slice(0, 8)}`;
  const name = `test-${id}`;
  const topics = Array.from({ length: hops + 1 }, (_, i) => `test.${id}.${i}`);
  const topology = chainTopology(name, topics, partitions);
  const kafka = createKafka(endpoints, name, quietLog);
  await createTopics(kafka, topology, quietLog);
  for (const topic of topics) await registerSchema(endpoints, targetFor(topic, "inquiries.received"));
  const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), topology.topics);
  return { endpoints, kafka, codec, name, topics, input: topics[0]!, output: topics.at(-1)!, topology };
}

/** Environment that points a child process at the test's services. */
export function serviceEnv(endpoints: Endpoints): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KAFKA_BROKERS: endpoints.kafkaBrokers.join(","),
    SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl,
    DATABASE_URL: endpoints.databaseUrl,
    REDIS_URL: endpoints.redisUrl,
    ELASTICSEARCH_URL: endpoints.elasticsearchUrl,
    IMAP_URL: endpoints.imapUrl,
  };
}

/** Starts hop `hop` of the chain as a pass-through worker process (so it can be SIGKILLed). */
export function startWorker(fixture: ChainFixture, extraEnv: NodeJS.ProcessEnv = {}, hop = 0): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", new URL("./passthrough-worker.ts", import.meta.url).pathname], {
    env: {
      ...serviceEnv(fixture.endpoints),
      WORKER_NAME: fixture.topology.processors[hop]!.name,
      WORKER_INPUT: fixture.topics[hop],
      WORKER_OUTPUT: fixture.topics[hop + 1],
      SWITCHBOARD_METRICS_PORT: "0",
      SWITCHBOARD_INSTANCE_ID: "worker",
      SWITCHBOARD_SESSION_TIMEOUT_MS: "6000",
      SWITCHBOARD_RETRY_BACKOFF_MS: "50",
      SWITCHBOARD_MAX_ATTEMPTS: "3",
      LOG_LEVEL: process.env.WORKER_LOG_LEVEL ?? "warn",
      ...extraEnv,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return child;
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  await exited;
}

export function inquiries(count: number, prefix = "msg"): InquiryReceived[] {
  return Array.from({ length: count }, (_, i) => {
    const base = toInquiry(SAMPLE_INQUIRIES[i % SAMPLE_INQUIRIES.length]!);
    return { ...base, inquiry_id: `${prefix}-${i}` };
  });
}

export async function produce(fixture: ChainFixture, values: readonly InquiryReceived[], batchSize = 500): Promise<void> {
  const producer = fixture.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < values.length; i += batchSize) {
      const messages = values.slice(i, i + batchSize).map((v) => ({ key: v.inquiry_id, value: fixture.codec.encode(fixture.input, v) }));
      await producer.send({ topic: fixture.input, messages });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Raw records, for poison tests. */
export async function produceRaw(fixture: ChainFixture, messages: { key: string; value: Buffer | null }[]): Promise<void> {
  const producer = fixture.kafka.producer();
  await producer.connect();
  await producer.send({ topic: fixture.input, messages });
  await producer.disconnect();
}

/**
 * Everything committed in a topic (read_committed), read from the beginning until `expected`
 * records arrived and nothing more came for `settleMs`, or until the timeout.
 */
export async function readCommitted(
  kafka: Kafka,
  topic: string,
  expected: number,
  { timeoutMs = 120_000, settleMs = 3_000 } = {},
): Promise<{ key: string | null; value: Buffer | null; headers: Record<string, string>; partition: number }[]> {
  const records: { key: string | null; value: Buffer | null; headers: Record<string, string>; partition: number }[] = [];
  const consumer = kafka.consumer({ groupId: `test-reader-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let lastArrival = Date.now();
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      lastArrival = Date.now();
      records.push({
        partition,
        key: message.key?.toString() ?? null,
        value: message.value,
        headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
      });
    },
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !(records.length >= expected && Date.now() - lastArrival > settleMs)) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await consumer.disconnect();
  return records;
}
