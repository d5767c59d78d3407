import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

/** Helpers for tests that run workers as child processes (startWorker in topics.ts). */

/** Sum of a Prometheus sample over the series whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

/** The first defined value of `probe`, polled every 50 ms. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** `promise`, or a failure as soon as `child` exits first: a crashed worker should not show as a timeout. */
export function unlessExits<T>(child: ChildProcess, promise: Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const exited = () => reject(new Error(`the worker exited (code ${child.exitCode}, signal ${child.signalCode}) before the test was done`));
    if (child.exitCode !== null || child.signalCode !== null) exited();
    child.once("exit", exited);
    promise.then(
      (value) => (child.off("exit", exited), resolve(value)),
      (error: unknown) => (child.off("exit", exited), reject(error)),
    );
  });
}

/** How the child ended, or a failure if it is still running after `timeoutMs`. */
export function exitOf(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker still running ${timeoutMs} ms after the signal`)), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** Polls a worker's /healthz until it answers 200 (its consumer has joined the group). */
export function waitHealthy(child: ChildProcess, port: number, timeoutMs = 60_000): Promise<void> {
  const healthy = async () => {
    const response = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
    return response?.status === 200 ? true : undefined;
  };
  return unlessExits(child, until(`the worker on port ${port} to be healthy`, healthy, timeoutMs)).then(() => undefined);
}
