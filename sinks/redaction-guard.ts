import type { Logger } from "pino";
import { containsPersonalData, redactPersonalData } from "../text/pii.js";

/**
 * Free text about to leave the pipeline for a store. `clean` redacts personal data before any
 * store sees it; this is the sinks' second line of defence, so that a redaction gap upstream (or
 * an LLM repeating what it was told) never becomes a stored copy.
 */
export type RedactionGuard = (inquiryId: string, field: string, text: string) => string;

export function redactionGuard(log: Logger): RedactionGuard {
  return (inquiryId, field, text) => {
    if (!containsPersonalData(text)) return text;
    const redacted = redactPersonalData(text);
    // The inquiry id and field only: the text itself is what must not be logged.
    log.warn(
      { inquiryId, field, redactions: redacted.kinds },
      "personal data reached a sink unredacted; redacted again before storing",
    );
    return redacted.text;
  };
}
