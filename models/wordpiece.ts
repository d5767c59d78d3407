import { readFile } from "node:fs/promises";

/**
 * BERT uncased WordPiece, the tokenizer of the encoder models: a port of
 * training/models/wordpiece.py, which is the reference (it reproduces the `tokenizers` pipeline
 * of all-MiniLM-L6-v2). The steps and their order follow that module's docstring exactly; the
 * test suite checks both produce identical ids on training/tests/fixtures/tokenization.json.
 *
 * Python works on code points, so everything here does too (`for..of`, never UTF-16 indexes).
 */

export const MAX_CHARS_PER_WORD = 100;

/** Rust's char::is_whitespace (Unicode White_Space), which the `tokenizers` library uses. */
const WHITESPACE = new Set(
  "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000",
);
const CJK_RANGES: readonly (readonly [number, number])[] = [
  [0x4e00, 0x9fff],
  [0x3400, 0x4dbf],
  [0x20000, 0x2a6df],
  [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f],
  [0x2b820, 0x2ceaf],
  [0xf900, 0xfaff],
  [0x2f800, 0x2fa1f],
];
const OTHER = /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}]$/u;
const NONSPACING_MARK = /^\p{Mn}$/u;
const UNICODE_PUNCTUATION = /^\p{P}$/u;

function isControl(c: string): boolean {
  return c !== "\t" && c !== "\n" && c !== "\r" && OTHER.test(c);
}

function isCjk(codePoint: number): boolean {
  return CJK_RANGES.some(([low, high]) => codePoint >= low && codePoint <= high);
}

function isAsciiPunctuation(codePoint: number): boolean {
  return (
    (codePoint >= 33 && codePoint <= 47) ||
    (codePoint >= 58 && codePoint <= 64) ||
    (codePoint >= 91 && codePoint <= 96) ||
    (codePoint >= 123 && codePoint <= 126)
  );
}

export function isPunctuation(c: string): boolean {
  const codePoint = c.codePointAt(0)!;
  if (codePoint < 0x80) return isAsciiPunctuation(codePoint);
  return UNICODE_PUNCTUATION.test(c);
}

/**
 * Steps 1–4: clean, space out CJK ideographs, strip accents, lowercase each character. Node's
 * ICU knows a newer Unicode version than Python 3.11 (14.0): characters assigned since then may
 * be treated differently, as the training README notes.
 */
export function normalize(text: string): string {
  let cleaned = "";
  for (const c of text) {
    const codePoint = c.codePointAt(0)!;
    if (codePoint === 0 || codePoint === 0xfffd || isControl(c)) continue;
    if (WHITESPACE.has(c)) cleaned += " ";
    else if (isCjk(codePoint)) cleaned += ` ${c} `;
    else cleaned += c;
  }
  let lowered = "";
  for (const c of cleaned.normalize("NFD")) {
    if (c.codePointAt(0)! >= 0x80 && NONSPACING_MARK.test(c)) continue;
    lowered += c.toLowerCase();
  }
  return lowered;
}

/** Step 5: split on spaces; every punctuation character becomes a word of its own. */
export function preTokenize(normalized: string): string[] {
  const words: string[] = [];
  for (const chunk of normalized.split(" ")) {
    let current = "";
    for (const c of chunk) {
      if (isPunctuation(c)) {
        if (current) words.push(current);
        current = "";
        words.push(c);
      } else {
        current += c;
      }
    }
    if (current) words.push(current);
  }
  return words;
}

export interface SpecialIds {
  readonly cls: number;
  readonly sep: number;
  readonly pad: number;
  readonly unk: number;
}

export class WordPieceTokenizer {
  readonly special: SpecialIds;
  /** Longest vocabulary entry in code points: no prefix longer than this can match. */
  private readonly longestPiece: number;

  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    readonly maxLength: number,
  ) {
    const id = (token: string): number => {
      const found = vocab.get(token);
      if (found === undefined) throw new Error(`the WordPiece vocabulary has no ${token} token`);
      return found;
    };
    this.special = { cls: id("[CLS]"), sep: id("[SEP]"), pad: id("[PAD]"), unk: id("[UNK]") };
    this.longestPiece = Math.max(...[...vocab.keys()].map((token) => [...token].length));
  }

  /** The text of `vocab.txt`: one token per line, the line number is its id. */
  static fromVocabulary(vocabText: string, maxLength: number): WordPieceTokenizer {
    const tokens = vocabText.split("\n");
    if (tokens.at(-1) === "") tokens.pop();
    return new WordPieceTokenizer(new Map(tokens.map((token, index) => [token, index])), maxLength);
  }

  static async fromVocabFile(vocabPath: string, maxLength: number): Promise<WordPieceTokenizer> {
    return WordPieceTokenizer.fromVocabulary(await readFile(vocabPath, "utf8"), maxLength);
  }

  /** Step 6: greedy longest-match pieces, "##" on continuations; [UNK] for the whole word if any remainder matches nothing. */
  private wordPieces(word: string): number[] {
    const chars = [...word];
    if (chars.length > MAX_CHARS_PER_WORD) return [this.special.unk];
    const pieces: number[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = Math.min(chars.length, start + this.longestPiece);
      let found: number | undefined;
      for (; end > start; end--) {
        const text = chars.slice(start, end).join("");
        found = this.vocab.get(start === 0 ? text : `##${text}`);
        if (found !== undefined) break;
      }
      if (found === undefined) return [this.special.unk];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  /** Step 7: the first maxLength - 2 pieces, wrapped in [CLS] ... [SEP]. */
  encode(text: string): number[] {
    const ids: number[] = [this.special.cls];
    const limit = this.maxLength - 1;
    for (const word of preTokenize(normalize(text))) {
      for (const id of this.wordPieces(word)) {
        if (ids.length === limit) break;
        ids.push(id);
      }
      if (ids.length === limit) break;
    }
    ids.push(this.special.sep);
    return ids;
  }
}
