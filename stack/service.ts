import type { Logger } from "pino";

/** Where a service keeps its files; everything lives under the git-ignored stack home. */
export interface ServicePaths {
  /** Root of all stack state, e.g. `<repo>/.stack`. */
  readonly home: string;
  /** Cache of downloaded artifacts shared by every service (Maven jars, archives). */
  readonly cache: string;
  /** This service's data directory (created before `prepare`). */
  readonly data: string;
  /** This service's log file: stdout and stderr of the process go here. */
  readonly log: string;
}

export interface ServiceContext {
  readonly paths: ServicePaths;
  /** Ports of every service, so one service can reach another (e.g. the registry reaches Kafka). */
  readonly ports: StackPorts;
  readonly log: Logger;
}

export interface StackPorts {
  readonly kafka: number;
  readonly kafkaController: number;
  /** The local broker's SASL_PLAINTEXT (SCRAM-SHA-512) listener. */
  readonly kafkaSasl: number;
  readonly schemaRegistry: number;
  readonly postgres: number;
  readonly redis: number;
  readonly elasticsearch: number;
  readonly prometheus: number;
  readonly alertmanager: number;
  readonly postgresExporter: number;
  readonly redisExporter: number;
  readonly elasticsearchExporter: number;
  readonly imap: number;
}

/** How to launch a long-running service process. The supervisor runs it detached. */
export interface LaunchSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/**
 * One real service of the local stack. The supervisor (stack/supervisor.ts) owns pid files,
 * logs, health waiting and shutdown; a service only says how to install, prepare and launch
 * itself and how to tell that it is healthy.
 */
export interface ServiceDefinition {
  readonly name: string;
  /** Services that must be healthy before this one starts. */
  readonly dependsOn: readonly string[];
  /** Port the service listens on (for status output and clear errors). */
  port(ports: StackPorts): number;
  /** Make binaries available; idempotent and cached (does nothing when already installed). */
  install(ctx: ServiceContext): Promise<void>;
  /** One-time initialisation of the data directory (idempotent). */
  prepare(ctx: ServiceContext): Promise<void>;
  launch(ctx: ServiceContext): Promise<LaunchSpec>;
  /** Resolves true once the service answers its real protocol. Must not throw. */
  healthy(ctx: ServiceContext): Promise<boolean>;
  /** Runs once the service is healthy, e.g. to create a database (idempotent). */
  afterStart?(ctx: ServiceContext): Promise<void>;
  /** The signal that stops it promptly (default SIGTERM); the supervisor sends SIGKILL after 60 s. */
  readonly stopSignal?: NodeJS.Signals;
  /** Seconds to wait for health after launch before failing. */
  readonly startTimeoutSeconds: number;
}
