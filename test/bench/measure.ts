import { readdirSync, readFileSync } from "node:fs";

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

function statFields(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  } catch {
    return undefined; // the process exited
  }
}

/** A process, or every process of its group when it leads one (a stack service and its workers, e.g. PostgreSQL's backends). */
function members(pid: number): number[] {
  if (Number(statFields(pid)?.[2]) !== pid) return [pid];
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((other) => Number(statFields(other)?.[2]) === pid);
}

function cpuSeconds(pid: number): number {
  return members(pid).reduce((sum, member) => {
    const fields = statFields(member);
    return sum + (fields ? (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND : 0);
  }, 0);
}

function rssMb(pid: number): number {
  return members(pid).reduce((sum, member) => {
    try {
      const line = readFileSync(`/proc/${member}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
      return sum + Number(line?.split(/\s+/)[1] ?? 0) / 1024;
    } catch {
      return sum;
    }
  }, 0);
}

/**
 * CPU (percent of one core, averaged over the window) and peak RSS of processes, from /proc; a
 * process that leads its group is measured with the whole group.
 */
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

/**
 * Sums and counts of a Prometheus histogram from exposition text, keyed by one of its labels
 * (series with other label values are added up).
 */
export function histogramTotals(text: string, metric: string, label: string): Map<string, { sum: number; count: number }> {
  const totals = new Map<string, { sum: number; count: number }>();
  const series = new RegExp(`^${metric}_(sum|count)\\{([^}]*)\\} (\\S+)$`, "gm");
  for (const [, kind, labels, value] of text.matchAll(series)) {
    const key = new RegExp(`${label}="([^"]*)"`).exec(labels!)?.[1];
    if (key === undefined) continue;
    const total = totals.get(key) ?? { sum: 0, count: 0 };
    total[kind as "sum" | "count"] += Number(value);
    totals.set(key, total);
  }
  return totals;
}
