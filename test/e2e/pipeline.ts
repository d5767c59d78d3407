import { randomUUID } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka, Producer } from "kafkajs";
import {
  deployedRunnables,
  runnableProcessor,
  spawnProcessor,
  stopProcessor,
  waitHealthy,
  type ProcessorProcess,
  type Runnable,
} from "../../cli/processes.js";
import { REPO_ROOT } from "../../config/settings.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import type { Endpoints } from "../../stack/index.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics, dlqTopicName } from "../../streams/topology.js";
import { quietLog, serviceEnv } from "../support/topics.js";
import { schemaRegistryOptions } from "../../config/security.js";

const run = promisify(execFile);

/** Test ports for the processors' /healthz, clear of a running main job's. */
const defaultPortOf = (task: Runnable) => task.port + 10_000;

/**
 * How the pipeline is deployed: `chained` as `switchboard up` runs it (the triage chain and the
 * sinks), or `unchained`, every processor its own process (what the chain replaces).
 */
export type Deployment = "chained" | "unchained";

export const runnablesOf = (deployment: Deployment): Runnable[] =>
  deployment === "chained" ? deployedRunnables(TRIAGE) : TRIAGE.processors.map(runnableProcessor);

export interface Pipeline {
  readonly kafka: Kafka;
  readonly codec: TopicCodec;
  readonly logDir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly deployment: Deployment;
  start(name: string): Promise<void>;
  kill(name: string): void;
  /** SIGTERM and wait for the graceful exit. */
  terminate(name: string): Promise<void>;
  /** Process id of each running processor (or chain), by name. */
  pids(): Map<string, number>;
  /** A running processor's /metrics text (Prometheus exposition format). */
  metrics(name: string): Promise<string>;
  stop(): Promise<void>;
  send(inquiries: readonly InquiryReceived[]): Promise<void>;
  sendRaw(messages: { key: string; value: Buffer }[]): Promise<void>;
}

/** `switchboard prepare` against the test's services: topics, schemas, migrations, default models, knowledge base. */
export async function preparePipeline(endpoints: Endpoints): Promise<void> {
  await run(process.execPath, [path.join(REPO_ROOT, "bin", "switchboard.js"), "prepare"], {
    env: { ...serviceEnv(endpoints), LOG_LEVEL: "warn" },
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** The triage pipeline's processes, deployed as `deployment` says, with test settings. */
export async function startPipeline(
  endpoints: Endpoints,
  extraEnv: NodeJS.ProcessEnv = {},
  deployment: Deployment = "unchained",
  nodeArgs: readonly string[] = [],
  /** The /healthz and /metrics port of each process, where the default (declared + 10,000) would clash (a private stack's run). */
  ports?: ReadonlyMap<string, number>,
): Promise<Pipeline> {
  const tasks = runnablesOf(deployment);
  const portOf = (task: Runnable) => ports?.get(task.name) ?? defaultPortOf(task);
  const taskNamed = (name: string) => {
    const task = tasks.find((t) => t.name === name);
    if (!task) throw new Error(`${name} is not a process of the ${deployment} pipeline (${tasks.map((t) => t.name).join(", ")})`);
    return task;
  };
  const logDir = mkdtempSync(path.join(os.tmpdir(), "switchboard-e2e-"));
  const env = {
    ...serviceEnv(endpoints),
    LOG_LEVEL: "info",
    SWITCHBOARD_SESSION_TIMEOUT_MS: "6000",
    SWITCHBOARD_MODEL_POLL_MS: "2000",
    // The learning loop stays out of the triage tests (its own test turns it on): drift keeps
    // its windows but never raises, labels never ask for a retraining, no hourly text test.
    SWITCHBOARD_DRIFT_RAISE_AFTER: "1000000",
    SWITCHBOARD_DRIFT_TEXT_INTERVAL_MS: "0",
    SWITCHBOARD_RETRAIN_NEW_LABELS: "0",
    ...extraEnv,
  };
  const kafka = createKafka(endpoints, `e2e-${randomUUID().slice(0, 8)}`, quietLog);
  const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const running = new Map<string, ProcessorProcess>();

  const start = async (name: string) => {
    const task = taskNamed(name);
    const proc = spawnProcessor(task, logDir, {
      ...env,
      SWITCHBOARD_INSTANCE_ID: `e2e-${name}`,
      SWITCHBOARD_METRICS_PORT: String(portOf(task)),
    }, nodeArgs);
    running.set(name, proc);
    await waitHealthy(proc, portOf(task), 120_000);
  };
  await Promise.all(tasks.map((t) => start(t.name)));

  return {
    kafka,
    codec,
    logDir,
    env,
    deployment,
    start,
    kill: (name) => running.get(name)?.child.kill("SIGKILL"),
    terminate: async (name) => {
      const proc = running.get(name);
      if (proc) await stopProcessor(proc);
    },
    pids: () => new Map([...running].map(([name, proc]) => [name, proc.child.pid!])),
    metrics: async (name) => {
      const response = await fetch(`http://127.0.0.1:${portOf(taskNamed(name))}/metrics`);
      if (!response.ok) throw new Error(`${name} /metrics answered ${response.status}`);
      return response.text();
    },
    stop: async () => {
      await Promise.all([...running.values()].map(stopProcessor));
      await producer.disconnect();
    },
    send: async (inquiries) => {
      const messages = inquiries.map((inquiry) => ({ key: inquiry.inquiry_id, value: codec.encode("inquiries.received", inquiry) }));
      for (let i = 0; i < messages.length; i += 200) await producer.send({ topic: "inquiries.received", messages: messages.slice(i, i + 200) });
    },
    sendRaw: async (messages) => {
      await producer.send({ topic: "inquiries.received", messages });
    },
  };
}

export interface Observed {
  readonly key: string;
  readonly value: unknown;
  readonly headers: Record<string, string>;
  /** When the watcher received it (ms since epoch). */
  readonly at: number;
}

/**
 * Records of the pipeline's topics (and DLQs) about a set of inquiry ids, read committed, as they
 * arrive after `watch` starts. `until` resolves when a condition on what was seen holds.
 */
export async function watch(kafka: Kafka, codec: TopicCodec, isOurs: (key: string) => boolean) {
  const topics = [
    "inquiries.cleaned",
    "inquiries.classified",
    "inquiries.sentiment",
    "inquiries.urgency",
    "inquiries.routed",
    "inquiries.responses",
    "predictions.feedback",
    ...TRIAGE.processors.flatMap((p) => p.inputs).map(dlqTopicName),
  ];
  const seen = new Map<string, Observed[]>(topics.map((t) => [t, []]));
  const consumer = kafka.consumer({ groupId: `e2e-watch-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 100 });
  await consumer.connect();
  for (const topic of new Set(topics)) await consumer.subscribe({ topic, fromBeginning: false });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const key = message.key?.toString() ?? "";
      if (!isOurs(key)) return;
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
      const value = topic.endsWith(".dlq") ? message.value : await codec.decode(topic, message.value);
      seen.get(topic)!.push({ key, value, headers, at: Date.now() });
    },
  });
  await joined;
  return {
    of: (topic: string) => seen.get(topic)!,
    async until(condition: () => boolean, timeoutMs = 180_000, settleMs = 2_000): Promise<boolean> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (condition()) {
          await new Promise((resolve) => setTimeout(resolve, settleMs)); // late duplicates would show up now
          return true;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      return false;
    },
    close: () => consumer.disconnect(),
  };
}

/** Counts per key, to find missing and duplicated outputs. */
export function countByKey(records: readonly Observed[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { key } of records) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}
