import type { Command } from "commander";
import { connectorFactory } from "../connectors/index.js";
import { hostConnector } from "../connectors/host.js";
import { resolveEndpoints } from "../stack/index.js";
import { createResources } from "../streams/resources.js";
import { chainTaskOf, implementationOf } from "../processors/index.js";
import { hostProcessor, hostTask } from "../streams/host.js";
import { findChain, findConnector, findProcessor } from "../streams/topology.js";
import type { CliContext } from "./context.js";

export function runCommands(program: Command, { config, log }: CliContext): void {
  program
    .command("run <name>")
    .description("run one chain, processor (its own consumer group) or connector of the topology as this process")
    .action(async (name: string) => {
      const endpoints = resolveEndpoints(config);
      const source = findConnector(name);
      if (source) {
        await hostConnector(source.topology, source.connector, await connectorFactory(name), config, endpoints, log);
        return;
      }
      const chained = findChain(name);
      if (chained) {
        const { topology, chain } = chained;
        const resources = createResources(config, endpoints, log, name);
        const task = await chainTaskOf(chain, { topology, config, endpoints, log, resources });
        await hostTask(topology, task, chain.metricsPort, config, endpoints, log, resources);
        return;
      }
      const { topology, processor } = findProcessor(name);
      const resources = createResources(config, endpoints, log, name);
      const implementation = await implementationOf(name, { topology, config, endpoints, log, resources });
      await hostProcessor(topology, processor, implementation, config, endpoints, log, resources);
    });
}
