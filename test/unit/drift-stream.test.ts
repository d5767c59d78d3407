import { describe, expect, it } from "vitest";
import { DEFAULT_ALARM_POLICY } from "../../drift/alarm.js";
import { DriftMonitor, testFeature, type DriftEvent, type MonitorOptions } from "../../drift/monitor.js";
import { featureReferences } from "../../drift/reference.js";
import type { Observation } from "../../drift/window.js";
import { seededRandom as random } from "../../drift/seeded.js";
import { drawFromReference, intentReference } from "../support/drift-stream.js";

const { features: references } = featureReferences(intentReference());
const WINDOW = 500;
const countWindows: MonitorOptions = { references, window: { kind: "count", size: WINDOW } };
// One inquiry every two seconds: 50,000 span ~28 hours, 15-minute windows of ~450.
const SPACING_MS = 2000;
const timeWindows: MonitorOptions = { references, window: { kind: "time", durationMs: 15 * 60_000 } };

interface Run {
  readonly events: (DriftEvent & { readonly record: number })[];
  readonly windows: number;
  /** Per feature, the share of tested windows over their threshold. */
  readonly overShare: Record<string, number>;
}

function stream(options: MonitorOptions, records: number, draw: (i: number) => Observation, restartAt?: number): Run {
  let monitor = new DriftMonitor(options);
  const events: Run["events"] = [];
  const over: Record<string, number> = {};
  const tested: Record<string, number> = {};
  let windows = 0;
  for (let i = 0; i < records; i++) {
    if (i === restartAt) monitor = new DriftMonitor(options, JSON.parse(JSON.stringify(monitor.toJSON())));
    const report = monitor.add(draw(i), i * SPACING_MS);
    if (!report) continue;
    windows++;
    for (const [feature, outcome] of Object.entries(report.outcomes)) {
      if (outcome.kind !== "tested") continue;
      tested[feature] = (tested[feature] ?? 0) + 1;
      if (outcome.drifted) over[feature] = (over[feature] ?? 0) + 1;
    }
    events.push(...report.events.map((event) => ({ ...event, record: i })));
  }
  const overShare = Object.fromEntries(Object.keys(tested).map((f) => [f, (over[f] ?? 0) / tested[f]!]));
  return { events, windows, overShare };
}

const stable = (seed: number): ((i: number) => Observation) => {
  const rand = random(seed);
  return () => drawFromReference(references, rand);
};

describe("a stable stream of 50,000 draws from the reference", () => {
  it.each([
    ["count windows of 500", countWindows, 100],
    ["15-minute windows", timeWindows, 110],
  ] as const)(
    "raises no drift event (%s), and each test's false-alarm rate per window stays near α",
    (_, options, windows) => {
      const run = stream(options, 50_000, stable(11));
      expect(run.windows).toBeGreaterThanOrEqual(windows);
      expect(run.events).toEqual([]);
      expect(Object.keys(run.overShare).sort()).toEqual(references.map((r) => r.feature).sort());
      // α = 0.05 per window; the binned KS is conservative, so at most a little above α by chance.
      for (const share of Object.values(run.overShare)) expect(share).toBeLessThanOrEqual(0.12);
    },
  );
});

