import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { TOPOLOGIES, deployedTasks } from "../streams/topology.js";
import { EXPORTERS } from "./exporters.js";

/** The docker-compose copy, where each processor is a service named after it. */
export const COMPOSE_PROMETHEUS_CONFIG = new URL("./prometheus.compose.yml", import.meta.url);

export interface PrometheusConfigOptions {
  readonly scrapeIntervalSeconds?: number;
  /** Rule files Prometheus loads (monitoring/alerts.yml, where the deployment has it). */
  readonly ruleFiles?: readonly string[];
  /** Alertmanagers (`host:port`) Prometheus sends the firing alerts to. */
  readonly alertmanagers?: readonly string[];
  /** The stack's exporters (monitoring/exporters.ts), each a job of its own at `host:port`. */
  readonly exporters?: readonly { readonly job: string; readonly target: string }[];
  /** The port a job is scraped at instead of its declared one; undefined leaves the job out (a test's own processes). */
  readonly port?: (job: string, declared: number) => number | undefined;
}

/**
 * Prometheus configuration derived from the topology: one scrape job per chain, processor in no
 * chain and connector (what a deployment runs), at its metrics port on its host (the same host for
 * the local stack, its own container in docker-compose); the alert rules and the Alertmanager.
 */
export function prometheusConfig(hostOf: (processor: string) => string, options: PrometheusConfigOptions = {}): string {
  const { scrapeIntervalSeconds = 5, ruleFiles = [], alertmanagers = [], port: portOf = (_job: string, declared: number) => declared } = options;
  const job = (topology: string, name: string, declared: number): string[] => {
    const port = portOf(name, declared);
    if (port === undefined) return [];
    return [
      `  - job_name: ${JSON.stringify(name)}`,
      `    static_configs:`,
      `      - targets: [${JSON.stringify(`${hostOf(name)}:${port}`)}]`,
      `        labels: { topology: ${JSON.stringify(topology)} }`,
    ];
  };
  const jobs = TOPOLOGIES.flatMap((topology) => [
    ...deployedTasks(topology).chains.flatMap((chain) => job(topology.name, chain.name, chain.metricsPort)),
    ...deployedTasks(topology).processors.flatMap((processor) => job(topology.name, processor.name, processor.metricsPort)),
    ...topology.connectors.flatMap((connector) => job(topology.name, connector.name, connector.port)),
  ]);
  const exporterJobs = (options.exporters ?? []).map(({ job, target }) =>
    [`  - job_name: ${JSON.stringify(job)}`, `    static_configs:`, `      - targets: [${JSON.stringify(target)}]`, `        labels: { kind: "exporter" }`].join("\n"),
  );
  const rules = ruleFiles.length > 0 ? ["rule_files:", ...ruleFiles.map((file) => `  - ${JSON.stringify(file)}`)] : [];
  const alerting =
    alertmanagers.length > 0
      ? ["alerting:", "  alertmanagers:", "    - static_configs:", `        - targets: [${alertmanagers.map((a) => JSON.stringify(a)).join(", ")}]`]
      : [];
  return [
    "# Generated from streams/topology.ts by the stack; do not edit.",
    "global:",
    `  scrape_interval: ${scrapeIntervalSeconds}s`,
    `  evaluation_interval: ${scrapeIntervalSeconds}s`,
    ...rules,
    ...alerting,
    "scrape_configs:",
    ...jobs,
    ...exporterJobs,
    "",
  ].join("\n");
}

/** docker-compose's: monitoring/alerts.yml mounted beside it, the alertmanager service on 9093, the exporters' services. */
export function composePrometheusConfig(): string {
  return prometheusConfig((processor) => processor, {
    ruleFiles: ["/etc/prometheus/alerts.yml"],
    alertmanagers: ["alertmanager:9093"],
    exporters: Object.values(EXPORTERS).map(({ job, port }) => ({ job, target: `${job}:${port}` })),
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  writeFileSync(COMPOSE_PROMETHEUS_CONFIG, composePrometheusConfig());
}
