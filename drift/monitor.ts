import { z } from "zod";
import type { DriftStatistic } from "../schemas/types.generated.js";
import {
  DEFAULT_ALARM_POLICY,
  INITIAL_ALARM,
  parseAlarmState,
  stepAlarm,
  type AlarmPolicy,
  type AlarmState,
  type Transition,
} from "./alarm.js";
import type { FeatureReference } from "./reference.js";
import {
  chiSquare,
  embeddingMeanShift,
  EVIDENTLY_TEST_MAX_ROWS,
  jensenShannon,
  kolmogorovSmirnovBinned,
  meanShift,
  wassersteinBinned,
  DEFAULT_DISTANCE_RULE,
  DEFAULT_P_RULE,
  type DistanceRule,
  type Outcome,
  type PValueRule,
  type StatisticResult,
} from "./statistics.js";
import {
  binRepresentatives,
  TumblingWindow,
  type ClosedWindow,
  type FeatureState,
  type Observation,
  type WindowSpec,
} from "./window.js";

/**
 * One model version's drift watch: a tumbling window over its predictions, each closed window
 * tested per feature against the manifest's reference, and one alarm per feature. The processor
 * feeds it records and stores toJSON() with its offsets; restore() resumes.
 */

/** Fewer rows than this in a (time) window test nothing: a quiet hour's dozen inquiries are no distribution. */
export const DEFAULT_MIN_ROWS = 100;

/**
 * Evidently's choice by window size: up to 1,000 rows a test (χ² for categories, KS for numbers)
 * at p < 0.05; above, a distance (Jensen–Shannon, normalised Wasserstein) over 0.1, since a
 * p-value on thousands of rows flags differences too small to matter.
 */
export function evidentlyStatistic(kind: FeatureReference["kind"], rows: number): DriftStatistic {
  const small = rows <= EVIDENTLY_TEST_MAX_ROWS;
  switch (kind) {
    case "categorical":
      return small ? "chi_square" : "jensen_shannon";
    case "histogram":
      return small ? "ks" : "wasserstein";
    case "scalar":
      return "mean_shift";
    case "vector":
      return "embedding_mean_shift";
  }
}

/** A feature's own thresholds, where Evidently's defaults do not suit it. */
export interface FeatureRules {
  readonly test?: PValueRule;
  readonly distance?: DistanceRule;
}

/** One feature's test on one closed window. */
export function testFeature(
  reference: FeatureReference,
  state: FeatureState,
  statistic: DriftStatistic,
  rules: FeatureRules = {},
): Outcome {
  const test = rules.test ?? DEFAULT_P_RULE;
  const distance = rules.distance ?? DEFAULT_DISTANCE_RULE;
  if (reference.kind === "categorical" && state.kind === "categorical") {
    const comparison = { reference: reference.shares, counts: state.counts };
    if (statistic === "chi_square") return chiSquare(comparison, test);
    if (statistic === "jensen_shannon") return jensenShannon(comparison, distance);
  }
  if (reference.kind === "histogram" && state.kind === "histogram") {
    const histograms = { reference: reference.counts, window: state.counts };
    if (statistic === "ks") return kolmogorovSmirnovBinned(histograms, test);
    if (statistic === "wasserstein")
      return wassersteinBinned(histograms, binRepresentatives(reference.edges, reference.openEnded), distance);
  }
  if (reference.kind === "scalar" && state.kind === "scalar" && statistic === "mean_shift")
    return meanShift(reference, state, { test, distance });
  if (reference.kind === "vector" && state.kind === "vector" && statistic === "embedding_mean_shift") {
    return embeddingMeanShift(
      reference.std ? { mean: reference.mean, std: reference.std } : { mean: reference.mean },
      state,
      test,
    );
  }
  throw new Error(`drift feature ${reference.feature} (${reference.kind}) has no ${statistic} test`);
}

export interface DriftEvent {
  readonly transition: Transition;
  readonly feature: string;
  readonly window: ClosedWindow;
  readonly result: StatisticResult;
}

export interface WindowReport {
  readonly window: ClosedWindow;
  /** Every feature's outcome, for metrics; events only where an alarm changed. */
  readonly outcomes: Readonly<Record<string, Outcome>>;
  readonly events: readonly DriftEvent[];
}

