import { randomUUID } from "node:crypto";
import Fastify, { LogController, type FastifyBaseLogger } from "fastify";
import type { Logger } from "pino";
import { Registry } from "prom-client";
import type { Config } from "../config/settings.js";
import type { Endpoints } from "../stack/index.js";
import { createDependencyMetrics } from "../streams/dependencies.js";
import { watchProcessDependencies } from "../streams/dependency-probes.js";
import { errorMessage } from "../streams/errors.js";
import type { ConnectorDeclaration, Topology } from "../streams/topology.js";
import type { ConnectorFactory } from "./connector.js";
import { createIntake } from "./intake.js";
import { createConnectorMetrics } from "./metrics.js";
import { collectProcessMetrics } from "../streams/process-metrics.js";

/**
 * One connector as its own process: its Kafka intake, an HTTP server on the declared port with
 * the connector's routes beside /healthz and /metrics, request metrics for every route, and a
 * graceful shutdown on SIGTERM/SIGINT (stop listening, finish the requests in flight, close).
 */
export async function hostConnector(
  topology: Topology,
  declaration: ConnectorDeclaration,
  factory: ConnectorFactory,
  config: Config,
  endpoints: Endpoints,
  log: Logger,
): Promise<void> {
  const connector = declaration.name;
  const connectorLog = log.child({ connector });
  const registry = new Registry();
  registry.setDefaultLabels({ connector });
  const stopProcessMetrics = collectProcessMetrics(registry);
  const metrics = createConnectorMetrics(registry);
  const dependencyMetrics = createDependencyMetrics(registry);
  const intake = await createIntake(topology, declaration, endpoints, connectorLog);
  const implementation = await factory({
    topology,
    declaration,
    config,
    endpoints,
    log: connectorLog,
    intake,
    metrics,
    registry,
  });

  // pino's Logger is Fastify's base logger; typed as the latter so routes see one instance type.
  const app = Fastify({
    loggerInstance: connectorLog as FastifyBaseLogger,
    // Metrics count every request; a log line each would be thousands a second under load.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: "idle",
    // Unique across restarts and instances: a connector may record the request id as the inquiry's source id.
    genReqId: () => randomUUID(),
    // Ids from other systems (Message-IDs, ticket ids) run longer than Fastify's default 100; routes bound theirs by schema.
    routerOptions: { maxParamLength: 1_000 },
    // request.ip is the client's only behind a proxy that is trusted to say it.
    trustProxy: config.trustedProxies ?? false,
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.requests.inc({ connector, route, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ connector, route }, reply.elapsedTime / 1000);
  });
  app.get("/healthz", async (_request, reply) => {
    const checks: Record<string, boolean> = { kafka: intake.healthy(), ...(await implementation.health?.()) };
    const ok = Object.values(checks).every(Boolean);
    return reply.code(ok ? 200 : 503).send({ status: ok ? "ok" : "unavailable", checks });
  });
  app.get("/metrics", async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  await implementation.routes?.(app);
  const port = config.metricsPort ?? declaration.port;
  try {
    await app.listen({ port, host: "0.0.0.0" });
  } catch (error) {
    throw new Error(`connector ${connector} cannot listen on port ${port}: ${errorMessage(error)}`, { cause: error });
  }
  connectorLog.info({ port: (app.server.address() as { port: number }).port }, "connector listening");
  // What KafkaDown, RedisDown & co. read, from where the connector's users are: beside the stream tasks' view.
  const dependencies = watchProcessDependencies(endpoints, connector, dependencyMetrics, connectorLog, () => implementation.probes?.() ?? []);
  await implementation.start?.();

  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  connectorLog.info("shutting down");
  const timer = setTimeout(() => {
    connectorLog.error({ timeoutMs: config.shutdownTimeoutMs }, "shutdown timed out; exiting");
    process.exit(1);
  }, config.shutdownTimeoutMs);
  timer.unref();
  await app.close();
  await dependencies.stop();
  stopProcessMetrics();
  await implementation.close?.();
  await intake.close();
  connectorLog.info("stopped");
  // Everything the connector owns is closed; a client it gave up on (a producer still retrying a
  // broker that is down) must not keep the process alive until the shutdown timeout.
  process.exit(0);
}
