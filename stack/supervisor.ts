import { spawn } from "node:child_process";
import { existsSync, openSync, closeSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { withStackLock } from "./lock.js";
import type { ServiceContext, ServiceDefinition, ServicePaths, StackPorts } from "./service.js";

export class ServiceStartError extends Error {
  constructor(
    readonly service: string,
    readonly logFile: string,
    reason: string,
    logTail: string,
  ) {
    super(`${service} did not become healthy: ${reason}. Log: ${logFile}\n--- last lines ---\n${logTail}`);
    this.name = "ServiceStartError";
  }
}

export interface ServiceStatus {
  readonly name: string;
  readonly port: number;
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly healthy: boolean;
  readonly log: string;
}

export interface Supervisor {
  up(services: readonly ServiceDefinition[]): Promise<void>;
  down(services: readonly ServiceDefinition[]): Promise<void>;
  status(services: readonly ServiceDefinition[]): Promise<ServiceStatus[]>;
}

/**
 * Starts, health-checks and stops the local stack's processes. Each service runs detached in
 * its own process group with a pid file under `<home>/run`, so `down` finds it from any shell
 * and leaves nothing behind.
 */
export function createSupervisor(home: string, ports: StackPorts, log: Logger): Supervisor {
  const contextOf = (service: ServiceDefinition): ServiceContext => ({
    paths: pathsOf(home, service.name),
    ports,
    log: log.child({ service: service.name }),
  });
  const pidFile = (name: string) => path.join(home, "run", `${name}.pid`);

  async function runningPid(name: string): Promise<number | undefined> {
    const file = pidFile(name);
    if (!existsSync(file)) return undefined;
    const pid = Number((await readFile(file, "utf8")).trim());
    return Number.isInteger(pid) && isAlive(pid) ? pid : undefined;
  }

  async function start(service: ServiceDefinition): Promise<void> {
    const ctx = contextOf(service);
    await mkdir(ctx.paths.data, { recursive: true });
    await mkdir(path.dirname(ctx.paths.log), { recursive: true });
    await mkdir(path.dirname(pidFile(service.name)), { recursive: true });
    await service.install(ctx);
    await service.prepare(ctx);
    const existing = await runningPid(service.name);
    if (existing !== undefined) {
      await waitHealthy(service, ctx, existing);
      ctx.log.info({ servicePid: existing, port: service.port(ports) }, "already running");
    } else {
      const spec = await service.launch(ctx);
      const out = openSync(ctx.paths.log, "a");
      const child = spawn(spec.command, [...spec.args], {
        cwd: spec.cwd,
        env: { ...process.env, ...spec.env },
        detached: true,
        stdio: ["ignore", out, out],
      });
      closeSync(out);
      const pid = child.pid;
      if (pid === undefined) throw new ServiceStartError(service.name, ctx.paths.log, `could not spawn ${spec.command}`, "");
      child.unref();
      await writeFile(pidFile(service.name), String(pid));
      ctx.log.info({ servicePid: pid, port: service.port(ports), log: ctx.paths.log }, "started");
      await waitHealthy(service, ctx, pid);
    }
    await service.afterStart?.(ctx);
    ctx.log.info({ port: service.port(ports) }, "healthy");
  }

  async function waitHealthy(service: ServiceDefinition, ctx: ServiceContext, pid: number): Promise<void> {
    const deadline = Date.now() + service.startTimeoutSeconds * 1000;
    while (Date.now() < deadline) {
      if (await service.healthy(ctx)) return;
      if (!isAlive(pid)) {
        throw new ServiceStartError(service.name, ctx.paths.log, "the process exited", await tail(ctx.paths.log));
      }
      await sleep(500);
    }
    throw new ServiceStartError(
      service.name,
      ctx.paths.log,
      `no health after ${service.startTimeoutSeconds}s on port ${service.port(ports)}`,
      await tail(ctx.paths.log),
    );
  }

  async function stop(service: ServiceDefinition): Promise<void> {
    const pid = await runningPid(service.name);
    if (pid !== undefined) {
      signalGroup(pid, service.stopSignal ?? "SIGTERM");
      const deadline = Date.now() + 60_000;
      while (isAlive(pid) && Date.now() < deadline) await sleep(200);
      if (isAlive(pid)) {
        log.warn({ service: service.name, servicePid: pid, signal: service.stopSignal ?? "SIGTERM" }, "did not stop within 60s; sending SIGKILL");
        signalGroup(pid, "SIGKILL");
        while (isAlive(pid)) await sleep(100);
      }
      // Children left in the group (e.g. a wrapper's child) go too.
      signalGroup(pid, "SIGKILL");
      log.info({ service: service.name, servicePid: pid }, "stopped");
    }
    await rm(pidFile(service.name), { force: true });
  }

  return {
    async up(services) {
      await withStackLock(home, log, async () => {
        for (const service of orderByDependencies(services)) await start(service);
      });
    },
    async down(services) {
      await withStackLock(home, log, async () => {
        for (const service of orderByDependencies(services).reverse()) await stop(service);
      });
    },
    async status(services) {
      return Promise.all(
        services.map(async (service) => {
          const ctx = contextOf(service);
          const pid = await runningPid(service.name);
          return {
            name: service.name,
            port: service.port(ports),
            pid,
            running: pid !== undefined,
            healthy: pid !== undefined && (await service.healthy(ctx)),
            log: ctx.paths.log,
          };
        }),
      );
    },
  };
}

export function pathsOf(home: string, service: string): ServicePaths {
  return {
    home,
    cache: path.join(home, "cache"),
    data: path.join(home, "data", service),
    log: path.join(home, "logs", `${service}.log`),
  };
}

/** Dependencies first; unknown dependencies (services provided externally) are ignored. */
export function orderByDependencies(services: readonly ServiceDefinition[]): ServiceDefinition[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const ordered: ServiceDefinition[] = [];
  const visiting = new Set<string>();
  const visit = (service: ServiceDefinition) => {
    if (ordered.includes(service)) return;
    if (visiting.has(service.name)) throw new Error(`dependency cycle through ${service.name}`);
    visiting.add(service.name);
    for (const dep of service.dependsOn) {
      const dependency = byName.get(dep);
      if (dependency) visit(dependency);
    }
    visiting.delete(service.name);
    ordered.push(service);
  };
  services.forEach(visit);
  return ordered;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

async function tail(file: string, lines = 20): Promise<string> {
  if (!existsSync(file)) return "(no log written)";
  return (await readFile(file, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
}
