import { readFileSync } from "node:fs";

/** Percentile of a sorted sample (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export interface ProcessUsage {
  readonly cpuPercent: number;
  readonly rssMb: number;
}

const TICKS_PER_SECOND = 100;

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

/** CPU (percent of one core, averaged over the window) and peak RSS of processes, from /proc. */
export function usageMeter(pids: readonly number[]): { sample(): void; stop(): Map<number, ProcessUsage> } {
  const start = new Map(pids.map((pid) => [pid, cpuSeconds(pid)]));
  const peak = new Map(pids.map((pid) => [pid, rssMb(pid)]));
  const started = performance.now();
  return {
    sample() {
      for (const pid of pids) peak.set(pid, Math.max(peak.get(pid) ?? 0, rssMb(pid)));
    },
    stop() {
      const seconds = (performance.now() - started) / 1000;
      return new Map(
        pids.map((pid) => [pid, { cpuPercent: ((cpuSeconds(pid) - start.get(pid)!) / seconds) * 100, rssMb: peak.get(pid)! }]),
      );
    },
  };
}
