import type { Client as Elasticsearch } from "@elastic/elasticsearch";
import type { Redis } from "ioredis";
import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import type pg from "pg";
import type { Logger } from "pino";
import { schemaRegistryOptions } from "../config/security.js";
import type { Endpoints } from "../stack/index.js";
import { watchDependencies, type Dependency, type DependencyMetrics, type Probe } from "./dependencies.js";
import { createKafka } from "./kafka.js";

/**
 * How often a process checks the services it uses, and how long a check may take: a few checks
 * fall inside the DependencyDown alerts' 30 s, and a check costs one small request.
 */
const DEPENDENCY_CHECK_MS = 5_000;
const DEPENDENCY_CHECK_TIMEOUT_MS = 3_000;
/** A client's own bound on a check (the watcher's timeout is the outer one). */
const PROBE_REQUEST_TIMEOUT_MS = 2_000;

/**
 * The dependency gauges of a Switchboard process, stream task or connector: Kafka and the schema
 * registry, which every one of them uses, and `own()`, the clients the process opened beyond
 * them (PostgreSQL, Redis, Elasticsearch). `stop` also closes the Kafka check's client.
 */
export function watchProcessDependencies(
  endpoints: Endpoints,
  name: string,
  metrics: DependencyMetrics,
  log: Logger,
  own: () => Iterable<readonly [Dependency, Probe]> = () => [],
): { stop(): Promise<void> } {
  const kafka = kafkaProbe(endpoints, name, log);
  const base: [Dependency, Probe][] = [
    ["kafka", kafka.probe],
    ["schema_registry", schemaRegistryProbe(endpoints)],
  ];
  const watcher = watchDependencies(() => new Map<Dependency, Probe>([...base, ...own()]), metrics, {
    intervalMs: DEPENDENCY_CHECK_MS,
    timeoutMs: DEPENDENCY_CHECK_TIMEOUT_MS,
    log,
  });
  return {
    async stop() {
      watcher.stop();
      // Its connection would keep the process from exiting once the rest stopped.
      await kafka.close();
    },
  };
}

/** The cluster's metadata through an admin client of its own, which does not retry (the next check is the retry). */
function kafkaProbe(endpoints: Endpoints, name: string, log: Logger): { readonly probe: Probe; close(): Promise<void> } {
  const admin = createKafka(endpoints, `${name}-dependency-check`, log.child({ check: "kafka" }), { retry: { retries: 0 } }).admin();
  let connected: Promise<void> | undefined;
  return {
    async probe() {
      connected ??= admin.connect().catch((error: unknown) => {
        connected = undefined;
        throw error;
      });
      await connected;
      await admin.describeCluster();
    },
    close: () => admin.disconnect().catch(() => undefined),
  };
}

/** GET /subjects, with the client's credentials and CA. */
function schemaRegistryProbe(endpoints: Endpoints): Probe {
  const options = schemaRegistryOptions(endpoints);
  const url = new URL(`${options.host}/subjects`);
  const headers = options.auth ? { authorization: `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString("base64")}` } : {};
  const get = url.protocol === "https:" ? https.get : http.get;
  return () =>
    new Promise<void>((resolve, reject) => {
      const request = get(url, { headers, ...(options.agent ? { agent: options.agent as http.Agent } : {}) }, (response) => {
        response.resume();
        if ((response.statusCode ?? 500) < 500) resolve();
        else reject(new Error(`GET /subjects answered ${response.statusCode}`));
      });
      request.on("error", reject);
      request.setTimeout(DEPENDENCY_CHECK_TIMEOUT_MS, () => request.destroy(new Error("GET /subjects timed out")));
    });
}

export const postgresProbe =
  (pool: pg.Pool | Promise<pg.Pool>): Probe =>
  async () =>
    void (await (await pool).query("SELECT 1"));

/**
 * PING; a client without an offline queue fails at once while it is disconnected. One still
 * making its first connection (a process just started) is waited for instead of reported away.
 */
export const redisProbe =
  (redis: Redis | Promise<Redis>): Probe =>
  async () => {
    const client = await redis;
    if (FIRST_CONNECTION.has(client.status)) await once(client, "ready");
    await client.ping();
  };
const FIRST_CONNECTION = new Set(["wait", "connecting", "connect"]);

export const elasticsearchProbe =
  (client: Elasticsearch): Probe =>
  async () => {
    if (!(await client.ping(undefined, { requestTimeout: PROBE_REQUEST_TIMEOUT_MS, maxRetries: 0 }))) throw new Error("ping answered false");
  };
