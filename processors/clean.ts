import type { InquiryCleaned, InquiryReceived } from "../schemas/types.generated.js";
import { InvalidInputError } from "../streams/errors.js";
import type { ProcessorDeclaration } from "../streams/topology.js";
import { looksLikeBinary } from "../text/binary.js";
import { extractEntities } from "../text/entities.js";
import { htmlToPlainText, looksLikeHtml } from "../text/html.js";
import { loadLanguageDetector, type LanguageDetector } from "../text/language.js";
import { MAX_TEXT_CHARS, capLength, normalizeText } from "../text/normalize.js";
import { redactPersonalData } from "../text/pii.js";
import { stripQuotesAndSignatures, stripReplyPrefixes } from "../text/quotes.js";
import { outputOf, reading } from "../streams/ports.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../streams/processor.js";

/**
 * Raw body beyond this is not read. The text emitted is capped far below it, and what makes a body
 * this long is pasted logs or quoted history, which sits below the customer's words anyway.
 */
const MAX_BODY_CHARS = 20 * MAX_TEXT_CHARS;
/** A subject is a line; anything longer was pasted into the wrong field. */
const MAX_SUBJECT_CHARS = 500;

/**
 * `clean`: an inquiry as received becomes what models and stores may see. The subject, and as
 * `text` the customer's own words of the body — no markup, quoted history, signature or
 * disclaimer — normalized, with personal data replaced by placeholders; then the language of the
 * two and the entities in them. The envelope is copied unchanged: replies need the address.
 */
export function clean(declaration: ProcessorDeclaration, deps: ProcessorDependencies): ProcessorImplementation {
  const cleanedOut = outputOf(deps.topology, declaration, "inquiries.cleaned");
  const languageDetector = loadLanguageDetector();
  languageDetector.then(
    () => deps.log.info({ processor: declaration.name }, "language detector loaded"),
    (error: unknown) => deps.log.error({ processor: declaration.name, err: error }, "language detector failed to load"),
  );
  return {
    process: reading(deps.topology, declaration, "inquiries.received", async ({ value: inquiry }, { log }) => {
      const cleaned = cleanInquiry(inquiry, await languageDetector, Date.now());
      // Counts only: the text itself must never reach the logs.
      log.debug(
        {
          inquiryId: cleaned.inquiry_id,
          language: cleaned.language,
          redactions: cleaned.redaction_count,
          entities: cleaned.entities.length,
        },
        "inquiry cleaned",
      );
      return [cleanedOut(cleaned)];
    }),
  };
}

export function cleanInquiry(inquiry: InquiryReceived, languages: LanguageDetector, now: number): InquiryCleaned {
  const subject = normalizeText(stripReplyPrefixes(inquiry.subject ?? ""));
  const body = ownWords(inquiry);
  if (body === "" && subject === "") {
    throw new InvalidInputError(
      inquiry.body.trim() === ""
        ? "body is empty and there is no subject"
        : "body has no readable text (only markup, scripts or invisible characters) and there is no subject",
    );
  }
  const redactedSubject = redactPersonalData(subject);
  const redactedBody = redactPersonalData(body);
  const [cappedSubject, text] = [capLength(redactedSubject.text, MAX_SUBJECT_CHARS), capLength(redactedBody.text)];
  // Subject and body are one message: the language and entities of either count.
  const wholeMessage = [cappedSubject, text].filter((part) => part !== "").join("\n\n");
  const { language, confidence } = languages.detect(wholeMessage);
  return {
    inquiry_id: inquiry.inquiry_id,
    envelope: inquiry.envelope,
    subject: cappedSubject === "" ? null : cappedSubject,
    text,
    language,
    language_confidence: confidence,
    redaction_count: redactedSubject.count + redactedBody.count,
    entities: extractEntities(wholeMessage, language),
    cleaned_at: now,
  };
}

/** The body as plain text without quoted history, signature and disclaimers, normalized. */
function ownWords(inquiry: InquiryReceived): string {
  const body = inquiry.body.length > MAX_BODY_CHARS ? inquiry.body.slice(0, MAX_BODY_CHARS) : inquiry.body;
  if (looksLikeBinary(body)) {
    throw new InvalidInputError(
      "body is not text: too many replacement or control characters (binary content or a wrong character encoding)",
    );
  }
  const plain =
    inquiry.content_type === "html"
      ? htmlToPlainText(body)
      : looksLikeHtml(body)
        ? htmlToPlainText(body, { markedUpText: true })
        : body;
  return normalizeText(stripQuotesAndSignatures(plain));
}
