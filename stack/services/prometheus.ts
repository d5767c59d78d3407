import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ALERT_RULES_FILE } from "../../monitoring/alerts.js";
import { prometheusConfig } from "../../monitoring/scrape-config.js";
import type { ServiceDefinition } from "../service.js";
import { alertmanagerAddress } from "./alertmanager.js";
import { stackExporterTargets } from "./exporters.js";

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
    // The repository's rule file itself: `npm run monitoring:generate` and a restart (or SIGHUP) load new rules.
    const config = prometheusConfig(() => "127.0.0.1", {
      ruleFiles: [fileURLToPath(ALERT_RULES_FILE)],
      alertmanagers: [alertmanagerAddress(ctx.ports.alertmanager)],
      exporters: stackExporterTargets(ctx.ports),
    });
    await writeFile(path.join(ctx.paths.data, "prometheus.yml"), config);
  },

  async launch(ctx) {
    return {
      command: SERVER,
      args: [
        `--config.file=${path.join(ctx.paths.data, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(ctx.paths.data, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${ctx.ports.prometheus}`,
        "--storage.tsdb.retention.time=7d",
        // POST /-/reload rereads the configuration and the rules (after `npm run monitoring:generate`).
        "--web.enable-lifecycle",
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
