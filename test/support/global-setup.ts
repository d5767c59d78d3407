import type { TestProject } from "vitest/node";
import { loadConfig } from "../../config/settings.js";
import { createLogger } from "../../config/log.js";
import { localServices, resolveEndpoints, stackPorts, type Endpoints } from "../../stack/index.js";
import { dovecot } from "../../stack/services/dovecot.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { startContainers } from "./containers.js";

declare module "vitest" {
  export interface ProvidedContext {
    endpoints: Endpoints;
  }
}

/**
 * The tests run against real services: those named by KAFKA_BROKERS & co., else containers when a
 * Docker engine is present, else the local stack (started here if it is not already up).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const config = loadConfig();
  const log = createLogger({ logLevel: "warn" });
  const containers = await startContainers(config);
  if (containers) {
    if (!config.imapUrl) await createSupervisor(config.stackHome, stackPorts(config), log).up([dovecot]);
    project.provide("endpoints", containers.endpoints);
    return containers.stop;
  }
  await createSupervisor(config.stackHome, stackPorts(config), log).up(localServices(config));
  project.provide("endpoints", resolveEndpoints(config));
  // The stack is left running: `switchboard stack down` (or .ci/run) stops it.
  return async () => undefined;
}
