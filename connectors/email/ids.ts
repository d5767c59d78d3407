import { createHash } from "node:crypto";

/**
 * Identities of an email: its source id (the Message-ID), the inquiry id derived from it, and the
 * thread it belongs to. All are functions of the message alone, so a message read twice (a
 * restart, a back-fill of mail already received) has the same ids both times.
 */

/** Namespace of email inquiry ids. Fixed for good: changing it would give every email a new inquiry id. */
const NAMESPACE = Buffer.from("6f1c2a9e4b7d4e0f9a3c5d8e2f1b7a64", "hex");

/** The longest Message-ID kept; RFC 5322 lines are at most 998 characters, and an id is one token of one. */
const MAX_MESSAGE_ID_CHARS = 998;

/** A name-based (version 5, RFC 9562) UUID: the same source id always gives the same inquiry id. */
export function inquiryIdFor(sourceId: string): string {
  const hash = createHash("sha1").update(NAMESPACE).update(sourceId, "utf8").digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The Message-IDs in a header value, each as `<id>`: `References` lists several, `In-Reply-To`
 * usually one, sometimes with a comment beside it. A bare id without brackets counts as one.
 */
export function messageIdsIn(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = typeof value === "string" ? value : value.join(" ");
  const bracketed = [...text.matchAll(/<([^<>\s]+)>/g)].map((m) => m[1]!);
  const ids = bracketed.length > 0 ? bracketed : text.split(/\s+/).filter((token) => token.includes("@"));
  return ids.filter((id) => id.length <= MAX_MESSAGE_ID_CHARS).map((id) => `<${id}>`);
}

/** The message's own id: its Message-ID, or (without a usable one) a digest of its bytes. */
export function sourceIdOf(messageIdHeader: string | undefined, raw: Buffer): string {
  return messageIdsIn(messageIdHeader)[0] ?? `sha256:${createHash("sha256").update(raw).digest("hex")}`;
}

/**
 * The conversation: the first id of `References` (the thread's root), else `In-Reply-To`, else the
 * message itself, which then starts a thread its replies will name as their root.
 */
export function threadIdOf(
  references: string | readonly string[] | undefined,
  inReplyTo: string | undefined,
  sourceId: string,
): string {
  return messageIdsIn(references)[0] ?? messageIdsIn(inReplyTo)[0] ?? sourceId;
}