export interface MonitorOptions {
  readonly references: readonly FeatureReference[];
  readonly window: WindowSpec;
  readonly policy?: AlarmPolicy;
  readonly minRows?: number;
  /** A fixed statistic per feature name; else evidentlyStatistic() on each window's size. */
  readonly statistics?: Readonly<Record<string, DriftStatistic>>;
  /** Thresholds per feature name; else Evidently's (p < 0.05, distance > 0.1). */
  readonly rules?: Readonly<Record<string, FeatureRules>>;
}

const monitorStateSpec = z.object({
  version: z.literal(1),
  window: z.unknown(),
  alarms: z.record(z.string(), z.unknown()),
});

export type MonitorState = {
  readonly version: 1;
  readonly window: unknown;
  readonly alarms: Record<string, AlarmState>;
};

export class DriftMonitor {
  private window: TumblingWindow;
  private alarms: Record<string, AlarmState>;

  constructor(
    private readonly options: MonitorOptions,
    stored?: unknown,
  ) {
    const features = options.references.map((r) => r.feature);
    if (new Set(features).size !== features.length)
      throw new Error(`drift features must be unique: ${features.join(", ")}`);
    if (stored === undefined) {
      this.window = new TumblingWindow(options.window, options.references);
      this.alarms = Object.fromEntries(features.map((f) => [f, INITIAL_ALARM]));
      return;
    }
    const parsed = monitorStateSpec.safeParse(stored);
    if (!parsed.success) throw new Error(`stored drift monitor state is invalid: ${parsed.error.message}`);
    this.window = TumblingWindow.restore(options.window, options.references, parsed.data.window);
    // A feature new to this reference starts normal; one no longer watched is dropped.
    this.alarms = Object.fromEntries(
      features.map((f) => [
        f,
        parsed.data.alarms[f] === undefined ? INITIAL_ALARM : parseAlarmState(parsed.data.alarms[f]),
      ]),
    );
  }

  toJSON(): MonitorState {
    return { version: 1, window: this.window.toJSON(), alarms: { ...this.alarms } };
  }

  /** Counts one prediction's features at `at` (ms); a report when that closed a window. */
  add(observation: Observation, at: number): WindowReport | null {
    const closed = this.window.add(observation, at);
    return closed ? this.evaluate(closed) : null;
  }

  /** Closes a time window whose end has passed without a record past it. */
  advance(now: number): WindowReport | null {
    const closed = this.window.advance(now);
    return closed ? this.evaluate(closed) : null;
  }

  alarm(feature: string): AlarmState | undefined {
    return this.alarms[feature];
  }

  private evaluate(window: ClosedWindow): WindowReport {
    const minRows = this.options.minRows ?? DEFAULT_MIN_ROWS;
    const outcomes: Record<string, Outcome> = {};
    const events: DriftEvent[] = [];
    for (const reference of this.options.references) {
      const state = window.features[reference.feature]!;
      const rows = featureRows(state);
      const statistic = this.options.statistics?.[reference.feature] ?? evidentlyStatistic(reference.kind, rows);
      const outcome: Outcome =
        rows < minRows
          ? { kind: "insufficient", statistic, sampleSize: rows, reason: `fewer than ${minRows} rows` }
          : testFeature(reference, state, statistic, this.options.rules?.[reference.feature]);
      outcomes[reference.feature] = outcome;
      const { state: alarm, transition } = stepAlarm(
        this.alarms[reference.feature]!,
        outcome,
        window.end,
        this.options.policy ?? DEFAULT_ALARM_POLICY,
      );
      this.alarms[reference.feature] = alarm;
      if (transition && outcome.kind === "tested")
        events.push({ transition, feature: reference.feature, window, result: outcome });
    }
    return { window, outcomes, events };
  }
}

/** Rows that carried the feature (a record may lack one, e.g. no embedding). */
export function featureRows(state: FeatureState): number {
  switch (state.kind) {
    case "categorical":
      return Object.values(state.counts).reduce((a, b) => a + b, 0);
    case "histogram":
      return state.counts.reduce((a, b) => a + b, 0);
    case "scalar":
    case "vector":
      return state.count;
  }
}
