import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ServiceDefinition } from "../service.js";

const SERVER = "/usr/bin/prometheus-alertmanager";

/** The repository's Alertmanager configuration (validated by `amtool check-config` in test/unit/alerts.test.ts). */
export const ALERTMANAGER_CONFIG = fileURLToPath(new URL("../../monitoring/alertmanager.yml", import.meta.url));

/** Where the local Prometheus sends its alerts. */
export const alertmanagerAddress = (port: number) => `127.0.0.1:${port}`;

/**
 * Alertmanager beside the local Prometheus, which loads monitoring/alerts.yml and sends what fires
 * here (http://127.0.0.1:9095 by default, `amtool alert --alertmanager.url=…`). One instance: clustering off.
 */
export const alertmanager: ServiceDefinition = {
  name: "alertmanager",
  dependsOn: [],
  startTimeoutSeconds: 60,
  port: (ports) => ports.alertmanager,

  async install() {
    if (!existsSync(SERVER)) throw new Error(`Alertmanager is not installed (${SERVER} missing): run \`apt-get install -y prometheus-alertmanager\``);
  },

  async prepare() {},

  async launch(ctx) {
    return {
      command: SERVER,
      args: [
        `--config.file=${ALERTMANAGER_CONFIG}`,
        `--storage.path=${path.join(ctx.paths.data, "data")}`,
        `--web.listen-address=${alertmanagerAddress(ctx.ports.alertmanager)}`,
        `--web.external-url=http://${alertmanagerAddress(ctx.ports.alertmanager)}`,
        "--cluster.listen-address=",
      ],
    };
  },

  async healthy(ctx) {
    try {
      const response = await fetch(`http://${alertmanagerAddress(ctx.ports.alertmanager)}/-/ready`, { signal: AbortSignal.timeout(1000) });
      return response.ok;
    } catch {
      return false;
    }
  },
};
