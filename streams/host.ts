import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { Registry } from "prom-client";
import type { Logger } from "pino";
import type { Config } from "../config/settings.js";
import type { Endpoints } from "../stack/index.js";
import { createDependencyMetrics } from "./dependencies.js";
import { watchProcessDependencies } from "./dependency-probes.js";
import { startOpsServer } from "./http.js";
import { createKafka } from "./kafka.js";
import { createRuntimeMetrics } from "./metrics.js";
import type { Resources } from "./resources.js";
import { startTask } from "./runtime.js";
import type { ProcessorImplementation } from "./processor.js";
import { processorTask, type StreamTask } from "./task.js";
import { withPartitions, type ProcessorDeclaration, type Topology } from "./topology.js";
import { schemaRegistryOptions } from "../config/security.js";
import { collectProcessMetrics } from "./process-metrics.js";

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
  const metricsRegistry = new Registry();
  metricsRegistry.setDefaultLabels({ processor: name });
  const stopProcessMetrics = collectProcessMetrics(metricsRegistry);
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
  const dependencies = watchProcessDependencies(endpoints, name, dependencyMetrics, log, () => resources?.probes() ?? []);

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
    await dependencies.stop();
    await resources?.close();
    await ops.close();
    stopProcessMetrics();
  }
}