describe("a shifted stream", () => {
  const SHIFT_AT = 20_000;
  const TOTAL = 50_000;
  // A window straddling the shift may not pass; then three shifted windows.
  const BOUND = (DEFAULT_ALARM_POLICY.raiseAfter + 1) * WINDOW;

  function shifted(
    seed: number,
    change: (record: Record<string, string | number | number[]>, rand: () => number) => void,
  ) {
    const rand = random(seed);
    return (i: number): Observation => {
      const record = drawFromReference(references, rand);
      if (i >= SHIFT_AT) change(record, rand);
      return record;
    };
  }

  it("Spanish-only traffic raises exactly one event, on language, within four windows of the shift", () => {
    const run = stream(
      countWindows,
      TOTAL,
      shifted(5, (record) => void (record["language"] = "es")),
    );
    expect(run.events.map((e) => `${e.transition}:${e.feature}:${e.result.statistic}`)).toEqual([
      "raised:language:chi_square",
    ]);
    const [event] = run.events;
    expect(event!.record).toBeGreaterThanOrEqual(SHIFT_AT);
    expect(event!.record - SHIFT_AT).toBeLessThan(BOUND);
  });

  it("an intent mix far from the reference raises one label event; the shift lasting 30,000 records raises no second", () => {
    const run = stream(
      countWindows,
      TOTAL,
      shifted(6, (record, rand) => {
        if (rand() < 0.6) record["label"] = "intent_00"; // a rare intent becomes most of the traffic
      }),
    );
    const label = run.events.filter((e) => e.feature === "label");
    expect(label).toHaveLength(1);
    expect(label[0]!.transition).toBe("raised");
    expect(label[0]!.record - SHIFT_AT).toBeLessThan(BOUND);
    expect(run.events).toHaveLength(1);
  });

  it("an embedding that moved raises one event on its mean shift", () => {
    const run = stream(
      countWindows,
      TOTAL,
      shifted(7, (record) => {
        const embedding = record["embedding"] as number[];
        embedding[1] = embedding[1]! + 0.1; // one dimension moves by about a std
      }),
    );
    expect(run.events.map((e) => `${e.feature}:${e.result.statistic}`)).toEqual(["embedding:embedding_mean_shift"]);
    expect(run.events[0]!.record - SHIFT_AT).toBeLessThan(BOUND);
  });

  it.each([
    [
      "longer inquiries (lengths ×4)",
      "length",
      (record: Record<string, string | number | number[]>) => {
        record["length"] = (record["length"] as number) * 4;
      },
    ],
    [
      "a less sure model (a third of confidences uniform in [0.5, 0.9))",
      "confidence",
      (record: Record<string, string | number | number[]>, rand: () => number) => {
        if (rand() < 1 / 3) record["confidence"] = 0.5 + 0.4 * rand();
      },
    ],
  ] as const)("%s raises one event, a KS one against the histogram reference", (_, feature, change) => {
    const run = stream(countWindows, TOTAL, shifted(9, change));
    expect(run.events.map((e) => `${e.feature}:${e.result.statistic}`)).toEqual([`${feature}:ks`]);
    expect(run.events[0]!.record - SHIFT_AT).toBeLessThan(BOUND);
  });

  it("the shift's end clears the alarm once (count windows), and a restart from JSON state sees the same events", () => {
    const back = (seed: number) => {
      const rand = random(seed);
      return (i: number): Observation => {
        const record = drawFromReference(references, rand);
        if (i >= SHIFT_AT && i < SHIFT_AT + 5_000) record["language"] = "es";
        return record;
      };
    };
    const straight = stream(countWindows, 40_000, back(8));
    expect(straight.events.map((e) => `${e.transition}:${e.feature}`)).toEqual(["raised:language", "cleared:language"]);
    // Restart mid-window while the alarm is raised.
    const restarted = stream(countWindows, 40_000, back(8), SHIFT_AT + 2_250);
    expect(restarted.events).toEqual(straight.events);
  });
});

describe("thresholds per feature", () => {
  const language = references.find((r) => r.feature === "language")!;
  // 0.92 / 0.05 / 0.03 expected 460 / 25 / 15 of 500; 440 / 40 / 20 gives χ² ≈ 11.7, p ≈ 0.003.
  const state = { kind: "categorical", counts: { en: 440, es: 40, fr: 20 } } as const;

  it("a feature's own α replaces Evidently's 0.05, for the test and the alarm's lower threshold", () => {
    const evidently = testFeature(language, state, "chi_square");
    const strict = testFeature(language, state, "chi_square", { test: { alpha: 0.001, clearAlpha: 0.01 } });
    expect(evidently.kind === "tested" && evidently.drifted).toBe(true);
    expect(strict.kind === "tested" && !strict.drifted && !strict.settled).toBe(true);
    const loose = testFeature(language, state, "jensen_shannon", { distance: { threshold: 0.01, clear: 0.005 } });
    expect(loose.kind === "tested" && loose.drifted).toBe(true);
  });

  it("reach the monitor's tests through its options", () => {
    const options: MonitorOptions = {
      ...countWindows,
      rules: { language: { test: { alpha: 1e-12, clearAlpha: 0.2 } } },
    };
    const spanishTenth = (seed: number) => {
      const rand = random(seed);
      return (i: number): Observation => {
        const record = drawFromReference(references, rand);
        if (i >= 20_000 && rand() < 0.045) record["language"] = "es"; // 5 % → ~9 % Spanish: p ≈ 2e-4 a window
        return record;
      };
    };
    expect(stream(countWindows, 30_000, spanishTenth(12)).events.map((e) => e.feature)).toEqual(["language"]);
    expect(stream(options, 30_000, spanishTenth(12)).events).toEqual([]);
  });
});

describe("quiet time windows", () => {
  it("a window with fewer than 100 rows tests nothing and moves no alarm; advance() closes it without a record", () => {
    const monitor = new DriftMonitor(timeWindows);
    const rand = random(13);
    const minute = 60_000;
    let reports = 0;
    // 40 Spanish-only inquiries in each of four quarter-hours: far from the reference, too few to judge.
    for (let quarter = 0; quarter < 4; quarter++) {
      for (let i = 0; i < 40; i++) {
        const record = drawFromReference(references, rand);
        record["language"] = "es";
        const report = monitor.add(record, quarter * 15 * minute + i * 1000);
        if (report) {
          reports++;
          expect(report.events).toEqual([]);
          expect(report.outcomes["language"]).toMatchObject({
            kind: "insufficient",
            sampleSize: 40,
            reason: "fewer than 100 rows",
          });
        }
      }
    }
    expect(reports).toBe(3); // each quarter's first record closed the one before
    const last = monitor.advance(60 * minute);
    expect(last).toMatchObject({ window: { start: 45 * minute, end: 60 * minute, count: 40 }, events: [] });
    expect(monitor.alarm("language")).toEqual({ status: "normal", over: 0, settled: 0, lastRaisedAt: null });
  });
});
