import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { chiSquareIsf, chiSquareSf, kolmogorovSf, ksTwoSamplePValue } from "../../drift/distributions.js";
import {
  chiSquare,
  embeddingMeanShift,
  jensenShannon,
  kolmogorovSmirnov,
  kolmogorovSmirnovBinned,
  ksStatistic,
  meanShift,
  UNSEEN_SHARE,
  wassersteinBinned,
  wassersteinNormed,
  type Outcome,
  type StatisticResult,
} from "../../drift/statistics.js";
import { binIndex, binRepresentatives } from "../../drift/window.js";

/** Figures from scipy on fixed samples: test/fixtures/drift-scipy.py wrote them (run it to refresh). */
const fixture = JSON.parse(readFileSync(new URL("../fixtures/drift-scipy.json", import.meta.url), "utf8")) as {
  scipy: string;
  ks_raw: {
    name: string;
    a: number[];
    b?: number[];
    b_golden?: { n: number; shift: number };
    statistic: number;
    pvalue: number;
  }[];
  kstwo_sf: { n: number; x: number; sf: number }[];
  binned: {
    name: string;
    edges: number[];
    open_ended: boolean;
    reference_counts: number[];
    values: number[];
    window_counts: number[];
    ks_statistic: number;
    ks_pvalue: number;
    wasserstein_normed: number;
  }[];
  wasserstein_raw: { name: string; a: number[]; b: number[]; normed: number }[];
  categorical: {
    reference_shares: Record<string, number>;
    unseen_share: number;
    cases: {
      name: string;
      counts: Record<string, number>;
      chi_square: number;
      pvalue: number;
      jensen_shannon: number;
    }[];
  };
  chi2_sf: { x: number; df: number; sf: number }[];
  chi2_isf: { q: number; df: number; x: number }[];
  embedding: {
    mean: number[];
    std: number[];
    cases: {
      name: string;
      sum: number[];
      count: number;
      cosine_distance: number;
      pvalue: number;
      "threshold_at_0.05": number;
    }[];
  };
  scalar: { mean: number; std: number; cases: { name: string; values: number[]; effect: number; pvalue: number }[] };
};

const GOLDEN = 0.6180339887498949;
const golden = (n: number, shift: number): number[] =>
  Array.from({ length: n }, (_, i) => (((i + 1) * GOLDEN) % 1) + shift);

/** Relative closeness, with an absolute floor for figures near zero. */
function close(actual: number, expected: number, relative: number, absolute = 1e-300): void {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(
    Math.max(relative * Math.abs(expected), absolute),
  );
}

function tested(outcome: Outcome): StatisticResult {
  expect(outcome.kind).toBe("tested");
  return outcome as StatisticResult;
}

describe("distributions against scipy " + fixture.scipy, () => {
  it("chi2.sf and chi2.isf", () => {
    for (const { x, df, sf } of fixture.chi2_sf) close(chiSquareSf(x, df), sf, 1e-10);
    for (const { q, df, x } of fixture.chi2_isf) close(chiSquareIsf(q, df), x, 1e-9);
  });

  it("kstwo.sf on every branch (Ruben–Gambino, 2·smirnov, Durbin, Pomeranz's region, Pelz–Good)", () => {
    for (const { n, x, sf } of fixture.kstwo_sf) {
      // Durbin in Pomeranz's region and Pelz–Good are exact or asymptotic to ~1e-10 absolute.
      close(kolmogorovSf(n, x), sf, 1e-8, 1e-10);
    }
  });
});

