import { describe, expect, it } from "vitest";
import { coalescing } from "../../streams/coalescing.js";

/** A batch call that doubles numbers, records each batch it ran, and refuses negative inputs. */
function doubler(ms = 5) {
  const batches: number[][] = [];
  const call = async (inputs: readonly number[]) => {
    batches.push([...inputs]);
    await new Promise((resolve) => setTimeout(resolve, ms));
    if (inputs.some((x) => x < 0)) throw new Error(`negative input in ${inputs.join(",")}`);
    return inputs.map((x) => x * 2);
  };
  return { call, batches };
}

describe("coalescing batch calls", () => {
  it("runs calls made together as one batch and gives each caller its own rows", async () => {
    const { call, batches } = doubler();
    const batched = coalescing(call, 32);
    const results = await Promise.all([batched([1]), batched([2, 3]), batched([4])]);
    expect(results).toEqual([[2], [4, 6], [8]]);
    expect(batches).toEqual([[1, 2, 3, 4]]);
  });

  it("runs one batch at a time; calls arriving meanwhile form the next batch", async () => {
    const { call, batches } = doubler(20);
    const batched = coalescing(call, 32);
    const first = batched([1]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const later = [batched([2]), batched([3])];
    await Promise.all([first, ...later]);
    expect(batches).toEqual([[1], [2, 3]]);
  });

  it("keeps a coalesced batch within maxRows, but runs a larger single call whole", async () => {
    const { call, batches } = doubler();
    const batched = coalescing(call, 3);
    await Promise.all([batched([1, 2]), batched([3, 4]), batched([5, 6, 7, 8])]);
    expect(batches).toEqual([[1, 2], [3, 4], [5, 6, 7, 8]]);
  });

  it("fails only the caller whose input the model refuses", async () => {
    const { call, batches } = doubler();
    const batched = coalescing(call, 32);
    const results = await Promise.allSettled([batched([1]), batched([-1]), batched([2])]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(results[0]).toMatchObject({ value: [2] });
    expect(results[2]).toMatchObject({ value: [4] });
    expect(batches).toEqual([[1, -1, 2], [1], [-1], [2]]);
  });

  it("refuses a batch that returns the wrong number of outputs", async () => {
    const batched = coalescing(async (inputs: readonly number[]) => inputs.slice(1), 32);
    await expect(batched([1, 2])).rejects.toThrow(/2 inputs returned 1 outputs/);
  });
});
