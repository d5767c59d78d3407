import { describe, expect, it } from "vitest";
import { INITIAL_ALARM, parseAlarmState, stepAlarm, type AlarmPolicy, type AlarmState } from "../../drift/alarm.js";
import type { Outcome } from "../../drift/statistics.js";

const policy: AlarmPolicy = { raiseAfter: 3, clearAfter: 2, cooldownMs: 10_000 };

/** A KS-like outcome at p: over α = 0.05, settled at p ≥ 0.2, in between otherwise. */
function at(p: number): Outcome {
  return {
    kind: "tested",
    statistic: "ks",
    sampleSize: 500,
    value: 0.1,
    pValue: p,
    threshold: 0.06,
    drifted: p < 0.05,
    settled: p >= 0.2,
    rule: { alpha: 0.05, clearAlpha: 0.2 },
  };
}
const empty: Outcome = { kind: "insufficient", statistic: "ks", sampleSize: 0, reason: "empty window" };

/** Runs outcomes one second apart from t0; the transitions, with the window time they happened at. */
function run(
  outcomes: Outcome[],
  state: AlarmState = INITIAL_ALARM,
  t0 = 1000,
): { state: AlarmState; transitions: string[] } {
  const transitions: string[] = [];
  outcomes.forEach((outcome, i) => {
    const step = stepAlarm(state, outcome, t0 + i * 1000, policy);
    state = step.state;
    if (step.transition) transitions.push(`${step.transition}@${t0 + i * 1000}`);
  });
  return { state, transitions };
}

describe("drift alarm: hysteresis", () => {
  it("raises after three consecutive windows over the threshold, once, however long the shift lasts", () => {
    expect(run([at(0.01), at(0.01)]).transitions).toEqual([]);
    const shift = run([at(0.5), at(0.01), at(0.01), at(0.01), ...Array(20).fill(at(0.001))]);
    expect(shift.transitions).toEqual(["raised@4000"]);
    expect(shift.state.status).toBe("alarm");
  });

  it("a window back under the threshold breaks the streak", () => {
    expect(run([at(0.01), at(0.01), at(0.1), at(0.01), at(0.01)]).transitions).toEqual([]);
  });

  it("clears only after two windows settled under the lower threshold; a window between the thresholds does not settle", () => {
    const raised = run([at(0.01), at(0.01), at(0.01)]);
    expect(run([at(0.1), at(0.1), at(0.1), at(0.1)], raised.state).transitions).toEqual([]);
    expect(run([at(0.3), at(0.1), at(0.3)], raised.state).transitions).toEqual([]);
    expect(run([at(0.3), at(0.3)], raised.state).transitions).toEqual(["cleared@2000"]);
  });

  it("empty windows neither advance nor break a streak", () => {
    expect(run([at(0.01), empty, at(0.01), empty, empty, at(0.01)]).transitions).toEqual(["raised@6000"]);
  });
});

describe("drift alarm: cooldown", () => {
  it("no new event within the cooldown of the last, even after clearing; the next raise waits for it", () => {
    // Raised at 3000, cleared at 5000, over again from 6000: three windows by 8000, but the cooldown runs to 13000.
    const outcomes = [at(0.01), at(0.01), at(0.01), at(0.5), at(0.5), ...Array(10).fill(at(0.01))];
    expect(run(outcomes).transitions).toEqual(["raised@3000", "cleared@5000", "raised@13000"]);
  });

  it("a shift that ends before the cooldown does gives no second event", () => {
    const outcomes = [
      at(0.01),
      at(0.01),
      at(0.01),
      at(0.5),
      at(0.5),
      at(0.01),
      at(0.01),
      at(0.01),
      at(0.5),
      at(0.5),
      at(0.5),
    ];
    expect(run(outcomes).transitions).toEqual(["raised@3000", "cleared@5000"]);
  });
});

describe("drift alarm state through JSON", () => {
  it("round-trips, and resumes the streak it had", () => {
    const half = run([at(0.01), at(0.01)]);
    const stored = parseAlarmState(JSON.parse(JSON.stringify(half.state)));
    expect(stored).toEqual(half.state);
    expect(stepAlarm(stored, at(0.01), 3000, policy).transition).toBe("raised");
    expect(() => parseAlarmState({ status: "on" })).toThrow(/invalid/);
  });
});