describe("two-sample Kolmogorov–Smirnov as scipy.stats.ks_2samp(method='auto')", () => {
  it.each(fixture.ks_raw.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const b = c.b ?? golden(c.b_golden!.n, c.b_golden!.shift);
    const result = tested(kolmogorovSmirnov(c.a, b));
    close(result.value, c.statistic, 1e-12);
    close(result.pValue!, c.pvalue, 1e-8, 1e-14);
    expect(result.drifted).toBe(c.pvalue < 0.05);
    // The critical value is where p crosses α: drift ⇔ value > threshold.
    expect(result.value > result.threshold).toBe(result.drifted);
  });

  it("an exact p-value rounds D to the lattice as scipy does and reads 1 at D = 0", () => {
    expect(ksTwoSamplePValue(0, 30, 40)).toBe(1);
    expect(ksStatistic([1, 1, 1], [1, 1])).toBe(0);
  });

  it.each(fixture.binned.map((c) => [c.name, c] as const))("against a histogram reference: %s", (_, c) => {
    const window = new Array<number>(c.reference_counts.length).fill(0);
    for (const value of c.values) window[binIndex(value, c.edges, c.open_ended)]!++;
    expect(window).toEqual(c.window_counts);
    const ks = tested(kolmogorovSmirnovBinned({ reference: c.reference_counts, window }));
    close(ks.value, c.ks_statistic, 1e-12);
    close(ks.pValue!, c.ks_pvalue, 1e-8, 1e-14);
    const w = tested(
      wassersteinBinned({ reference: c.reference_counts, window }, binRepresentatives(c.edges, c.open_ended)),
    );
    close(w.value, c.wasserstein_normed, 1e-10);
    expect(w.drifted).toBe(c.wasserstein_normed > 0.1);
  });
});

describe("all-identical values against a histogram reference", () => {
  const reps = [0.25, 0.75];
  it("the same single bin on both sides is no drift; another single bin is", () => {
    const same = tested(kolmogorovSmirnovBinned({ reference: [0, 40], window: [0, 200] }));
    expect([same.value, same.pValue, same.drifted]).toEqual([0, 1, false]);
    expect(tested(wassersteinBinned({ reference: [0, 40], window: [0, 200] }, reps)).value).toBe(0);
    const other = tested(kolmogorovSmirnovBinned({ reference: [0, 40], window: [200, 0] }));
    expect(other.value).toBe(1);
    expect(other.drifted).toBe(true);
    // W₁ = 0.5 over the 0.001 floor of a zero-spread reference.
    expect(tested(wassersteinBinned({ reference: [0, 40], window: [200, 0] }, reps)).value).toBeCloseTo(500, 9);
  });
});

describe("normalised Wasserstein-1 (Evidently's wasserstein_distance_norm)", () => {
  it.each(fixture.wasserstein_raw.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const result = tested(wassersteinNormed(c.a, c.b));
    close(result.value, c.normed, 1e-10);
    expect(result.drifted).toBe(c.normed > 0.1);
    expect(result.pValue).toBeNull();
  });

  it("identical values on both sides are no distance; the std floor keeps a constant reference finite", () => {
    expect(tested(wassersteinNormed([3, 3, 3], [3, 3])).value).toBe(0);
    // W₁ = 1, std 0 → floored at 0.001.
    expect(tested(wassersteinNormed([3, 3, 3], [4, 4])).value).toBeCloseTo(1000, 9);
  });
});

