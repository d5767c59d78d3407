import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Logger } from "pino";
import { loadConfig } from "../../config/settings.js";
import { ALERT_RULES_FILE } from "../../monitoring/alerts.js";
import { prometheusConfig } from "../../monitoring/scrape-config.js";
import { clientSecurity } from "../../config/security.js";
import type { Endpoints } from "../../stack/index.js";
import type { ServiceDefinition, StackPorts } from "../../stack/service.js";
import { elasticsearch, elasticsearchUrl } from "../../stack/services/elasticsearch.js";
import { kafka, kafkaBrokers } from "../../stack/services/kafka.js";
import { postgres, postgresUrl } from "../../stack/services/postgres.js";
import { prometheus } from "../../stack/services/prometheus.js";
import { redis, redisUrl } from "../../stack/services/redis.js";
import { schemaRegistry, schemaRegistryUrl } from "../../stack/services/schema-registry.js";
import { createSupervisor, type Supervisor } from "../../stack/supervisor.js";
import { freePort } from "./api.js";

const exec = promisify(execFile);

/**
 * A stack of its own for tests that stop services (chaos) or run for long (soak): a supervisor
 * home in a temporary folder, free ports for every service, the shared stack's cache of jars
 * (so no Maven run), and a Prometheus of its own that loads the committed monitoring/alerts.yml
 * and scrapes the test's processes at their ports. The shared stack on the standard ports is
 * never touched: other work uses it.
 */
export interface PrivateStack {
  readonly home: string;
  readonly ports: StackPorts;
  readonly endpoints: Endpoints;
  readonly supervisor: Supervisor;
  readonly prometheusUrl: string;
  /** The services that processes depend on, by name (`postgres`, `kafka`, …), to stop and start. */
  readonly services: ReadonlyMap<string, ServiceDefinition>;
  /** The PIDs of the running services, by name (for CPU and memory sampling). */
  pids(): Promise<Map<string, number>>;
  /** (Re)writes Prometheus's scrape targets: each job at its port on 127.0.0.1; reloads it. */
  scrape(ports: ReadonlyMap<string, number>): Promise<void>;
  down(): Promise<void>;
}

export interface PrivateStackOptions {
  /** Prometheus's scrape and rule evaluation interval (the rules' own `for:` stay as committed). */
  readonly scrapeIntervalSeconds?: number;
  readonly log: Logger;
}

