import { describe, expect, it } from "vitest";
import { driftLine, lifecycleLine } from "../../cli/watch.js";

const AT = Date.UTC(2026, 11, 2, 6, 30);

describe("switchboard watch", () => {
  it("prints a drift record as one line: version, severity, feature, statistic against threshold", () => {
    const line = driftLine({ task: "intent", model: "intent@v2", feature: "label", window_start: AT - 60_000, window_end: AT, sample_size: 500, statistic: "chi_square", value: 1055.53, threshold: 37.65, severity: "critical", detected_at: AT });
    expect(line).toBe("2026-12-02T06:30:00.000Z  intent@v2  CRITICAL drift of label: chi_square 1056 (threshold 37.65, 500 rows)");
    expect(driftLine({ task: "intent", model: "intent@v2", feature: "text", window_start: AT, window_end: AT, sample_size: 200, statistic: "domain_classifier_auc", value: 0.52, threshold: 0.59, severity: "info", detected_at: AT })).toContain("cleared of text");
  });

  it("prints a lifecycle record with its stage, trigger, reason and the figures that decided it", () => {
    const line = lifecycleLine({
      task: "intent",
      model: "intent@v3",
      event: "promoted",
      stage: "production",
      metrics: { "shadow.accuracy": 0.91, "production.accuracy": 0.84, labelled: 60, "policy.min_macro_f1_gain": 0.005 },
      artifact_uri: "intent/v3",
      reason: "as accurate as production on 60 labelled inquiries",
      occurred_at: AT,
      lineage: { trigger: "drift" },
    });
    expect(line).toBe("2026-12-02T06:30:00.000Z  intent@v3  PROMOTED -> production [drift]: as accurate as production on 60 labelled inquiries (shadow.accuracy 0.9100, production.accuracy 0.8400)");
  });
});
