/**
 * Unicode and whitespace normalization: the text every model and store sees is in one canonical
 * form, without invisible characters, and (through capLength) never longer than MAX_TEXT_CHARS.
 */

/**
 * The longest text `clean` emits. Support messages are rarely over 2,000 characters; the models
 * read far less than this, and what lies beyond it in practice is pasted logs or forwarded history.
 * A cap keeps records, database rows and search documents bounded whatever a sender pastes.
 */
export const MAX_TEXT_CHARS = 10_000;

// Control characters (C0, DEL, C1) that are neither whitespace nor a line break.
const CONTROL = /(?![\t\n\v\f])\p{Cc}/gu;
// Format characters (zero-width spaces and joiners, bidi controls, soft hyphen, BOM), replacement
// characters left by invalid UTF-8, and unpaired surrogates.
const INVISIBLE = /[\p{Cf}\uFFFD]|\p{Cs}/gu;
const LINE_BREAK = /\r\n?|[\u2028\u2029\u0085]/g;
const HORIZONTAL_SPACE = /[^\S\n]+/g;
const SPACE_AROUND_LINE_BREAK = / ?\n ?/g;
const BLANK_LINES = /\n{3,}/g;

/** NFKC, invisible characters removed, spaces collapsed, at most one blank line between paragraphs. */
export function normalizeText(text: string): string {
  return text
    .replace(LINE_BREAK, "\n")
    .normalize("NFKC")
    .replace(CONTROL, "")
    .replace(INVISIBLE, "")
    .replace(HORIZONTAL_SPACE, " ")
    .replace(SPACE_AROUND_LINE_BREAK, "\n")
    .replace(BLANK_LINES, "\n\n")
    .trim();
}

/**
 * Cuts at the last word boundary before `max`, so no word or placeholder is split. Applied after
 * redaction: a cut before it could leave the visible half of a card number undetected.
 */
export function capLength(text: string, max = MAX_TEXT_CHARS): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const lastSpace = cut.search(/\s\S*$/);
  return (lastSpace > max / 2 ? cut.slice(0, lastSpace) : cut).trimEnd();
}
