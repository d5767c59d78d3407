import { existsSync } from "node:fs";
import { EXPORTERS, type Exporter } from "../../monitoring/exporters.js";
import type { LaunchSpec, ServiceDefinition, StackPorts } from "../service.js";
import { elasticsearchUrl } from "./elasticsearch.js";
import { postgresUrl } from "./postgres.js";
import { redisUrl } from "./redis.js";

/**
 * The Prometheus exporters of the local stack's PostgreSQL, Redis and Elasticsearch (Debian's
 * packages), each on 127.0.0.1 beside the service it watches, scraped by the local Prometheus.
 * An exporter answers /metrics while its service is down (`pg_up 0` and the like), so it starts
 * at once and its health is its own.
 */
function exporterService(exporter: Exporter, port: (ports: StackPorts) => number, args: (ports: StackPorts) => LaunchSpec): ServiceDefinition {
  return {
    name: exporter.job,
    dependsOn: [exporter.watches],
    startTimeoutSeconds: 30,
    port,

    async install() {
      if (!existsSync(exporter.binary)) throw new Error(`${exporter.job} is not installed (${exporter.binary} missing): run \`apt-get install -y ${exporter.debianPackage}\``);
    },

    async prepare() {},

    async launch(ctx) {
      return args(ctx.ports);
    },

    async healthy(ctx) {
      try {
        const response = await fetch(`http://${exporterAddress(port(ctx.ports))}/metrics`, { signal: AbortSignal.timeout(2000) });
        return response.ok;
      } catch {
        return false;
      }
    },
  };
}

export const exporterAddress = (port: number) => `127.0.0.1:${port}`;

export const postgresExporter = exporterService(
  EXPORTERS.postgres,
  (ports) => ports.postgresExporter,
  (ports) => ({
    command: EXPORTERS.postgres.binary,
    args: [`--web.listen-address=${exporterAddress(ports.postgresExporter)}`],
    env: { DATA_SOURCE_NAME: `${postgresUrl(ports)}?sslmode=disable` },
  }),
);

export const redisExporter = exporterService(
  EXPORTERS.redis,
  (ports) => ports.redisExporter,
  (ports) => ({
    command: EXPORTERS.redis.binary,
    args: ["-redis.addr", redisUrl(ports), "-web.listen-address", exporterAddress(ports.redisExporter)],
  }),
);

export const elasticsearchExporter = exporterService(
  EXPORTERS.elasticsearch,
  (ports) => ports.elasticsearchExporter,
  (ports) => ({
    command: EXPORTERS.elasticsearch.binary,
    // Index stats too: the Stack dashboard's searches and indexing rates.
    args: [`--es.uri=${elasticsearchUrl(ports)}`, "--es.indices", `--web.listen-address=${exporterAddress(ports.elasticsearchExporter)}`],
  }),
);

/** The local Prometheus's exporter jobs: each exporter at its port of this stack. */
export function stackExporterTargets(ports: StackPorts): { job: string; target: string }[] {
  return [postgresExporter, redisExporter, elasticsearchExporter].map((service) => ({ job: service.name, target: exporterAddress(service.port(ports)) }));
}
