import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { UnigramTokenizer, graphemes } from "../../models/unigram.js";

interface Fixture {
  readonly vocab_sha256: string;
  readonly max_length: number;
  readonly prefix: string;
  readonly grapheme_cases: readonly string[];
  readonly input_ids: readonly number[][];
}

const fixture = JSON.parse(readFileSync(path.join(REPO_ROOT, "training/tests/fixtures/unigram.json"), "utf8")) as Fixture;
const wordPieceCases = (
  JSON.parse(readFileSync(path.join(REPO_ROOT, "training/tests/fixtures/tokenization.json"), "utf8")) as {
    cases: { text: string }[];
  }
).cases.map((c) => c.text);

/** unigram.json is built from the two pinned packages (training/requirements-weights.txt); Python writes it. */
function writeVocabulary(target: string): void {
  const script = [
    "import sys",
    "from pathlib import Path",
    "from training.models import multilingual as m",
    "model = m.read_q4(m.weights_path())",
    "Path(sys.argv[1]).write_bytes(m.vocab_bytes(m.build_vocab(model, m.reference_tokenizer_json())))",
  ].join("\n");
  execFileSync("python3", ["-c", script, target], { cwd: REPO_ROOT, stdio: "inherit" });
}

describe("Unigram tokenizer (multilingual encoder)", () => {
  const scratch = mkdtempSync(path.join(os.tmpdir(), "switchboard-unigram-"));
  let tokenizer: UnigramTokenizer;
  beforeAll(async () => {
    const vocab = path.join(scratch, "unigram.json");
    writeVocabulary(vocab);
    expect(createHash("sha256").update(readFileSync(vocab)).digest("hex")).toBe(fixture.vocab_sha256);
    tokenizer = await UnigramTokenizer.fromFile(vocab, fixture.max_length, fixture.prefix);
  }, 180_000);
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("gives the Python reference's ids on the 1,000 synthetic texts and the grapheme cases", () => {
    const texts = [...wordPieceCases, ...fixture.grapheme_cases];
    expect(texts).toHaveLength(fixture.input_ids.length);
    const mismatches = texts.filter((text, i) => JSON.stringify(tokenizer.encode(text)) !== JSON.stringify(fixture.input_ids[i]));
    expect(mismatches).toEqual([]);
  });

  it("normalizes per grapheme: a folded letter takes its mark along, CR LF and spaces collapse", () => {
    expect(tokenizer.normalize("\uff45\u0301")).toBe("\u2581e");
    expect(tokenizer.normalize("e\u0301")).toBe("\u2581\u00e9");
    expect(tokenizer.normalize("a\r\n  b")).toBe("\u2581a\u2581b");
    expect(graphemes("a\r\nb\u0301\n\u0301").map((g) => g.join(""))).toEqual(["a", "\r\n", "b\u0301", "\n", "\u0301"]);
  });

  it("wraps in <s> … </s> and truncates to max_length", () => {
    const ids = tokenizer.encode("Wo ist meine Bestellung? ".repeat(100));
    expect(ids).toHaveLength(fixture.max_length);
    expect([ids[0], ids.at(-1)]).toEqual([0, 2]);
  });
});
