import { z } from "zod";
import type { Outcome } from "./statistics.js";

/**
 * One watched statistic's alarm: it raises after `raiseAfter` consecutive windows over the
 * threshold, stays raised (no further events) while the shift lasts, clears after `clearAfter`
 * consecutive windows settled under the lower threshold, and raises again no sooner than
 * `cooldownMs` after its last raise. A window between the two thresholds breaks either streak.
 * So one shift gives one event, not one per window, and a statistic hovering at its threshold
 * does not flap.
 */

export interface AlarmPolicy {
  readonly raiseAfter: number;
  readonly clearAfter: number;
  readonly cooldownMs: number;
}

/**
 * With α = 0.05 a stable stream puts a window over by chance one time in twenty; three in a row
 * one time in 8,000 (fewer still, as binned KS is conservative), about one false event per
 * 4 million records at 500-row windows. A shift of consequence passes α in every window, so it
 * costs three windows of delay.
 */
export const DEFAULT_ALARM_POLICY: AlarmPolicy = { raiseAfter: 3, clearAfter: 3, cooldownMs: 60 * 60 * 1000 };

export type Transition = "raised" | "cleared";

const alarmStateSpec = z.object({
  status: z.enum(["normal", "alarm"]),
  /** Consecutive windows over the threshold (while normal). */
  over: z.number().int().min(0),
  /** Consecutive windows settled (while in alarm). */
  settled: z.number().int().min(0),
  lastRaisedAt: z.number().nullable(),
});

export type AlarmState = z.infer<typeof alarmStateSpec>;

export const INITIAL_ALARM: AlarmState = { status: "normal", over: 0, settled: 0, lastRaisedAt: null };

export function parseAlarmState(stored: unknown): AlarmState {
  const parsed = alarmStateSpec.safeParse(stored);
  if (!parsed.success) throw new Error(`stored drift alarm state is invalid: ${parsed.error.message}`);
  return parsed.data;
}

/** The alarm after one window's outcome, the window ending at `at` (ms). */
export function stepAlarm(
  state: AlarmState,
  outcome: Outcome,
  at: number,
  policy: AlarmPolicy = DEFAULT_ALARM_POLICY,
): { readonly state: AlarmState; readonly transition: Transition | null } {
  // An untestable window (empty, too few rows) is no evidence either way.
  if (outcome.kind === "insufficient") return { state, transition: null };
  if (state.status === "normal") {
    const over = outcome.drifted ? state.over + 1 : 0;
    const cooled = state.lastRaisedAt === null || at - state.lastRaisedAt >= policy.cooldownMs;
    if (over >= policy.raiseAfter && cooled) {
      return { state: { status: "alarm", over: 0, settled: 0, lastRaisedAt: at }, transition: "raised" };
    }
    return { state: { ...state, over }, transition: null };
  }
  const settled = outcome.settled ? state.settled + 1 : 0;
  if (settled >= policy.clearAfter) {
    return {
      state: { status: "normal", over: 0, settled: 0, lastRaisedAt: state.lastRaisedAt },
      transition: "cleared",
    };
  }
  return { state: { ...state, settled }, transition: null };
}
