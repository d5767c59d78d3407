import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Config } from "../config/settings.js";
import type { Endpoints } from "../stack/index.js";
import type { Dependency, Probe } from "../streams/dependencies.js";
import type { ConnectorDeclaration, Topology } from "../streams/topology.js";
import type { Intake } from "./intake.js";
import type { ConnectorMetrics } from "./metrics.js";

/** What the host hands a connector: settings, where the services are, its Kafka intake and metrics. */
export interface ConnectorDependencies {
  readonly topology: Topology;
  readonly declaration: ConnectorDeclaration;
  readonly config: Config;
  readonly endpoints: Endpoints;
  readonly log: Logger;
  readonly intake: Intake;
  readonly metrics: ConnectorMetrics;
  /** The connector's registry, for metrics of its own beside the shared ones. */
  readonly registry: Registry;
}

/**
 * A running connector. The host owns the HTTP server (the declared port, with /healthz and
 * /metrics), the Kafka intake and shutdown; the connector adds its routes and its own work
 * (an IMAP session, say) and says whether it is healthy.
 */
export interface ConnectorImplementation {
  /** Registers the connector's HTTP routes, if it serves any. */
  readonly routes?: (app: FastifyInstance) => Promise<void> | void;
  /** Starts background work once the server listens (e.g. the IMAP session). */
  readonly start?: () => Promise<void>;
  /** Named checks for /healthz, beside the intake's; each true when healthy. */
  readonly health?: () => Promise<Readonly<Record<string, boolean>>>;
  /**
   * A check of each service the connector opened a client of, beyond the Kafka and schema
   * registry of its intake (which the host checks): its `switchboard_dependency_up` gauges.
   */
  readonly probes?: () => Iterable<readonly [Dependency, Probe]>;
  /** Stops taking input and releases what the connector holds. */
  readonly close?: () => Promise<void>;
}

export type ConnectorFactory = (
  deps: ConnectorDependencies,
) => ConnectorImplementation | Promise<ConnectorImplementation>;
