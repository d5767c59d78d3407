import { describe, expect, it } from "vitest";
import { domainClassifierTest, rocAuc } from "../../drift/text-drift.js";

/** Unit vectors around `centre` (a direction index), spread by `noise`. */
function cloud(n: number, dims: number, centre: number, noise: number, seed: number): Float32Array[] {
  let s = seed;
  const random = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: n }, () => {
    const v = Float32Array.from({ length: dims }, () => (random() - 0.5) * noise);
    v[centre]! += 1;
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

describe("text drift by a domain classifier", () => {
  it("computes ROC AUC as the Mann–Whitney statistic, ties counted half", () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
    expect(rocAuc([1, 1, 1, 1], [0, 1, 0, 1])).toBe(0.5);
    expect(rocAuc([0.9, 0.1], [0, 1])).toBe(0);
    expect(rocAuc([0.2, 0.3], [1, 1])).toBeNaN();
  });

  it("does not tell two samples of the same texts apart", async () => {
    const result = await domainClassifierTest(cloud(200, 32, 0, 1.5, 1), cloud(200, 32, 0, 1.5, 2), { permutations: 5 });
    expect(result.drifted).toBe(false);
    expect(result.value).toBeLessThan(0.6);
    expect(result.threshold).toBeGreaterThanOrEqual(0.55);
  });

  it("tells texts about something else apart, far over the threshold", async () => {
    const result = await domainClassifierTest(cloud(200, 32, 0, 1.5, 3), cloud(200, 32, 1, 1.5, 4), { permutations: 5 });
    expect(result).toMatchObject({ statistic: "domain_classifier_auc", drifted: true, sampleSize: 200, pValue: null });
    expect(result.value).toBeGreaterThan(0.9);
  });
});
