/**
 * What the customer wrote in this message, without the conversation history, signature and legal
 * boilerplate their mail client appended. Line-based heuristics for the formats of the common
 * clients (Gmail, Outlook, Apple Mail, mobile apps) in English, German, French, Spanish and
 * Portuguese. Heuristics can be wrong, so a message they would empty entirely is returned uncut.
 */

/**
 * "On <date>, <name> <address> wrote:" and its translations; may be wrapped over two lines. The
 * date in it tells it from a customer's own "On Monday I wrote:".
 */
const ATTRIBUTION_LINES: readonly RegExp[] = [
  /^On\b(?=.*\d).{1,300}\bwrote:$/i,
  /^Am\b(?=.*\d).{1,300}\bschrieb\b.{0,300}:$/i,
  /^Le\b(?=.*\d).{1,300}\ba écrit ?:$/i,
  /^El\b(?=.*\d).{1,300}\bescribió ?:$/i,
  /^Em\b(?=.*\d).{1,300}\bescreveu ?:$/i,
  /^Op\b(?=.*\d).{1,300}\bschreef\b.{0,300}:$/i,
  /^Il giorno\b(?=.*\d).{1,300}\bha scritto ?:$/i,
];

/** Separators above a forwarded or replied-to message that Outlook and others quote unprefixed. */
const HISTORY_SEPARATOR =
  /^-{2,} ?(?:Original Message|Forwarded message|Ursprüngliche Nachricht|Weitergeleitete Nachricht|Message d'origine|Message transféré|Mensaje original|Mensaje reenviado|Mensagem original|Mensagem encaminhada) ?-{2,}$/i;

/** The first and a later line of Outlook's header block ("From: … / Sent: …"), per language. */
const HEADER_FROM = /^\*?(?:From|Von|De|Da|Van)\s?:/i;
const HEADER_DATE = /^\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Enviado|Enviada|Fecha|Data|Inviato|Verzonden)\s?:/i;
const HEADER_BLOCK_ON_ONE_LINE = /^\*?(?:From|Von|De)\s?:.{1,300}\b(?:Sent|Gesendet|Envoyé|Enviado|Enviada)\s?:/i;
const HEADER_BLOCK_SPAN = 5;

const QUOTED_LINE = /^>/;

const SIGNATURE_DELIMITER = /^--$/;
const MOBILE_SIGNATURE =
  /^(?:Sent from (?:my|Outlook|Mail|Yahoo)|Get Outlook for|Von meinem .{1,40} gesendet|Gesendet (?:von|mit) |Envoyé (?:de|depuis) mon|Enviado desde (?:mi|Outlook)|Enviado do meu|Enviado a partir do)\b.{0,80}$/i;

/** Valedictions that open a signature block ("Best regards,\nName\nTitle"). */
const CLOSING =
  /^(?:(?:best|kind|warm|warmest|many|with best|with kind)? ?regards|best wishes|best|cheers|sincerely|yours (?:sincerely|truly|faithfully)|respectfully|(?:mit )?(?:freundlichen|besten|herzlichen|vielen|viele|beste|liebe|schöne|herzliche|freundliche) gr(?:ü|ue)(?:ß|ss)en?|gru(?:ß|ss)|mfg|lg|vg|(?:bien )?cordialement|bien à vous|(?:sincères |meilleures )?salutations|atentamente|(?:un )?saludos?(?: cordiales)?|cordiales saludos|atenciosamente|(?:melhores )?cumprimentos|abraços|att)[,.!]?$/i;
/** "Thanks,\nName" is a closing only when a name follows; a lone "Thanks!" is part of the message. */
const THANKS_CLOSING =
  /^(?:thanks|thank you|thanks again|thanks in advance|many thanks|thx|danke|vielen dank|danke schön|merci|merci beaucoup|gracias|muchas gracias|obrigad[oa]|muito obrigad[oa])[,.!]?$/i;
const SIGNATURE_MAX_LINES = 8;
const SIGNATURE_MAX_LINE_CHARS = 80;
const NAME_MAX_LINES = 3;
/** A name or short title under "Thanks,": a few capitalized words ("Jean-Luc de la Tour", "Head of IT"). */
const NAME_LINE =
  /^\p{Lu}[\p{L}.'’-]*(?: (?:\p{Lu}[\p{L}.'’-]*|de|da|do|dos|del|la|le|van|von|der|of|the|and|&)){0,4}$/u;

