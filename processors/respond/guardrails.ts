import { containsPersonalData, redactPersonalData } from "../../text/pii.js";

/**
 * Guardrails around the optional LLM. The input check decides what may be sent to an external
 * model; the output check decides whether its draft may be sent to a customer. Both are pure and
 * deliberately conservative: a refused draft costs a hand-off, a bad one costs a customer. Whether
 * a reply is offensive is the toxicity model's call (toxicity.ts), for every drafted reply.
 */

export type InputCheck = "prompt_injection" | "empty" | "too_long";
export type OutputCheck = "length" | "toxicity" | "personal_data" | "foreign_link";

export type InputVerdict =
  | {
      readonly ok: true;
      /** The text to send: personal data replaced by placeholders. */ readonly text: string;
      readonly redactions: number;
    }
  | { readonly ok: false; readonly check: InputCheck };

export type OutputVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly check: OutputCheck; /** The model's figures, for a toxicity refusal. */ readonly detail?: string };

/**
 * Phrases that try to override the model's instructions. Matched on normalized text, so spacing,
 * case and compatibility characters (full-width letters) do not hide them.
 */
const INJECTION_PATTERNS: readonly RegExp[] = [
  /\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instructions?|prompts?|rules|guidelines|directions)\b/,
  /\b(system|developer|hidden|initial)\s+(prompt|message|instructions?)\b/,
  /\b(reveal|print|show|repeat|output)\b.{0,30}\b(your|the)\s+(prompt|instructions|system)\b/,
  /\byou are (now|no longer)\b/,
  /\b(pretend|act|behave)\s+(to be|as if|as)\b/,
  /\b(jailbreak|dan mode|developer mode|do anything now)\b/,
  /<\|?\s*(im_start|im_end|system|endoftext)\s*\|?>/,
  /^\s*#{2,}\s*(instruction|system)/m,
  /\bnew instructions?\s*:/,
];

/** Longer inquiries are not sent: they cost more than a person reading them, and hide injections well. */
export const MAX_INPUT_CHARS = 8_000;

/** Drafted replies shorter than this say nothing; longer ones stop being read. */
export const MIN_REPLY_CHARS = 40;
export const MAX_REPLY_CHARS = 1_500;

/** Links a reply may contain: the retailer's own site. */
export const ALLOWED_LINK_HOST = "example.com";

const normalized = (text: string) => text.normalize("NFKC").toLowerCase().replace(/\s+/g, " ");

/** May this inquiry text be sent to the LLM, and in which form? */
export function checkLlmInput(text: string): InputVerdict {
  if (text.trim() === "") return { ok: false, check: "empty" };
  if (text.length > MAX_INPUT_CHARS) return { ok: false, check: "too_long" };
  const plain = normalized(text);
  if (INJECTION_PATTERNS.some((pattern) => pattern.test(plain))) return { ok: false, check: "prompt_injection" };
  const redaction = redactPersonalData(text);
  return { ok: true, text: redaction.text, redactions: redaction.count };
}

/**
 * May this drafted reply be sent to the customer, as far as its form goes? The first failed check
 * is reported. Toxicity is a model's call (toxicity.ts, `checkToxicity`), made after these.
 */
export function checkLlmOutput(reply: string): OutputVerdict {
  const trimmed = reply.trim();
  if (trimmed.length < MIN_REPLY_CHARS || trimmed.length > MAX_REPLY_CHARS) return { ok: false, check: "length" };
  if (containsPersonalData(trimmed)) return { ok: false, check: "personal_data" };
  if (linkHosts(trimmed).some((host) => host !== ALLOWED_LINK_HOST && !host.endsWith(`.${ALLOWED_LINK_HOST}`))) {
    return { ok: false, check: "foreign_link" };
  }
  return { ok: true };
}

/** Host names of the links in a text, including bare "www." ones. */
function linkHosts(text: string): string[] {
  const hosts: string[] = [];
  for (const [, host] of text.matchAll(/\b(?:https?:\/\/|www\.)([^\s/?#<>"')\]]+)/gi)) {
    hosts.push(
      host!
        .toLowerCase()
        .replace(/^www\./, "")
        .replace(/:\d+$/, "")
        .replace(/[.,;:!]+$/, ""),
    );
  }
  return hosts;
}
