import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseManifest, wordPieceSettings } from "../../models/manifest.js";
import { signatureOf } from "../../models/signature.js";

// The valid manifest of the cases the JSON Schema and the zod schema are checked on.
const linear = (
  JSON.parse(readFileSync(new URL("../fixtures/manifest-cases.json", import.meta.url), "utf8")) as {
    manifest: Record<string, unknown>;
  }
).manifest;

describe("manifest.json", () => {
  it("keeps what serving does not check (metrics, reference distributions) as written", () => {
    const manifest = parseManifest(JSON.stringify(linear));
    expect(manifest.reference).toEqual(linear.reference);
    expect(manifest.operating_point).toBeNull();
  });

  it("exposes the out-of-scope operating point", () => {
    const manifest = parseManifest(
      JSON.stringify({ ...linear, operating_point: { threshold: 0.761, statistic: "max calibrated probability" } }),
    );
    expect(manifest.operating_point?.threshold).toBe(0.761);
  });

  it("names every invalid field", () => {
    const broken = { ...linear, schema_version: 2, labels: ["a", "a"], files: { "../model.onnx": "xyz" } };
    expect(() => parseManifest(JSON.stringify(broken))).toThrow(
      /schema_version.*labels: labels must be unique.*files/s,
    );
    expect(() => parseManifest("{")).toThrow(/manifest\.json is not valid JSON/);
  });

  it("wants at least two labels for a classifier and none for an embedding model", () => {
    expect(() => parseManifest(JSON.stringify({ ...linear, labels: ["only"] }))).toThrow(
      /labels: a classifier lists at least two labels/,
    );
    const embedder = parseManifest(
      JSON.stringify({ ...linear, model: "embedder", task: "embedding", family: "encoder", labels: [] }),
    );
    expect(signatureOf(embedder)).toEqual({
      inputs: { input_ids: "int64", attention_mask: "int64" },
      outputs: ["embedding"],
    });
  });

  it("requires WordPiece settings where the family takes token ids", () => {
    const encoder = parseManifest(JSON.stringify({ ...linear, family: "encoder" }));
    expect(() => wordPieceSettings(encoder)).toThrow(/needs WordPiece settings.*tokenizer\.kind/);
    // Incomplete WordPiece settings are refused when the manifest is read.
    expect(() =>
      parseManifest(JSON.stringify({ ...linear, family: "encoder", tokenizer: { kind: "wordpiece", vocab: "vocab.txt" } })),
    ).toThrow(/tokenizer\.max_length: .*tokenizer\.special_ids/);
  });
});
