import { readdirSync, readFileSync } from "node:fs";

/** Percentile of a sorted sample (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export interface ProcessUsage {
  readonly cpuPercent: number;
  /** CPU time used in the window, all cores together. */
  readonly cpuSeconds: number;
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

/** Every running process's children, read once per measurement from /proc. */
function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = Number(statFields(Number(entry))?.[1]);
    const siblings = children.get(parent);
    if (siblings) siblings.push(Number(entry));
    else children.set(parent, [Number(entry)]);
  }
  return children;
}

/** A process and all its descendants (a stack service's workers, e.g. PostgreSQL's backends, which leave its process group). */
function members(pid: number, children: ReadonlyMap<number, readonly number[]>): number[] {
  const all: number[] = [];
  const visit = (p: number) => {
    all.push(p);
    for (const child of children.get(p) ?? []) visit(child);
  };
  visit(pid);
  return all;
}

function cpuSeconds(pid: number, children: ReadonlyMap<number, readonly number[]>): number {
  return members(pid, children).reduce((sum, member) => {
    const fields = statFields(member);
    return sum + (fields ? (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND : 0);
  }, 0);
}

function rssMb(pid: number, children: ReadonlyMap<number, readonly number[]>): number {
  return members(pid, children).reduce((sum, member) => {
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
 * process is measured with its descendants. CPU of descendants that exit within the window is
 * lost (PostgreSQL backends live as long as their pooled connections, so little is).
 */
export function usageMeter(pids: readonly number[]): { sample(): void; stop(): Map<number, ProcessUsage> } {
  const initial = childrenByParent();
  const start = new Map(pids.map((pid) => [pid, cpuSeconds(pid, initial)]));
  const peak = new Map(pids.map((pid) => [pid, rssMb(pid, initial)]));
  const started = performance.now();
  return {
    sample() {
      const children = childrenByParent();
      for (const pid of pids) peak.set(pid, Math.max(peak.get(pid) ?? 0, rssMb(pid, children)));
    },
    stop() {
      const seconds = (performance.now() - started) / 1000;
      const children = childrenByParent();
      return new Map(
        pids.map((pid) => {
          const used = cpuSeconds(pid, children) - start.get(pid)!;
          return [pid, { cpuPercent: (used / seconds) * 100, cpuSeconds: used, rssMb: peak.get(pid)! }];
        }),
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

/** CPU seconds used so far and RSS now of each process with its descendants (a soak's samples). */
export function processSamples(pids: readonly number[]): Map<number, { cpuSeconds: number; rssMb: number }> {
  const children = childrenByParent();
  return new Map(pids.map((pid) => [pid, { cpuSeconds: cpuSeconds(pid, children), rssMb: rssMb(pid, children) }]));
}

/** Least-squares slope of y over x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return sxx === 0 ? Number.NaN : sxy / sxx;
}
