import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { WordPieceTokenizer, normalize, preTokenize } from "../../models/wordpiece.js";

interface Fixture {
  readonly vocab_sha256: string;
  readonly max_length: number;
  readonly special_ids: { cls: number; sep: number; pad: number; unk: number };
  readonly cases: readonly { text: string; input_ids: number[] }[];
}

const fixture = JSON.parse(
  readFileSync(path.join(REPO_ROOT, "training/tests/fixtures/tokenization.json"), "utf8"),
) as Fixture;

/** The MiniLM vocabulary ships in the pinned weights package (training/requirements-weights.txt); Python knows where. */
function vocabPath(): string {
  const script = "from training.models.encoder import weights_dir; print(weights_dir() / 'vocab.txt')";
  return execFileSync("python3", ["-c", script], { cwd: REPO_ROOT, encoding: "utf8" }).trim();
}

describe("WordPiece tokenizer", () => {
  let tokenizer: WordPieceTokenizer;
  beforeAll(async () => {
    const vocab = vocabPath();
    expect(createHash("sha256").update(readFileSync(vocab)).digest("hex")).toBe(fixture.vocab_sha256);
    tokenizer = await WordPieceTokenizer.fromVocabFile(vocab, fixture.max_length);
  });

  it("gives the Python reference's ids on all 1,000 fixture texts", () => {
    expect(fixture.cases).toHaveLength(1000);
    const mismatches = fixture.cases.filter(
      (c) => JSON.stringify(tokenizer.encode(c.text)) !== JSON.stringify(c.input_ids),
    );
    expect(mismatches.map((c) => c.text)).toEqual([]);
  });

  it("reads the special ids from the vocabulary", () => {
    expect(tokenizer.special).toEqual(fixture.special_ids);
  });

  it("normalizes like BERT uncased: controls dropped, accents stripped, CJK spaced, full lowercase", () => {
    expect(normalize("Ça\u200bva\u0000 Straße\tİ")).toBe("cava straße i");
    expect(normalize("价格")).toBe(" 价  格 ");
  });

  it("splits punctuation into words of their own", () => {
    expect(preTokenize("don't stop!!  now¿")).toEqual(["don", "'", "t", "stop", "!", "!", "now", "¿"]);
  });

  it("truncates to max_length pieces including [CLS] and [SEP]", () => {
    const ids = tokenizer.encode("refund ".repeat(500));
    expect(ids).toHaveLength(fixture.max_length);
    expect(ids[0]).toBe(fixture.special_ids.cls);
    expect(ids.at(-1)).toBe(fixture.special_ids.sep);
  });

  it("makes a word of over 100 characters, or one with an unmatched remainder, a single [UNK]", () => {
    const { cls, sep, unk } = fixture.special_ids;
    expect(tokenizer.encode("a".repeat(101))).toEqual([cls, unk, sep]);
    expect(tokenizer.encode("\u{1F9FF}")).toEqual([cls, unk, sep]);
  });
});
