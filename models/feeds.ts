import { Tensor } from "onnxruntime-node";

/**
 * `text`: one raw string per inquiry; the linear graph normalizes and tokenizes it itself.
 * onnxruntime-node hands strings to onnxruntime as C strings, which end at the first NUL: the
 * rest of the text would silently vanish. NULs are removed instead, as `clean` does upstream (so
 * served inquiries never hold one); Python passes them through, so only for such texts can the
 * two sides differ.
 */
export function textFeed(texts: readonly string[]): Tensor {
  return new Tensor(
    "string",
    texts.map((text) => text.replaceAll("\0", "")),
    [texts.length],
  );
}

/** What turns a text into the ids an encoder graph takes: WordPiece or Unigram (the multilingual encoder). */
export interface IdTokenizer {
  encode(text: string): number[];
  readonly special: { readonly pad: number };
}

/**
 * `input_ids` and `attention_mask` [N, T] for one batch, T the longest row: shorter rows are
 * padded with [PAD] and mask 0, which the graph ignores (padding does not change a row's result).
 */
export function tokenFeeds(
  rows: readonly (readonly number[])[],
  tokenizer: IdTokenizer,
): { input_ids: Tensor; attention_mask: Tensor } {
  const width = Math.max(...rows.map((ids) => ids.length));
  const ids = new BigInt64Array(rows.length * width).fill(BigInt(tokenizer.special.pad));
  const mask = new BigInt64Array(rows.length * width);
  rows.forEach((row, r) => {
    row.forEach((id, t) => {
      ids[r * width + t] = BigInt(id);
      mask[r * width + t] = 1n;
    });
  });
  const dims = [rows.length, width];
  return { input_ids: new Tensor("int64", ids, dims), attention_mask: new Tensor("int64", mask, dims) };
}
