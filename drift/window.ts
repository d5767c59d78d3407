import { z } from "zod";
import type { FeatureReference } from "./reference.js";

/**
 * Tumbling windows of live traffic, by count or by time, holding per feature only what the tests
 * need (category counts, bin counts, sums), so a window's state is small and serialises to JSON:
 * the processor stores it durably and a restart resumes the open window instead of losing it.
 */

export type WindowSpec =
  /** Closes after `size` records. */
  | { readonly kind: "count"; readonly size: number }
  /** Closes at each multiple of `durationMs` since the epoch (aligned, so every instance agrees on the boundaries). */
  | { readonly kind: "time"; readonly durationMs: number };

export type FeatureState =
  | { readonly kind: "categorical"; readonly counts: Record<string, number> }
  | { readonly kind: "histogram"; readonly counts: number[] }
  | { readonly kind: "scalar"; count: number; sum: number }
  | { readonly kind: "vector"; count: number; readonly sum: number[] };

/** One record's values by feature name: a label or language, a number, or an embedding. */
export type Observation = Readonly<Record<string, string | number | readonly number[] | undefined>>;

export interface ClosedWindow {
  /** 0, 1, 2, ... per monitor, across restarts. */
  readonly index: number;
  /** Time windows: the aligned bounds [start, end). Count windows: first and last record's time. */
  readonly start: number;
  readonly end: number;
  readonly count: number;
  readonly features: Readonly<Record<string, FeatureState>>;
}

/**
 * The bin of `value` as training/reference.py's histogram() counts it: [edges[i], edges[i+1]),
 * values below the first edge in the first bin, the right edge (or above, when open-ended) in the last.
 */
export function binIndex(value: number, edges: readonly number[], openEnded: boolean): number {
  let lo = 0;
  let hi = edges.length; // first edge > value (searchsorted side=right)
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return Math.min(Math.max(lo - 1, 0), edges.length - (openEnded ? 1 : 2));
}

/**
 * The value a bin stands for in Wasserstein distances: its midpoint; an open-ended last bin has
 * no right edge, so it stands at its left edge plus half the previous bin's width.
 */
export function binRepresentatives(edges: readonly number[], openEnded: boolean): number[] {
  const mids = edges.slice(0, -1).map((edge, i) => (edge + edges[i + 1]!) / 2);
  if (openEnded) mids.push(edges.at(-1)! + (edges.at(-1)! - edges.at(-2)!) / 2);
  return mids;
}

function emptyState(reference: FeatureReference): FeatureState {
  switch (reference.kind) {
    case "categorical":
      return { kind: "categorical", counts: {} };
    case "histogram":
      return { kind: "histogram", counts: new Array<number>(reference.counts.length).fill(0) };
    case "scalar":
      return { kind: "scalar", count: 0, sum: 0 };
    case "vector":
      return { kind: "vector", count: 0, sum: new Array<number>(reference.mean.length).fill(0) };
  }
}

function accumulate(reference: FeatureReference, state: FeatureState, value: Observation[string]): void {
  const bad = (): never => {
    throw new TypeError(`drift feature ${reference.feature} (${reference.kind}) cannot take ${JSON.stringify(value)}`);
  };
  if (state.kind === "categorical") {
    if (typeof value !== "string") bad();
    state.counts[value as string] = (state.counts[value as string] ?? 0) + 1;
  } else if (state.kind === "histogram" && reference.kind === "histogram") {
    if (typeof value !== "number" || !Number.isFinite(value)) bad();
    state.counts[binIndex(value as number, reference.edges, reference.openEnded)]!++;
  } else if (state.kind === "scalar") {
    if (typeof value !== "number" || !Number.isFinite(value)) bad();
    state.count++;
    state.sum += value as number;
  } else if (state.kind === "vector") {
    if (!Array.isArray(value) || value.length !== state.sum.length || !value.every(Number.isFinite)) bad();
    const vector = value as readonly number[];
    for (let i = 0; i < vector.length; i++) state.sum[i]! += vector[i]!;
    state.count++;
  }
}

const featureStateSpec = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("categorical"), counts: z.record(z.string(), z.number().int().min(0)) }),
  z.object({ kind: z.literal("histogram"), counts: z.array(z.number().int().min(0)) }),
  z.object({ kind: z.literal("scalar"), count: z.number().int().min(0), sum: z.number() }),
  z.object({ kind: z.literal("vector"), count: z.number().int().min(0), sum: z.array(z.number()) }),
]);

