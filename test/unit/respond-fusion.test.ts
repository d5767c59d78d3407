import { describe, expect, it } from "vitest";
import { reciprocalRankFusion, RRF_K } from "../../processors/respond/fusion.js";

describe("reciprocal rank fusion", () => {
  it("scores each id 1/(k + rank) per ranking and sums over rankings", () => {
    const fused = reciprocalRankFusion([
      ["a", "b", "c"],
      ["b", "a", "d"],
    ]);
    const score = (...ranks: number[]) => ranks.reduce((sum, r) => sum + 1 / (RRF_K + r), 0);
    expect(fused.map((f) => f.id)).toEqual(["a", "b", "c", "d"]);
    expect(fused[0]!.score).toBeCloseTo(score(1, 2), 12);
    expect(fused[1]!.score).toBeCloseTo(score(2, 1), 12);
    expect(fused[2]).toEqual({ id: "c", score: score(3), ranks: [3, null] });
    expect(fused[3]).toEqual({ id: "d", score: score(3), ranks: [null, 3] });
  });

  it("lifts an id both rankings hold above one only a single ranking puts first", () => {
    const fused = reciprocalRankFusion([
      ["solo", "shared"],
      ["other", "shared"],
    ]);
    expect(fused[0]!.id).toBe("shared");
    expect(fused[0]!.ranks).toEqual([2, 2]);
  });

  it("breaks score ties by the better single rank, then by id, so the order is stable", () => {
    expect(
      reciprocalRankFusion([
        ["x", "y"],
        ["y", "x"],
      ]).map((f) => f.id),
    ).toEqual(["x", "y"]);
    expect(reciprocalRankFusion([["b"], ["a"]]).map((f) => f.id)).toEqual(["a", "b"]);
  });

  it("counts an id repeated within one ranking once, at its best rank", () => {
    const [only] = reciprocalRankFusion([["a", "a"]]);
    expect(only).toEqual({ id: "a", score: 1 / (RRF_K + 1), ranks: [1] });
  });

  it("passes a single ranking through in order, and fuses nothing into nothing", () => {
    expect(reciprocalRankFusion([["q", "p", "r"]]).map((f) => f.id)).toEqual(["q", "p", "r"]);
    expect(reciprocalRankFusion([])).toEqual([]);
    expect(reciprocalRankFusion([[], []])).toEqual([]);
  });

  it("lets k weigh the first ranks: a small k favours a single first place", () => {
    const rankings = [
      ["first", "a", "second"],
      ["x", "b", "second"],
    ];
    expect(reciprocalRankFusion(rankings, 60)[0]!.id).toBe("second");
    expect(reciprocalRankFusion(rankings, 0)[0]!.id).toBe("first");
  });
});
