import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { prometheusConfig } from "../../monitoring/scrape-config.js";
import type { ServiceDefinition } from "../service.js";

const SERVER = "/usr/bin/prometheus";

export const prometheus: ServiceDefinition = {
  name: "prometheus",
  dependsOn: [],
  startTimeoutSeconds: 60,
  port: (ports) => ports.prometheus,

  async install() {
    if (!existsSync(SERVER)) throw new Error(`Prometheus is not installed (${SERVER} missing): run \`apt-get install -y prometheus\``);
  },

  async prepare(ctx) {
    await writeFile(path.join(ctx.paths.data, "prometheus.yml"), prometheusConfig(() => "127.0.0.1"));
  },

  async launch(ctx) {
    return {
      command: SERVER,
      args: [
        `--config.file=${path.join(ctx.paths.data, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(ctx.paths.data, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${ctx.ports.prometheus}`,
        "--storage.tsdb.retention.time=7d",
      ],
    };
  },

  async healthy(ctx) {
    try {
      const response = await fetch(`http://127.0.0.1:${ctx.ports.prometheus}/-/ready`, { signal: AbortSignal.timeout(1000) });
      return response.ok;
    } catch {
      return false;
    }
  },
};