const windowStateSpec = z.object({
  version: z.literal(1),
  spec: z.discriminatedUnion("kind", [
    z.object({ kind: z.literal("count"), size: z.number().int().min(1) }),
    z.object({ kind: z.literal("time"), durationMs: z.number().int().min(1) }),
  ]),
  index: z.number().int().min(0),
  start: z.number().nullable(),
  end: z.number().nullable(),
  count: z.number().int().min(0),
  features: z.record(z.string(), featureStateSpec),
});

export type WindowState = z.infer<typeof windowStateSpec>;

function sameShape(reference: FeatureReference, state: FeatureState | undefined): boolean {
  if (!state || state.kind !== reference.kind) return false;
  if (state.kind === "histogram" && reference.kind === "histogram")
    return state.counts.length === reference.counts.length;
  if (state.kind === "vector" && reference.kind === "vector") return state.sum.length === reference.mean.length;
  return true;
}

export class TumblingWindow {
  private index = 0;
  private start: number | null = null;
  private end: number | null = null;
  private count = 0;
  private features: Record<string, FeatureState> = {};

  constructor(
    readonly spec: WindowSpec,
    private readonly references: readonly FeatureReference[],
  ) {
    const size = spec.kind === "count" ? spec.size : spec.durationMs;
    if (!Number.isInteger(size) || size < 1)
      throw new Error(`a ${spec.kind} window needs a positive integer size, not ${size}`);
    this.reset();
  }

  /**
   * A window resumed from its stored state. A state written under another spec or for other
   * references (a new model version, changed bins) describes other windows: the open window starts
   * empty then, keeping only the numbering.
   */
  static restore(spec: WindowSpec, references: readonly FeatureReference[], stored: unknown): TumblingWindow {
    const window = new TumblingWindow(spec, references);
    const parsed = windowStateSpec.safeParse(stored);
    if (!parsed.success) throw new Error(`stored drift window state is invalid: ${parsed.error.message}`);
    const state = parsed.data;
    window.index = state.index;
    const sameSpec = JSON.stringify(state.spec) === JSON.stringify(spec);
    const fits = references.every((r) => sameShape(r, state.features[r.feature]));
    if (sameSpec && fits && Object.keys(state.features).length === references.length) {
      window.start = state.start;
      window.end = state.end;
      window.count = state.count;
      window.features = state.features;
    }
    return window;
  }

  toJSON(): WindowState {
    return {
      version: 1,
      spec: this.spec,
      index: this.index,
      start: this.start,
      end: this.end,
      count: this.count,
      features: structuredClone(this.features),
    };
  }

  get size(): number {
    return this.count;
  }

  /**
   * Counts one record at `at` (ms). Returns the window that closes: for a count window the one
   * this record fills; for a time window the previous one, when the record falls past its end. A
   * record older than the open time window's start (late) counts in the open window: a window
   * once closed has been tested and is never reopened.
   */
  add(observation: Observation, at: number): ClosedWindow | null {
    let closed: ClosedWindow | null = null;
    if (this.spec.kind === "time") {
      const d = this.spec.durationMs;
      if (this.start !== null && at >= this.start + d) closed = this.close();
      if (this.start === null) {
        this.start = Math.floor(at / d) * d;
        this.end = this.start + d;
      }
    } else {
      this.start = this.start === null ? at : Math.min(this.start, at);
      this.end = this.end === null ? at : Math.max(this.end, at);
    }
    for (const reference of this.references) {
      const value = observation[reference.feature];
      if (value !== undefined) accumulate(reference, this.features[reference.feature]!, value);
    }
    this.count++;
    if (this.spec.kind === "count" && this.count >= this.spec.size) closed = this.close();
    return closed;
  }

  /** Closes an open time window whose end `now` has reached, so a quiet stream still gets tested. */
  advance(now: number): ClosedWindow | null {
    if (this.spec.kind !== "time" || this.start === null || now < this.start + this.spec.durationMs) return null;
    return this.close();
  }

  private close(): ClosedWindow {
    const closed: ClosedWindow = {
      index: this.index,
      start: this.start!,
      end: this.end!,
      count: this.count,
      features: this.features,
    };
    this.index++;
    this.reset();
    return closed;
  }

  private reset(): void {
    this.start = null;
    this.end = null;
    this.count = 0;
    this.features = Object.fromEntries(this.references.map((r) => [r.feature, emptyState(r)]));
  }
}
