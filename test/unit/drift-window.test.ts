import { describe, expect, it } from "vitest";
import { featureReferences, type FeatureReference } from "../../drift/reference.js";
import { binIndex, binRepresentatives, TumblingWindow } from "../../drift/window.js";
import { intentReference } from "../support/drift-stream.js";

const references: FeatureReference[] = [
  { kind: "categorical", feature: "label", shares: { a: 0.5, b: 0.5 } },
  { kind: "histogram", feature: "confidence", edges: [0, 0.5, 1], openEnded: false, counts: [1, 9] },
  { kind: "scalar", feature: "active_features", mean: 10, std: 2 },
  { kind: "vector", feature: "embedding", mean: [1, 0], std: [0.1, 0.1] },
];

describe("histogram bins as training/reference.py counts them", () => {
  it("[edges[i], edges[i+1]), the right edge and beyond in the last bin, below the first in the first", () => {
    const edges = [0, 0.5, 1];
    expect([-1, 0, 0.49, 0.5, 0.99, 1, 7].map((v) => binIndex(v, edges, false))).toEqual([0, 0, 0, 1, 1, 1, 1]);
    const open = [0, 16, 32];
    expect([0, 15, 16, 31, 32, 5000].map((v) => binIndex(v, open, true))).toEqual([0, 0, 1, 1, 2, 2]);
    expect(binRepresentatives(open, true)).toEqual([8, 24, 40]);
    expect(binRepresentatives(edges, false)).toEqual([0.25, 0.75]);
  });
});

describe("count windows", () => {
  it("close after size records with what the tests need, then start empty", () => {
    const window = new TumblingWindow({ kind: "count", size: 3 }, references);
    expect(window.add({ label: "a", confidence: 0.9, active_features: 9, embedding: [1, 0] }, 1000)).toBeNull();
    // A record without an embedding still counts, for the features it has.
    expect(window.add({ label: "c", confidence: 0.2, active_features: 11 }, 3000)).toBeNull();
    const closed = window.add({ label: "a", confidence: 1, active_features: 13, embedding: [0.5, 0.5] }, 2000);
    expect(closed).toEqual({
      index: 0,
      start: 1000,
      end: 3000,
      count: 3,
      features: {
        label: { kind: "categorical", counts: { a: 2, c: 1 } },
        confidence: { kind: "histogram", counts: [1, 2] },
        active_features: { kind: "scalar", count: 3, sum: 33 },
        embedding: { kind: "vector", count: 2, sum: [1.5, 0.5] },
      },
    });
    expect(window.size).toBe(0);
    const next = window.add({ label: "b" }, 4000);
    expect(next).toBeNull();
    expect(window.toJSON().index).toBe(1);
  });

  it("refuse a value of the wrong kind, naming the feature", () => {
    const window = new TumblingWindow({ kind: "count", size: 3 }, references);
    expect(() => window.add({ confidence: "high" }, 0)).toThrow(/confidence/);
    expect(() => window.add({ embedding: [1, 2, 3] }, 0)).toThrow(/embedding/);
    expect(() => new TumblingWindow({ kind: "count", size: 0 }, references)).toThrow(/positive/);
  });
});

