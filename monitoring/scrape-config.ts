import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { TOPOLOGIES, deployedTasks } from "../streams/topology.js";

/** The docker-compose copy, where each processor is a service named after it. */
export const COMPOSE_PROMETHEUS_CONFIG = new URL("./prometheus.compose.yml", import.meta.url);

/**
 * Prometheus scrape configuration derived from the topology: one job per chain, processor in no
 * chain and connector (what a deployment runs), at its metrics port on its host (the same host for the local stack, its own container in
 * docker-compose).
 */
export function prometheusConfig(hostOf: (processor: string) => string, scrapeIntervalSeconds = 5): string {
  const job = (topology: string, name: string, port: number) =>
    [
      `  - job_name: ${JSON.stringify(name)}`,
      `    static_configs:`,
      `      - targets: [${JSON.stringify(`${hostOf(name)}:${port}`)}]`,
      `        labels: { topology: ${JSON.stringify(topology)} }`,
    ].join("\n");
  const jobs = TOPOLOGIES.flatMap((topology) => [
    ...deployedTasks(topology).chains.map((chain) => job(topology.name, chain.name, chain.metricsPort)),
    ...deployedTasks(topology).processors.map((processor) => job(topology.name, processor.name, processor.metricsPort)),
    ...topology.connectors.map((connector) => job(topology.name, connector.name, connector.port)),
  ]);
  return [
    "# Generated from streams/topology.ts by the stack; do not edit.",
    "global:",
    `  scrape_interval: ${scrapeIntervalSeconds}s`,
    `  evaluation_interval: ${scrapeIntervalSeconds}s`,
    "scrape_configs:",
    ...jobs,
    "",
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  writeFileSync(COMPOSE_PROMETHEUS_CONFIG, prometheusConfig((processor) => processor));
}
