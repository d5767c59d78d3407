import { Registry } from "prom-client";
import { createChatMetrics } from "../connectors/chat/metrics.js";
import { createConnectorMetrics } from "../connectors/metrics.js";
import { createEmailMetrics } from "../connectors/email/metrics.js";
import { createTicketMetrics } from "../connectors/tickets/metrics.js";
import { createServingMetrics } from "../models/served.js";
import { createRespondMetrics } from "../processors/respond/metrics.js";
import { driftMetrics } from "../processors/drift.js";
import { createRouteMetrics } from "../processors/route/metrics.js";
import { createQualityMetrics } from "../quality/metrics.js";
import { createQueueMetrics } from "./queues.js";
import { createRetrainMetrics } from "../retrain/metrics.js";
import { createRuntimeMetrics } from "../streams/metrics.js";
import { createDependencyMetrics } from "../streams/dependencies.js";
import { createProcessMetrics } from "../streams/process-metrics.js";

/**
 * The names of the metrics the alert rules and `switchboard status` query, read from the
 * modules that declare them: each factory is run once on a registry of its own and every metric
 * it returns gives its name. No metric name is typed here (or in the rules) a second time, and a
 * renamed metric renames its alerts' queries.
 */

/** prom-client's metrics carry their configured name; its type declarations do not say so. */
type Named = { readonly name: string };

type NamesOf<M> = { readonly [K in keyof M as M[K] extends object ? (M[K] extends Registry ? never : K) : never]: string };

function namesOf<M extends object>(metrics: M): NamesOf<M> {
  const names: Record<string, string> = {};
  for (const [key, metric] of Object.entries(metrics)) {
    if (metric instanceof Registry || typeof metric !== "object" || metric === null) continue;
    const { name } = metric as Named;
    if (typeof name !== "string") throw new Error(`metric ${key} has no name`);
    names[key] = name;
  }
  return names as NamesOf<M>;
}

export const METRICS = {
  runtime: namesOf(createRuntimeMetrics(new Registry())),
  process: namesOf(createProcessMetrics(new Registry())),
  dependency: namesOf(createDependencyMetrics(new Registry())),
  connector: namesOf(createConnectorMetrics(new Registry())),
  chat: namesOf(createChatMetrics(new Registry())),
  route: namesOf(createRouteMetrics(new Registry())),
  drift: namesOf(driftMetrics(new Registry())),
  quality: namesOf(createQualityMetrics(new Registry())),
  queues: namesOf(createQueueMetrics(new Registry())),
  retrain: namesOf(createRetrainMetrics()),
  serving: namesOf(createServingMetrics(new Registry())),
  respond: namesOf(createRespondMetrics(new Registry())),
  email: namesOf(createEmailMetrics(new Registry())),
  tickets: namesOf(createTicketMetrics(new Registry())),
} as const;

/** prom-client's default metrics, which every process's registry collects (collectDefaultMetrics). */
export const PROCESS_METRICS = {
  cpuSeconds: "process_cpu_seconds_total",
  residentBytes: "process_resident_memory_bytes",
  eventLoopLagP99: "nodejs_eventloop_lag_p99_seconds",
  heapUsedBytes: "nodejs_heap_size_used_bytes",
} as const;

/** A histogram's series of buckets, as Prometheus exposes them. */
export const bucket = (histogram: string) => `${histogram}_bucket`;