describe("categorical: chi-square and Jensen–Shannon against the reference shares", () => {
  const reference = fixture.categorical.reference_shares;
  it("pools unseen categories with the share the fixture used", () => {
    expect(UNSEEN_SHARE).toBe(fixture.categorical.unseen_share);
  });

  it.each(fixture.categorical.cases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    const chi = tested(chiSquare({ reference, counts: c.counts }));
    close(chi.value, c.chi_square, 1e-10);
    close(chi.pValue!, c.pvalue, 1e-8, 1e-14);
    expect(chi.drifted).toBe(c.pvalue < 0.05);
    expect(chi.value > chi.threshold).toBe(chi.drifted);
    const js = tested(jensenShannon({ reference, counts: c.counts }));
    close(js.value, c.jensen_shannon, 1e-10);
  });

  it("one stray unseen category does not alarm; a few percent of one does", () => {
    const shares = { en: 0.9, es: 0.1 };
    expect(tested(chiSquare({ reference: shares, counts: { en: 450, es: 49, de: 1 } })).drifted).toBe(false);
    expect(tested(chiSquare({ reference: shares, counts: { en: 440, es: 45, de: 15 } })).drifted).toBe(true);
  });

  it("an empty window is insufficient, not a pass", () => {
    expect(chiSquare({ reference, counts: {} }).kind).toBe("insufficient");
    expect(jensenShannon({ reference, counts: {} }).kind).toBe("insufficient");
    expect(kolmogorovSmirnovBinned({ reference: [1, 2], window: [0, 0] }).kind).toBe("insufficient");
    expect(kolmogorovSmirnov([1, 2], []).kind).toBe("insufficient");
    expect(wassersteinBinned({ reference: [1, 2], window: [0, 0] }, [0.5, 1.5]).kind).toBe("insufficient");
    expect(meanShift({ mean: 1, std: 1 }, { count: 0, sum: 0 }).kind).toBe("insufficient");
    expect(embeddingMeanShift({ mean: [1, 0] }, { count: 0, sum: [0, 0] }).kind).toBe("insufficient");
  });

  it("a one-category reference (English only) still tests: any other language is the unseen cell", () => {
    const english = { en: 1 };
    expect(tested(chiSquare({ reference: english, counts: { en: 500 } })).drifted).toBe(false);
    expect(tested(chiSquare({ reference: english, counts: { en: 300, es: 200 } })).drifted).toBe(true);
    expect(chiSquare({ reference: english, counts: { en: 500 } }).kind).toBe("tested");
  });
});

describe("embedding mean shift and scalar mean shift", () => {
  const { mean, std } = fixture.embedding;
  it.each(fixture.embedding.cases.map((c) => [c.name, c] as const))("embedding: %s", (_, c) => {
    const result = tested(embeddingMeanShift({ mean, std }, { count: c.count, sum: c.sum }));
    close(result.value, c.cosine_distance, 1e-7);
    close(result.pValue!, c.pvalue, 1e-6, 1e-14);
    close(result.threshold, c["threshold_at_0.05"], 1e-9);
    expect(result.drifted).toBe(c.pvalue < 0.05);
  });

  it("embedding: without a std the fixed cosine threshold applies; above 1,000 rows the 1,000-row distance", () => {
    const noStd = tested(embeddingMeanShift({ mean }, { count: 10, sum: mean.map((m) => m * 10) }));
    expect(noStd.value).toBeCloseTo(0, 12);
    expect(noStd.threshold).toBe(0.05);
    const big = tested(embeddingMeanShift({ mean, std }, { count: 5000, sum: mean.map((m) => m * 5000) }));
    expect(big.pValue).toBeNull();
    const at1000 = tested(embeddingMeanShift({ mean, std }, { count: 1000, sum: mean.map((m) => m * 1000) }));
    close(big.threshold, at1000.threshold, 1e-12);
    expect(() => embeddingMeanShift({ mean }, { count: 1, sum: [1] })).toThrow(/dimensions/);
  });

  it.each(fixture.scalar.cases.map((c) => [c.name, c] as const))("active_features: %s", (_, c) => {
    const total = c.values.reduce((a, b) => a + b, 0);
    const result = tested(meanShift(fixture.scalar, { count: c.values.length, sum: total }));
    close(result.value, c.effect, 1e-10);
    if (c.values.length <= 1000) {
      close(result.pValue!, c.pvalue, 1e-8, 1e-14);
      expect(result.drifted).toBe(c.pvalue < 0.05);
    } else {
      // Above 1,000 rows the effect must pass 0.1 of a std, however small p is.
      expect(c.pvalue).toBeLessThan(0.05);
      expect(result.drifted).toBe(false);
    }
  });
});