describe("time windows", () => {
  const minute = 60_000;
  it("are aligned to multiples of the duration; a record past the end closes the window; late records count in the open one", () => {
    const window = new TumblingWindow({ kind: "time", durationMs: minute }, references);
    expect(window.add({ label: "a" }, 10 * minute + 5)).toBeNull();
    expect(window.add({ label: "b" }, 10 * minute - 1)).toBeNull(); // late: counted in the open window
    const closed = window.add({ label: "b" }, 12 * minute + 7);
    expect(closed).toMatchObject({ index: 0, start: 10 * minute, end: 11 * minute, count: 2 });
    expect(closed!.features["label"]).toEqual({ kind: "categorical", counts: { a: 1, b: 1 } });
    // The empty minute between is never a window; the open one starts at 12'.
    expect(window.toJSON()).toMatchObject({ start: 12 * minute, end: 13 * minute, count: 1 });
  });

  it("close on advance() once their end has passed, so a quiet stream is still tested", () => {
    const window = new TumblingWindow({ kind: "time", durationMs: minute }, references);
    expect(window.advance(5 * minute)).toBeNull(); // nothing open
    window.add({ label: "a" }, 2 * minute + 1);
    expect(window.advance(3 * minute - 1)).toBeNull();
    expect(window.advance(3 * minute)).toMatchObject({ start: 2 * minute, end: 3 * minute, count: 1 });
    expect(window.advance(9 * minute)).toBeNull();
  });
});

describe("window state through JSON", () => {
  it("resumes the open window exactly, and keeps closing where the uninterrupted one would", () => {
    const spec = { kind: "count", size: 4 } as const;
    const straight = new TumblingWindow(spec, references);
    const first = new TumblingWindow(spec, references);
    const records = [
      { label: "a", confidence: 0.7, active_features: 8, embedding: [1, 0.1] },
      { label: "b", confidence: 0.3, active_features: 12 },
      { label: "z", confidence: 0.95, active_features: 10, embedding: [0.9, 0] },
    ];
    records.forEach((r, i) => {
      straight.add(r, i);
      first.add(r, i);
    });
    const stored = JSON.parse(JSON.stringify(first.toJSON())) as unknown;
    const resumed = TumblingWindow.restore(spec, references, stored);
    expect(resumed.toJSON()).toEqual(first.toJSON());
    const last = { label: "a", confidence: 0.1, active_features: 9, embedding: [1, 0] };
    expect(resumed.add(last, 9)).toEqual(straight.add(last, 9));
  });

  it("starts the open window empty when the spec or the references changed, keeping the numbering", () => {
    const window = new TumblingWindow({ kind: "count", size: 2 }, references);
    window.add({ label: "a" }, 0);
    window.add({ label: "a" }, 1);
    window.add({ label: "b" }, 2);
    const stored = JSON.parse(JSON.stringify(window.toJSON())) as unknown;
    const resized = TumblingWindow.restore({ kind: "count", size: 5 }, references, stored);
    expect(resized.toJSON()).toMatchObject({ index: 1, count: 0 });
    const rebinned = references.map((r) =>
      r.kind === "histogram" ? { ...r, edges: [0, 0.3, 0.6, 1], counts: [1, 1, 1] } : r,
    );
    expect(TumblingWindow.restore({ kind: "count", size: 2 }, rebinned, stored).toJSON()).toMatchObject({
      index: 1,
      count: 0,
    });
    expect(() => TumblingWindow.restore({ kind: "count", size: 2 }, references, { version: 2 })).toThrow(/invalid/);
  });
});

describe("the manifest's reference as watched features", () => {
  it("reads predicted labels, confidence, length, language and the feature summaries", () => {
    const { features, skipped } = featureReferences(intentReference());
    expect(skipped).toEqual([]);
    expect(features.map((f) => `${f.feature}:${f.kind}`)).toEqual([
      "label:categorical",
      "language:categorical",
      "confidence:histogram",
      "length:histogram",
      "active_features:scalar",
      "embedding:vector",
    ]);
  });

  it("leaves out a malformed part with its reason and watches the rest; no reference, nothing to watch", () => {
    const reference = intentReference();
    reference["confidence_histogram"] = { edges: [0, 0.5, 1], open_ended: false, counts: [3] };
    const { features, skipped } = featureReferences(reference);
    expect(features.map((f) => f.feature)).not.toContain("confidence");
    expect(skipped).toEqual([expect.stringMatching(/^confidence_histogram: .*one count per bin/)]);
    expect(featureReferences(null)).toEqual({ features: [], skipped: [] });
  });
});
