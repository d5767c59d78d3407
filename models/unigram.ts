import { readFile } from "node:fs/promises";

/**
 * SentencePiece Unigram, the tokenizer of the multilingual encoder (multilingual-e5-small): a
 * port of `UnigramTokenizer` in training/models/multilingual.py, which is the reference (it
 * reproduces the model's tokenizer.json as the `tokenizers` library runs it). The steps follow
 * that class's docstring; the test suite checks both give identical ids on
 * training/tests/fixtures/unigram.json.
 *
 * Python works on code points, so this does too (`for..of`, slices at code-point offsets).
 */

const META = "\u2581";
const MARK = /^\p{M}$/u;
const CONTROL = /^[\p{Cc}\p{Zl}\p{Zp}]$/u;
const FORMAT = /^\p{Cf}$/u;

/** Grapheme_Cluster_Break Extend, SpacingMark or ZWJ, approximated as Python does. */
function isExtend(c: string): boolean {
  const codePoint = c.codePointAt(0)!;
  return MARK.test(c) || codePoint === 0x200c || codePoint === 0x200d || (codePoint >= 0x1f3fb && codePoint <= 0x1f3ff);
}

function isControl(c: string): boolean {
  const codePoint = c.codePointAt(0)!;
  return CONTROL.test(c) || (FORMAT.test(c) && codePoint !== 0x200c && codePoint !== 0x200d);
}

/** Extended grapheme clusters, simplified as `graphemes` in Python: CR LF; a control alone; else a character with its marks. */
export function graphemes(text: string): string[][] {
  const chars = [...text];
  const out: string[][] = [];
  let i = 0;
  while (i < chars.length) {
    let j = i + 1;
    if (chars[i] === "\r" && chars[j] === "\n") j++;
    else if (!isControl(chars[i]!)) while (j < chars.length && isExtend(chars[j]!)) j++;
    out.push(chars.slice(i, j));
    i = j;
  }
  return out;
}

export interface UnigramVocabulary {
  readonly pieces: readonly string[];
  readonly scores: readonly number[];
  readonly special_ids: { readonly bos: number; readonly eos: number; readonly pad: number; readonly unk: number };
  readonly normalization: Readonly<Record<string, string>>;
}

export class UnigramTokenizer {
  readonly special: { readonly bos: number; readonly eos: number; readonly pad: number; readonly unk: number };
  private readonly ids = new Map<string, number>();
  private readonly scores: readonly number[];
  private readonly unkScore: number;
  private readonly longestPiece: number;
  private readonly normalization: ReadonlyMap<string, string>;

  constructor(
    vocabulary: UnigramVocabulary,
    readonly maxLength: number,
    readonly prefix: string,
  ) {
    this.special = vocabulary.special_ids;
    const control = new Set([...Object.values(this.special), vocabulary.pieces.length - 1]); // and <mask>
    let longest = 0;
    vocabulary.pieces.forEach((piece, id) => {
      if (control.has(id) || piece === "") return;
      this.ids.set(piece, id);
      longest = Math.max(longest, [...piece].length);
    });
    this.longestPiece = longest;
    this.scores = vocabulary.scores;
    this.unkScore = vocabulary.scores.reduce((low, score) => Math.min(low, score), Infinity) - 10; // no spread: 250k arguments
    this.normalization = new Map(Object.entries(vocabulary.normalization));
  }

  /** The text of `unigram.json`. */
  static fromJson(text: string, maxLength: number, prefix: string): UnigramTokenizer {
    return new UnigramTokenizer(JSON.parse(text) as UnigramVocabulary, maxLength, prefix);
  }

  static async fromFile(path: string, maxLength: number, prefix: string): Promise<UnigramTokenizer> {
    return UnigramTokenizer.fromJson(await readFile(path, "utf8"), maxLength, prefix);
  }

  /** Steps 1–3: normalization per grapheme, runs of spaces collapsed, metaspace. */
  normalize(text: string): string {
    let out = "";
    for (const grapheme of graphemes(text)) {
      if (grapheme.length > 1 && Buffer.byteLength(grapheme.join(""), "utf8") < 6) {
        let hit: string | undefined;
        for (let k = 1; k <= grapheme.length && hit === undefined; k++) {
          hit = this.normalization.get(grapheme.slice(0, k).join(""));
        }
        if (hit !== undefined) {
          out += hit;
          continue;
        }
      }
      for (const c of grapheme) out += this.normalization.get(c) ?? c;
    }
    out = out.replace(/ {2,}/g, " ").replaceAll(" ", META);
    return out.startsWith(META) ? out : META + out;
  }

  /** Steps 4–5 for one word: Viterbi over code points, unknown runs fused into one <unk>. */
  private word(word: string): number[] {
    const offsets: number[] = [0];
    for (const c of word) offsets.push(offsets.at(-1)! + c.length);
    const n = offsets.length - 1;
    const best = new Float64Array(n + 1).fill(-Infinity);
    const from = new Int32Array(n + 1);
    const piece = new Int32Array(n + 1);
    best[0] = 0;
    for (let i = 0; i < n; i++) {
      let single = false;
      const last = Math.min(n, i + this.longestPiece);
      for (let end = i + 1; end <= last; end++) {
        const id = this.ids.get(word.slice(offsets[i], offsets[end]));
        if (id === undefined) continue;
        if (end === i + 1) single = true;
        const score = best[i]! + this.scores[id]!;
        if (score > best[end]!) {
          best[end] = score;
          from[end] = i;
          piece[end] = id;
        }
      }
      if (!single && best[i]! + this.unkScore > best[i + 1]!) {
        best[i + 1] = best[i]! + this.unkScore;
        from[i + 1] = i;
        piece[i + 1] = this.special.unk;
      }
    }
    const ids: number[] = [];
    for (let at = n; at > 0; at = from[at]!) {
      const id = piece[at]!;
      if (!(id === this.special.unk && ids.at(-1) === this.special.unk)) ids.push(id);
    }
    return ids.reverse();
  }

  /** Piece ids without <s>/</s>; stops once `limit` are known (words are tokenized independently). */
  pieces(text: string, limit = Infinity): number[] {
    const ids: number[] = [];
    for (const word of this.normalize(text).split(/(?=\u2581)/u)) {
      if (word) ids.push(...this.word(word));
      if (ids.length >= limit) return ids.slice(0, limit);
    }
    return ids;
  }

  /** Step 6: <s> + the first maxLength − 2 pieces of prefix + text + </s>. */
  encode(text: string): number[] {
    return [this.special.bos, ...this.pieces(this.prefix + text, this.maxLength - 2), this.special.eos];
  }
}