export async function startPrivateStack(options: PrivateStackOptions): Promise<PrivateStack> {
  const shared = loadConfig();
  const home = mkdtempSync(path.join(os.tmpdir(), "switchboard-private-"));
  // PostgreSQL and Elasticsearch run as unprivileged users, who must reach their data folders.
  chmodSync(home, 0o755);
  symlinkSync(path.join(shared.stackHome, "cache"), path.join(home, "cache"));
  const esPort = await freePort();
  const ports: StackPorts = {
    kafka: await freePort(),
    kafkaController: await freePort(),
    kafkaSasl: await freePort(),
    schemaRegistry: await freePort(),
    postgres: await freePort(),
    redis: await freePort(),
    elasticsearch: esPort,
    prometheus: await freePort(),
    alertmanager: await freePort(),
    // The exporters' ports: no exporter runs here (the processes' own dependency gauges are what the alerts read).
    postgresExporter: await freePort(),
    redisExporter: await freePort(),
    elasticsearchExporter: await freePort(),
    imap: await freePort(),
  };
  const interval = options.scrapeIntervalSeconds ?? 5;
  let targets: ReadonlyMap<string, number> = new Map();
  const configFile = path.join(home, "data", "prometheus", "prometheus.yml");
  const writeConfig = () =>
    writeFile(
      configFile,
      prometheusConfig(() => "127.0.0.1", {
        scrapeIntervalSeconds: interval,
        ruleFiles: [fileURLToPath(ALERT_RULES_FILE)],
        // Jobs the test does not run are left out rather than scraped as down.
        port: (job) => targets.get(job),
      }),
    );
  // The stack's own Prometheus service, with this configuration instead of the standard ports' and no Alertmanager.
  const ownPrometheus: ServiceDefinition = { ...prometheus, prepare: writeConfig };
  // Three times the stack's health timeouts: a shared machine under load starts a JVM slowly.
  const patient = (service: ServiceDefinition): [string, ServiceDefinition] => [service.name, { ...service, startTimeoutSeconds: service.startTimeoutSeconds * 3 }];
  const services = new Map<string, ServiceDefinition>([kafka, schemaRegistry, postgres, redis, elasticsearch, ownPrometheus].map(patient));
  const supervisor = createSupervisor(home, ports, options.log);
  const all = [...services.values()];
  try {
    await supervisor.up(all);
  } catch (error) {
    await supervisor.down(all).catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  const prometheusUrl = `http://127.0.0.1:${ports.prometheus}`;
  const endpoints: Endpoints = {
    kafkaBrokers: kafkaBrokers(ports),
    schemaRegistryUrl: schemaRegistryUrl(ports),
    databaseUrl: postgresUrl(ports),
    redisUrl: redisUrl(ports),
    elasticsearchUrl: elasticsearchUrl(ports),
    imapUrl: `imap://unused:unused@127.0.0.1:${ports.imap}`,
    // Plaintext, whatever the shell's configuration says about the shared services.
    security: clientSecurity(loadConfig({})),
  };
  return {
    home,
    ports,
    endpoints,
    supervisor,
    prometheusUrl,
    services,
    async pids() {
      const status = await supervisor.status(all);
      return new Map(status.flatMap((s) => (s.pid === undefined ? [] : [[s.name, s.pid] as const])));
    },
    async scrape(next) {
      targets = next;
      await writeConfig();
      const response = await fetch(`${prometheusUrl}/-/reload`, { method: "POST" });
      if (!response.ok) throw new Error(`Prometheus reload answered ${response.status}: ${await response.text()}`);
    },
    async down() {
      await supervisor.down(all);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `cleanup` (the pipeline stopped, then the stack down) when the run is interrupted (Ctrl-C,
 * SIGTERM), then exits: the stack's services and the pipeline's processes are daemons of their
 * own, which would outlive an interrupted benchmark and hold its ports and CPU. Returns the
 * function that unregisters it, for the run's own `finally`.
 */
export function cleanUpOnInterrupt(cleanup: () => Promise<void>, log: Logger): () => void {
  const handler = (signal: NodeJS.Signals) => {
    log.warn({ signal }, "interrupted: stopping the pipeline and the private stack");
    void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

/**
 * Copies the shared stack's model registry (its PostgreSQL schema: every version and which is in
 * production) into the private PostgreSQL, so that `switchboard prepare` finds production models
 * and trains none (minutes); the artifacts are files the registry names, shared read-only.
 */
export async function copyModelRegistry(from: string, to: string, schema = loadConfig().registrySchema): Promise<void> {
  const { stdout } = await exec("pg_dump", ["--no-owner", "--no-privileges", `--schema=${schema}`, from], { maxBuffer: 256 * 1024 * 1024 });
  await new Promise<void>((resolve, reject) => {
    const child = execFile("psql", ["--quiet", "--set", "ON_ERROR_STOP=1", to], { maxBuffer: 64 * 1024 * 1024 }, (error) => (error ? reject(error) : resolve()));
    child.stdin?.end(stdout);
  });
}

/** An instant query's vector from Prometheus. */
export async function promQuery(prometheusUrl: string, query: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await response.json()) as { status: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] }; error?: string };
  if (body.status !== "success") throw new Error(`Prometheus query ${query} failed: ${body.error}`);
  return body.data!.result;
}

export interface ActiveAlert {
  readonly labels: Record<string, string>;
  readonly state: "pending" | "firing";
  readonly activeAt: string;
}

/** The alerts Prometheus holds now (pending or firing). */
export async function activeAlerts(prometheusUrl: string): Promise<ActiveAlert[]> {
  const response = await fetch(`${prometheusUrl}/api/v1/alerts`);
  const body = (await response.json()) as { data: { alerts: ActiveAlert[] } };
  return body.data.alerts;
}
