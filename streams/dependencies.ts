import { Gauge, type Registry } from "prom-client";
import type { Logger } from "pino";
import { errorMessage } from "./errors.js";

/** The services a process depends on, as the `dependency` label of its metrics says them. */
export const DEPENDENCIES = ["kafka", "schema_registry", "postgres", "redis", "elasticsearch"] as const;
export type Dependency = (typeof DEPENDENCIES)[number];

export interface DependencyMetrics {
  readonly up: Gauge<"dependency">;
}

export function createDependencyMetrics(registry: Registry): DependencyMetrics {
  return {
    up: new Gauge({
      name: "switchboard_dependency_up",
      help: "1 when the process's last check of a service it uses (kafka, schema_registry, postgres, redis, elasticsearch) answered, 0 when it failed or timed out",
      labelNames: ["dependency"],
      registers: [registry],
    }),
  };
}

/** One check of a dependency: resolves when it answered, rejects when it did not. */
export type Probe = () => Promise<void>;

/**
 * Checks every `intervalMs` each dependency the process uses (the probes of the moment: a
 * client made on first use joins once it exists), each bounded by `timeoutMs`, and sets its
 * gauge: what the DependencyDown alerts read, so an outage shows as the service that is away
 * rather than only as the errors and lag it causes. A change is logged once.
 */
export function watchDependencies(
  probes: () => ReadonlyMap<Dependency, Probe>,
  metrics: DependencyMetrics,
  options: { readonly intervalMs: number; readonly timeoutMs: number; readonly log: Logger },
): { stop(): void } {
  const last = new Map<Dependency, boolean>();
  // A check that outlived its timeout (a client retrying inside) is waited on, not started again.
  const pending = new Map<Dependency, Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = async (dependency: Dependency, probe: Probe) => {
    let timeout: NodeJS.Timeout | undefined;
    let running = pending.get(dependency);
    if (!running) {
      running = probe().finally(() => pending.delete(dependency));
      running.catch(() => undefined);
      pending.set(dependency, running);
    }
    try {
      await Promise.race([
        running,
        new Promise<never>((_, reject) => {
          timeout = setTimeout(() => reject(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
        }),
      ]);
      if (last.get(dependency) === false) options.log.info({ dependency }, "dependency reachable again");
      last.set(dependency, true);
      metrics.up.set({ dependency }, 1);
    } catch (error) {
      if (last.get(dependency) !== false) options.log.warn({ dependency, error: errorMessage(error) }, "dependency unreachable");
      last.set(dependency, false);
      metrics.up.set({ dependency }, 0);
    } finally {
      clearTimeout(timeout);
    }
  };
  const round = async () => {
    await Promise.all([...probes()].map(([dependency, probe]) => check(dependency, probe)));
    if (!stopped) {
      timer = setTimeout(() => void round(), options.intervalMs);
      timer.unref();
    }
  };
  void round();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
