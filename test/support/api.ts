import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { Consumer, Kafka } from "kafkajs";
import { runnableConnector, spawnProcessor, stopProcessor, waitHealthy, type ProcessorProcess } from "../../cli/processes.js";
import { REPO_ROOT } from "../../config/settings.js";
import { SCOPES, createApiKey, type Scope } from "../../connectors/api/keys.js";
import type { Endpoints } from "../../stack/index.js";
import { createPool } from "../../storage/postgres.js";
import type { TopicCodec } from "../../streams/codec.js";
import { TRIAGE } from "../../streams/topology.js";
import { serviceEnv } from "./topics.js";

const run = promisify(execFile);
export const CLI = path.join(REPO_ROOT, "bin", "switchboard.js");
const API = TRIAGE.connectors.find((c) => c.name === "api")!;

/** `switchboard setup` against the test's services: topics, schemas, migrations (003_api_keys among them). */
export async function setupServices(endpoints: Endpoints): Promise<void> {
  await run(process.execPath, [CLI, "setup"], { env: { ...serviceEnv(endpoints), LOG_LEVEL: "warn" } });
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ApiProcess {
  readonly url: string;
  readonly port: number;
  readonly proc: ProcessorProcess;
  stop(): Promise<void>;
}

/** `switchboard run api` as its own process on a free port, healthy; `env` overrides the test services' settings. */
export async function startApi(endpoints: Endpoints, env: NodeJS.ProcessEnv = {}, { waitForHealth = true } = {}): Promise<ApiProcess> {
  const port = await freePort();
  const logDir = mkdtempSync(path.join(os.tmpdir(), "switchboard-api-"));
  const proc = spawnProcessor(runnableConnector(API), logDir, {
    ...serviceEnv(endpoints),
    LOG_LEVEL: "info",
    LOG_FORMAT: "json",
    SWITCHBOARD_METRICS_PORT: String(port),
    SWITCHBOARD_INSTANCE_ID: `test-api-${port}`,
    ...env,
  });
  if (waitForHealth) await waitHealthy(proc, port, 60_000);
  return { url: `http://127.0.0.1:${port}`, port, proc, stop: () => stopProcessor(proc) };
}

/** A fresh API key, straight from the key store. */
export async function testKey(endpoints: Endpoints, scopes: readonly Scope[] = SCOPES, name = "test"): Promise<{ id: string; token: string }> {
  const pool = createPool(endpoints, "test-api-keys");
  try {
    const { key, token } = await createApiKey(pool, name, scopes);
    return { id: key.id, token };
  } finally {
    await pool.end();
  }
}

/** JSON POST with a bearer key. */
export function post(url: string, token: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
  });
}

export function get(url: string, token: string): Promise<Response> {
  return fetch(url, { headers: { authorization: `Bearer ${token}` } });
}

export async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(everyMs);
  }
  return undefined;
}

export interface Tail<T> {
  /** Every record written since the tail started that passed the filter, once each (a consumer restart may read one twice). */
  records(): readonly { key: string; value: T }[];
  close(): Promise<void>;
}

/**
 * The records of a topic written from now on (read committed), decoded, that pass `keep`. Starts
 * at the offsets the topic has when called, so nothing written after this returns is missed.
 */
export async function tailTopic<T>(kafka: Kafka, codec: TopicCodec, topic: string, keep: (value: T) => boolean): Promise<Tail<T>> {
  const admin = kafka.admin();
  await admin.connect();
  // A topic just created has no leaders for a moment.
  const start = await until(() => admin.fetchTopicOffsets(topic).catch(() => undefined), 30_000, 500);
  await admin.disconnect();
  if (!start) throw new Error(`no offsets for ${topic} within 30 s`);
  const seen = new Map<string, { key: string; value: T }>();
  let consumer: Consumer | undefined;
  let closed = false;
  // Every (re)start reads from the offsets at the tail's start; records are kept by offset, so a
  // re-read is harmless. A broker outage longer than kafkajs's retry budget crashes a consumer for
  // good ("Failed to find group coordinator"), and a tests' tail must outlive that.
  const follow = async (): Promise<void> => {
    const current = kafka.consumer({ groupId: `test-tail-${randomUUID()}`, maxWaitTimeInMs: 100 });
    consumer = current;
    current.on(current.events.CRASH, ({ payload }) => {
      if (payload.restart || closed) return;
      void current.disconnect().catch(() => undefined).then(async () => {
        while (!closed) {
          await sleep(1_000);
          if (await follow().then(() => true, () => false)) return;
        }
      });
    });
    await current.connect();
    await current.subscribe({ topic, fromBeginning: false });
    const joined = new Promise<void>((resolve) => current.on(current.events.GROUP_JOIN, () => resolve()));
    await current.run({
      eachMessage: async ({ partition, message }) => {
        const value = (await codec.decode(topic, message.value)) as T;
        if (keep(value)) seen.set(`${partition}:${message.offset}`, { key: message.key?.toString() ?? "", value });
      },
    });
    for (const { partition, offset } of start) current.seek({ topic, partition, offset });
    await joined;
  };
  await follow();
  return {
    records: () => [...seen.values()],
    close: async () => {
      closed = true;
      await consumer?.disconnect();
    },
  };
}
