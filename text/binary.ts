/**
 * Whether a body is binary content (an attachment pasted as the body, a file posted to the API) or
 * text decoded with the wrong character encoding, rather than something a person wrote.
 */

/** Replacement characters (bytes that were not UTF-8), control characters, unpaired surrogates. */
const NOT_TEXT = /\uFFFD|(?![\t\n\v\f\r])\p{Cc}|\p{Cs}/gu;
const WHITESPACE = /\s/g;
/**
 * Random bytes decoded as UTF-8 come out more than half replacement and control characters; a
 * Latin-1 letter here and there in mis-decoded European text stays well under a tenth.
 */
const MAX_NOT_TEXT_SHARE = 0.2;
/** A short message with a glitch or two is still a message. */
const MIN_NOT_TEXT_CHARS = 4;
/** Enough to judge by: binary looks binary from its start. */
const SAMPLE_CHARS = 65_536;

export function looksLikeBinary(text: string): boolean {
  const sample = text.length > SAMPLE_CHARS ? text.slice(0, SAMPLE_CHARS) : text;
  const notText = sample.match(NOT_TEXT)?.length ?? 0;
  if (notText < MIN_NOT_TEXT_CHARS) return false;
  const visible = sample.length - (sample.match(WHITESPACE)?.length ?? 0);
  return notText / visible > MAX_NOT_TEXT_SHARE;
}
