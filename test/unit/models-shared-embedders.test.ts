import { describe, expect, it } from "vitest";
import { EmbeddingMemo, SharedEmbedders, type EmbeddingModel } from "../../models/shared-embedders.js";

/** An embedder whose rows are [text length, call number]: which run answered a text shows in its row. */
function countingEmbedder(): EmbeddingModel & { runs: string[][]; released: number } {
  const model = {
    name: "embedder",
    version: "v1",
    runs: [] as string[][],
    released: 0,
    async embed(texts: readonly string[]) {
      model.runs.push([...texts]);
      const run = model.runs.length;
      return texts.map((text) => Float32Array.of(text.length, run));
    },
    async release() {
      model.released++;
    },
  };
  return model;
}

describe("EmbeddingMemo", () => {
  it("embeds each text once: a second caller gets the first caller's result, even while it is still running", async () => {
    const model = countingEmbedder();
    const memo = new EmbeddingMemo((texts) => model.embed(texts));
    const [first, second] = await Promise.all([memo.embed(["a", "bb"]), memo.embed(["bb", "ccc"])]);
    expect(model.runs).toEqual([["a", "bb"], ["ccc"]]);
    expect(first.map((row) => Array.from(row))).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(second.map((row) => Array.from(row))).toEqual([
      [2, 1],
      [3, 2],
    ]);
    expect([memo.hits, memo.misses]).toEqual([1, 3]);
  });

  it("runs a text repeated within one call once and answers every position", async () => {
    const model = countingEmbedder();
    const memo = new EmbeddingMemo((texts) => model.embed(texts));
    const rows = await memo.embed(["x", "x", "yy"]);
    expect(model.runs).toEqual([["x", "yy"]]);
    expect(rows.map((row) => row[0])).toEqual([1, 1, 2]);
  });

  it("forgets the least recently used text beyond its capacity", async () => {
    const model = countingEmbedder();
    const memo = new EmbeddingMemo((texts) => model.embed(texts), 2);
    await memo.embed(["a"]);
    await memo.embed(["b"]);
    await memo.embed(["a"]); // a is now the most recent
    await memo.embed(["c"]); // b goes
    await memo.embed(["a", "b"]);
    expect(model.runs).toEqual([["a"], ["b"], ["c"], ["b"]]);
  });

  it("does not keep a failed run: the next call tries again", async () => {
    let fail = true;
    const memo = new EmbeddingMemo(async (texts) => {
      if (fail) throw new Error("worker gone");
      return texts.map(() => Float32Array.of(1));
    });
    await expect(memo.embed(["a"])).rejects.toThrow("worker gone");
    fail = false;
    await expect(memo.embed(["a"])).resolves.toHaveLength(1);
  });
});

describe("SharedEmbedders", () => {
  it("loads a directory once for all holders and releases it when the last one lets go", async () => {
    const shared = new SharedEmbedders();
    const model = countingEmbedder();
    let loads = 0;
    const load = async () => {
      loads++;
      return model;
    };
    const [one, two] = await Promise.all([shared.hold("/m/embedder/v1", null, load), shared.hold("/m/embedder/v1", null, load)]);
    expect(loads).toBe(1);
    await one.embed(["same text"]);
    await two.embed(["same text"]);
    expect(model.runs).toHaveLength(1);

    await one.release();
    await one.release(); // a second release of the same hold changes nothing
    expect(model.released).toBe(0);
    await expect(one.embed(["x"])).rejects.toThrow("released");
    await two.release();
    expect(model.released).toBe(1);

    await shared.hold("/m/embedder/v1", null, load);
    expect(loads).toBe(2);
  });

  it("keeps versions of different directories apart, and forgets a load that failed", async () => {
    const shared = new SharedEmbedders();
    await expect(
      shared.hold("/m/embedder/broken", null, async () => {
        throw new Error("checksum mismatch");
      }),
    ).rejects.toThrow("checksum mismatch");
    const model = countingEmbedder();
    const hold = await shared.hold("/m/embedder/broken", null, async () => model);
    await hold.embed(["a"]);
    expect(model.runs).toEqual([["a"]]);
    await expect(hold.predict(["a"])).rejects.toThrow("no labels to predict");
  });
});
