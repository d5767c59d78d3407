import type { Command } from "commander";
import { resolveEndpoints } from "../stack/index.js";
import { implementationOf } from "../processors/index.js";
import { hostProcessor } from "../streams/host.js";
import { findProcessor } from "../streams/topology.js";
import type { CliContext } from "./context.js";

export function runCommands(program: Command, { config, log }: CliContext): void {
  program
    .command("run <processor>")
    .description("run one processor of the topology as this process (its own consumer group)")
    .action(async (name: string) => {
      const { topology, processor } = findProcessor(name);
      const endpoints = resolveEndpoints(config);
      await hostProcessor(topology, processor, await implementationOf(name, { config, endpoints, log }), config, endpoints, log);
    });
}
