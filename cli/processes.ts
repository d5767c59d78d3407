import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { REPO_ROOT } from "../config/settings.js";
import { deployedTasks, type ChainDeclaration, type ConnectorDeclaration, type ProcessorDeclaration, type Topology } from "../streams/topology.js";

const CLI = path.join(REPO_ROOT, "bin", "switchboard.js");

/** A chain, processor or connector of the topology, run as `switchboard run <name>`, with the port its /healthz answers on. */
export interface Runnable {
  readonly name: string;
  readonly port: number;
}

export const runnableProcessor = (p: ProcessorDeclaration): Runnable => ({ name: p.name, port: p.metricsPort });
export const runnableConnector = (c: ConnectorDeclaration): Runnable => ({ name: c.name, port: c.port });
export const runnableChain = (c: ChainDeclaration): Runnable => ({ name: c.name, port: c.metricsPort });

/** The stream tasks a deployment of `topology` runs: its chains and the processors in none. */
export function deployedRunnables(topology: Topology): Runnable[] {
  const { chains, processors } = deployedTasks(topology);
  return [...chains.map(runnableChain), ...processors.map(runnableProcessor)];
}

export interface ProcessorProcess {
  readonly declaration: Runnable;
  readonly child: ChildProcess;
  readonly log: string;
}

/** Starts `switchboard run <name>` as a child process, its logs in `<stackHome>/logs/processors/`. */
/** `nodeArgs`: options for Node itself, e.g. `--cpu-prof` (not allowed in NODE_OPTIONS). */
export function spawnProcessor(
  declaration: Runnable,
  stackHome: string,
  env: NodeJS.ProcessEnv = process.env,
  nodeArgs: readonly string[] = [],
): ProcessorProcess {
  const dir = path.join(stackHome, "logs", "processors");
  mkdirSync(dir, { recursive: true });
  const log = path.join(dir, `${declaration.name}.log`);
  const out = openSync(log, "a");
  const child = spawn(process.execPath, [...nodeArgs, CLI, "run", declaration.name], { env, stdio: ["ignore", out, out] });
  return { declaration, child, log };
}

/** Waits until the processor answers /healthz with 200, or fails naming its log. */
export async function waitHealthy(proc: ProcessorProcess, port = proc.declaration.port, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.declaration.name} exited with ${proc.child.exitCode}; see ${proc.log}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await sleep(250);
  }
  throw new Error(`${proc.declaration.name} not healthy after ${timeoutMs / 1000}s; see ${proc.log}`);
}

/** SIGTERM, then wait for the graceful exit. */
export async function stopProcessor(proc: ProcessorProcess): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once("exit", resolve));
  proc.child.kill("SIGTERM");
  await exited;
}
