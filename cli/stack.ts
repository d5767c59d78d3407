import type { Command } from "commander";
import { SERVICES, localServices, stackPorts } from "../stack/index.js";
import type { ServiceDefinition } from "../stack/service.js";
import { createSupervisor } from "../stack/supervisor.js";
import type { CliContext } from "./context.js";

function select(names: readonly string[], available: readonly ServiceDefinition[]): ServiceDefinition[] {
  if (names.length === 0) return [...available];
  return names.map((name) => {
    const service = available.find((s) => s.name === name);
    if (!service) {
      throw new Error(`unknown or externally configured service "${name}"; local services: ${available.map((s) => s.name).join(", ")}`);
    }
    return service;
  });
}

export function stackCommands(program: Command, { config, log }: CliContext): void {
  const supervisor = () => createSupervisor(config.stackHome, stackPorts(config), log);
  const stack = program.command("stack").description("the local stack of real services (no Docker needed)");
  stack
    .command("up [services...]")
    .description("install (cached), start and wait for health; services already running are left as they are")
    .action(async (names: string[]) => supervisor().up(select(names, localServices(config))));
  stack
    .command("down [services...]")
    .description("stop services and leave no process behind")
    .action(async (names: string[]) => supervisor().down(select(names, SERVICES)));
  stack
    .command("status")
    .description("which services run, on which port, and whether they are healthy")
    .action(async () => {
      const statuses = await supervisor().status(localServices(config));
      console.table(statuses.map((s) => ({ service: s.name, port: s.port, pid: s.pid ?? "-", running: s.running, healthy: s.healthy, log: s.log })));
      if (statuses.some((s) => !s.healthy)) process.exitCode = 1;
    });
}