/** Sentences only legal boilerplate uses; a paragraph containing one is a disclaimer. */
const DISCLAIMER =
  /\b(?:this (?:e-?mail|message|communication)(?: and any (?:attachments?|files?)(?: transmitted with it)?)? (?:is|are|may be|may contain|contains?) (?:strictly )?(?:confidential|privileged|intended solely)|if you are not the intended recipient|confidentiality notice|the information contained in this (?:e-?mail|message|communication|transmission)|please consider the environment before printing|caution: this (?:e-?mail|message) originated from outside|diese (?:e-?mail|nachricht)(?: und (?:alle|etwaige) anhänge)? (?:enthält|ist|kann) .{0,40}vertraulich|wenn sie nicht der (?:richtige|beabsichtigte) (?:adressat|empfänger)|ce (?:message|courriel|e-?mail)(?: et (?:toutes )?les pièces jointes)? .{0,40}confidenti|si vous n'êtes pas (?:le )?destinataire|este (?:mensaje|correo)(?: electrónico)?(?: y sus (?:anexos|adjuntos))? .{0,40}confidencial|si usted no es el destinatario|esta mensagem .{0,40}confidencia|se você não (?:é|for) o destinatário)/i;

const HAS_CONTENT = /[\p{L}\p{N}]/u;
const DECORATION_LINE = /^[\s\-_=*~.#]*$/;

/** "Re:", "AW:", "Fwd:", "WG:", "TR:", "RV:" … prefixes, repeated or numbered ("Re[2]:"). */
const REPLY_PREFIXES = /^(?:(?:re|aw|antw|fw|fwd|wg|tr|rv|enc|res|sv)(?:\[\d+\])?\s?:\s*)+/i;

export function stripReplyPrefixes(subject: string): string {
  return subject.replace(REPLY_PREFIXES, "");
}

/** The customer's own text: quoted history, signature and disclaimers removed. */
export function stripQuotesAndSignatures(text: string): string {
  const lines = text.split(/\r\n?|\n/).map((line) => line.trimEnd());
  const own = withoutSignature(withoutDisclaimers(withoutQuotedLines(withoutHistory(lines))));
  const result = trimDecoration(own).join("\n");
  return HAS_CONTENT.test(result) || !HAS_CONTENT.test(text) ? result : text.trim();
}

/** Cuts at the first header above unprefixed history; drops attribution lines above "> " quotes. */
function withoutHistory(lines: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimStart();
    if (HISTORY_SEPARATOR.test(line) || isHeaderBlock(lines, i)) return kept;
    const attributionLines = attributionAt(lines, i);
    if (attributionLines > 0) {
      const next = nextNonBlank(lines, i + attributionLines);
      // Bottom-posted or interleaved replies quote with "> " and continue below: keep going.
      if (next !== undefined && QUOTED_LINE.test(lines[next]!.trimStart())) {
        i += attributionLines - 1;
        continue;
      }
      return kept;
    }
    kept.push(lines[i]!);
  }
  return kept;
}

/** How many lines (1 or 2, when the client wrapped it) the attribution at `i` spans; 0 if none. */
function attributionAt(lines: readonly string[], i: number): number {
  const line = lines[i]!.trim();
  if (ATTRIBUTION_LINES.some((pattern) => pattern.test(line))) return 1;
  const next = lines[i + 1]?.trim();
  if (next && ATTRIBUTION_LINES.some((pattern) => pattern.test(`${line} ${next}`))) return 2;
  return 0;
}

function isHeaderBlock(lines: readonly string[], i: number): boolean {
  const line = lines[i]!.trim();
  if (HEADER_BLOCK_ON_ONE_LINE.test(line)) return true;
  if (!HEADER_FROM.test(line)) return false;
  return lines.slice(i + 1, i + 1 + HEADER_BLOCK_SPAN).some((following) => HEADER_DATE.test(following.trim()));
}

function withoutQuotedLines(lines: readonly string[]): string[] {
  return lines.filter((line) => !QUOTED_LINE.test(line.trimStart()));
}

/** A disclaimer at the top is an external-sender banner: dropped alone. Lower down it ends the message. */
function withoutDisclaimers(lines: readonly string[]): string[] {
  const paragraphs = toParagraphs(lines);
  const firstContent = paragraphs.findIndex((paragraph) => HAS_CONTENT.test(paragraph.join(" ")));
  const kept: string[][] = [];
  for (const [index, paragraph] of paragraphs.entries()) {
    if (!DISCLAIMER.test(paragraph.join(" "))) kept.push(paragraph);
    else if (index !== firstContent) break;
  }
  return kept.flatMap((paragraph, index) => (index === 0 ? paragraph : ["", ...paragraph]));
}

function withoutSignature(lines: readonly string[]): string[] {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (SIGNATURE_DELIMITER.test(line) || MOBILE_SIGNATURE.test(line)) return lines.slice(0, i);
    if (CLOSING.test(line)) {
      const tail = nonBlankAfter(lines, i);
      if (tail.length <= SIGNATURE_MAX_LINES && tail.every((l) => l.length <= SIGNATURE_MAX_LINE_CHARS))
        return lines.slice(0, i);
    }
    if (THANKS_CLOSING.test(line)) {
      const tail = nonBlankAfter(lines, i);
      if (tail.length > 0 && tail.length <= NAME_MAX_LINES && tail.every((l) => NAME_LINE.test(l)))
        return lines.slice(0, i);
    }
  }
  return [...lines];
}

function nonBlankAfter(lines: readonly string[], i: number): string[] {
  return lines
    .slice(i + 1)
    .map((line) => line.trim())
    .filter((line) => line !== "");
}

function toParagraphs(lines: readonly string[]): string[][] {
  const paragraphs: string[][] = [];
  let current: string[] = [];
  for (const line of lines) {
    if (line.trim() === "") {
      if (current.length > 0) paragraphs.push(current);
      current = [];
    } else current.push(line);
  }
  if (current.length > 0) paragraphs.push(current);
  return paragraphs;
}

function nextNonBlank(lines: readonly string[], from: number): number | undefined {
  for (let i = from; i < lines.length; i++) if (lines[i]!.trim() !== "") return i;
  return undefined;
}

/** Leading and trailing blank or separator-only lines ("____", "---", "==="). */
function trimDecoration(lines: readonly string[]): string[] {
  let start = 0;
  let end = lines.length;
  while (start < end && DECORATION_LINE.test(lines[start]!)) start++;
  while (end > start && DECORATION_LINE.test(lines[end - 1]!)) end--;
  return lines.slice(start, end);
}
