import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { Registry, collectDefaultMetrics } from "prom-client";
import type { Logger } from "pino";
import type { Config } from "../config/settings.js";
import type { Endpoints } from "../stack/index.js";
import http from "node:http";
import https from "node:https";
import { createDependencyMetrics, watchDependencies, type Dependency, type Probe } from "./dependencies.js";
import { startOpsServer } from "./http.js";
import { createKafka } from "./kafka.js";
import { createRuntimeMetrics } from "./metrics.js";
import type { Resources } from "./resources.js";
import { startTask } from "./runtime.js";
import type { ProcessorImplementation } from "./processor.js";
import { processorTask, type StreamTask } from "./task.js";
import { withPartitions, type ProcessorDeclaration, type Topology } from "./topology.js";
import { schemaRegistryOptions } from "../config/security.js";

/** One processor as its own process. */
export function hostProcessor(
  topology: Topology,
  processor: ProcessorDeclaration,
  implementation: ProcessorImplementation,
  config: Config,
  endpoints: Endpoints,
  log: Logger,
  resources?: Resources,
): Promise<void> {
  return hostTask(topology, processorTask(processor, implementation, topology), processor.metricsPort, config, endpoints, log, resources);
}

/**
 * A task (a processor or a chain) as its own process: metrics and health server, the runtime,
 * and a graceful shutdown on SIGTERM/SIGINT (finish the batch, commit, leave the group) bounded
 * by a timeout.
 */
export async function hostTask(
  topology: Topology,
  task: StreamTask,
  metricsPort: number,
  config: Config,
  endpoints: Endpoints,
  log: Logger,
  /** What the processors were built with: closed once they stopped. */
  resources?: Resources,
): Promise<void> {
  const name = task.name;
  const kafkaCheck = kafkaProbe(endpoints, name, log);
  const baseProbes = new Map<Dependency, Probe>([
    ["kafka", kafkaCheck.probe],
    ["schema_registry", schemaRegistryProbe(endpoints)],
  ]);
  const metricsRegistry = new Registry();
  metricsRegistry.setDefaultLabels({ processor: name });
  collectDefaultMetrics({ register: metricsRegistry });
  // Made before the registries are merged for /metrics below: a merge copies what is registered then.
  const dependencyMetrics = createDependencyMetrics(metricsRegistry);

  const running = await startTask(
    // The inquiry topics' partition count is configured: the runtime sizes its concurrency by it.
    withPartitions(topology, config.inquiryPartitions),
    task,
    {
      kafka: createKafka(endpoints, name, log),
      registry: new SchemaRegistry(schemaRegistryOptions(endpoints, name)),
      metrics: createRuntimeMetrics(metricsRegistry),
      log,
    },
    {
      maxAttempts: config.maxAttempts,
      retryBackoffMs: config.retryBackoffMs,
      maxRecordBytes: config.maxRecordBytes,
      instanceId: config.instanceId,
      sessionTimeoutMs: config.sessionTimeoutMs,
      commitIntervalMs: config.commitIntervalMs,
    },
  );
  const own = task.members.flatMap((m) => (m.implementation.metrics ? [m.implementation.metrics] : []));
  // The served models' metrics are the process's (a chain's members share its models).
  if (resources) own.push(resources.metrics);
  const served = own.length > 0 ? Registry.merge([metricsRegistry, ...own]) : metricsRegistry;
  // A series that names its processor (a chain member's) keeps it; the rest are the task's.
  served.setDefaultLabels({ processor: name });
  const ops = await startOpsServer(config.metricsPort ?? metricsPort, served, running.healthy);
  log.info({ processor: name, port: ops.port }, "serving /healthz and /metrics");
  const dependencies = watchDependencies(
    () => new Map<Dependency, Probe>([...baseProbes, ...(resources?.probes() ?? [])]),
    dependencyMetrics,
    { intervalMs: DEPENDENCY_CHECK_MS, timeoutMs: DEPENDENCY_CHECK_TIMEOUT_MS, log },
  );

  const shutdown = (signal: string) => {
    log.info({ processor: name, signal }, "shutting down");
    const timer = setTimeout(() => {
      log.error({ processor: name, timeoutMs: config.shutdownTimeoutMs }, "shutdown timed out; exiting");
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    void running.stop();
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
  try {
    await running.done;
  } finally {
    dependencies.stop();
    // Its connection would keep the process from exiting once the task stopped.
    await kafkaCheck.close();
    await resources?.close();
    await ops.close();
  }
}

/**
 * How often a process checks the services it uses, and how long a check may take: a few checks
 * fall inside the DependencyDown alerts' 30 s, and a check costs one small request.
 */
const DEPENDENCY_CHECK_MS = 5_000;
const DEPENDENCY_CHECK_TIMEOUT_MS = 3_000;

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
