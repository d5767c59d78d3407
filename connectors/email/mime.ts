import {
  MailParser,
  type AddressObject,
  type AttachmentStream,
  type EmailAddress,
  type Headers,
  type MessageText,
} from "mailparser";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { looksLikeBinary } from "../../text/binary.js";
import { errorMessage } from "../../streams/errors.js";
import { inquiryIdFor, messageIdsIn, sourceIdOf, threadIdOf } from "./ids.js";
import { MIME_LIMITS, scanStructure, type StructureReason } from "./structure.js";

/**
 * An email (its raw bytes) as an inquiry: the sender is the customer, the plain text part the
 * body (the HTML part when there is no plain text; `clean` strips markup, quotes and signatures
 * downstream), attachments listed in the metadata but not kept. Or a refusal with its reason.
 */

/** Why a message is refused: the label of `switchboard_connector_rejected_total` and of the IMAP keyword. */
export type RefusalReason =
  StructureReason | "too_large" | "unparsable" | "no_sender" | "empty" | "invalid_encoding" | "binary";

/** Where a message was read. */
export interface EmailOrigin {
  readonly source: "imap" | "import";
  readonly mailbox?: string;
  readonly uid?: number;
  /** When the server received it (IMAP INTERNALDATE); else the Date header, else now. */
  readonly receivedAt?: Date;
  /** A back-fill's file, and the message's position in an mbox: for the report and the logs only. */
  readonly file?: string;
  readonly position?: number;
}

export type EmailVerdict =
  | { readonly ok: true; readonly inquiry: InquiryReceived }
  | { readonly ok: false; readonly reason: RefusalReason; readonly detail: string };

export interface AttachmentSummary {
  readonly name: string | null;
  readonly type: string;
  readonly size: number;
}

/**
 * `clean` reads at most 200,000 characters of a body; beyond that is quoted history or pasted logs,
 * and would only bring the record near the broker's 1 MiB limit (three bytes a character of CJK text).
 */
export const MAX_BODY_CHARS = 200_000;
/** A subject is one line; `clean` keeps 500 characters of it. */
const MAX_SUBJECT_CHARS = 2_000;
const MAX_ATTACHMENT_NAME_CHARS = 255;

interface Parsed {
  readonly headers: Headers;
  readonly text: MessageText | undefined;
  readonly attachments: readonly AttachmentSummary[];
}

/** mailparser, streaming: attachment contents are counted and dropped, never held whole. */
function parseMime(raw: Buffer): Promise<Parsed> {
  return new Promise((resolve, reject) => {
    const parser = new MailParser({
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
      checksumAlgo: false,
      maxHeadSize: MIME_LIMITS.maxHeaderBytes,
      maxChildNodes: MIME_LIMITS.maxParts,
    });
    let headers: Headers = new Map();
    let text: MessageText | undefined;
    const attachments: AttachmentSummary[] = [];
    parser.on("headers", (parsed: Headers) => {
      headers = parsed;
    });
    parser.on("data", (data: AttachmentStream | MessageText) => {
      if (data.type === "text") {
        text = data;
        return;
      }
      let size = 0;
      data.content.on("data", (chunk: Buffer) => {
        size += chunk.length;
      });
      data.content.on("end", () => {
        if (!isInlineImage(data)) {
          attachments.push({
            name: data.filename?.slice(0, MAX_ATTACHMENT_NAME_CHARS) ?? null,
            type: data.contentType,
            size,
          });
        }
        data.release?.();
      });
    });
    parser.on("error", reject);
    parser.on("end", () => resolve({ headers, text, attachments }));
    parser.end(raw);
  });
}

/**
 * An image the HTML shows by its Content-ID (a logo, a signature picture): layout, not something
 * the customer attached. A photo sent "inline" without being referenced (Apple Mail does that) is
 * an attachment.
 */
function isInlineImage(attachment: AttachmentStream): boolean {
  return attachment.contentType.startsWith("image/") && attachment.related === true;
}

function firstMailbox(header: unknown): EmailAddress | undefined {
  const objects = (Array.isArray(header) ? header : [header]) as (AddressObject | undefined)[];
  const flat = objects.flatMap((o) => o?.value ?? []).flatMap((a) => (a.group ? a.group : [a]));
  return flat.find((a) => a.address !== undefined && a.address.includes("@"));
}

const stringHeader = (headers: Headers, name: string): string | undefined => {
  const value = headers.get(name);
  if (typeof value === "string") return value;
  if (Array.isArray(value) && typeof value[0] === "string") return value.join(" ");
  return undefined;
};

/** RFC 3834: mail a program sent (auto-replies, bounces, lists) must not be answered automatically. */
function isAutomatic(headers: Headers): boolean {
  const autoSubmitted = stringHeader(headers, "auto-submitted")?.trim().toLowerCase();
  const precedence = stringHeader(headers, "precedence")?.trim().toLowerCase();
  return (
    (autoSubmitted !== undefined && autoSubmitted !== "no") ||
    precedence === "bulk" ||
    precedence === "junk" ||
    precedence === "list"
  );
}

/** Decoded text that is not text: mostly replacement characters (bytes not valid in the declared charset) or control characters. */
function notText(body: string): RefusalReason | undefined {
  if (!looksLikeBinary(body)) return undefined;
  const replacements = body.match(/\uFFFD/g)?.length ?? 0;
  return replacements > body.length / 10 ? "invalid_encoding" : "binary";
}

export interface ParseOptions {
  readonly maxBytes: number;
  readonly now?: () => number;
}

export async function parseEmail(
  raw: Buffer,
  origin: EmailOrigin,
  { maxBytes, now = Date.now }: ParseOptions,
): Promise<EmailVerdict> {
  const refuse = (reason: RefusalReason, detail: string): EmailVerdict => ({ ok: false, reason, detail });
  if (raw.length > maxBytes) return refuse("too_large", `${raw.length} bytes, more than the ${maxBytes} accepted`);
  const scan = scanStructure(raw);
  if (!scan.ok) return refuse(scan.reason, scan.detail);

  let parsed: Parsed;
  try {
    parsed = await parseMime(raw);
  } catch (error) {
    return refuse("unparsable", `the MIME parser failed: ${errorMessage(error).slice(0, 200)}`);
  }
  const { headers, text, attachments } = parsed;
  const sender = firstMailbox(headers.get("from"));
  if (!sender?.address) return refuse("no_sender", "no From address to answer");

  const plain = text?.text !== undefined && /\S/.test(text.text) ? text.text : undefined;
  const html = text?.html !== undefined && /\S/.test(text.html) ? text.html : undefined;
  const content = plain ?? html ?? "";
  const subject = stringHeader(headers, "subject")?.trim().slice(0, MAX_SUBJECT_CHARS) || null;
  if (content === "" && subject === null) return refuse("empty", "neither a subject nor a body");
  const broken = notText(content);
  if (broken)
    return refuse(
      broken,
      `the ${plain !== undefined ? "text" : "HTML"} body is not readable text in its declared charset`,
    );

  const sourceId = sourceIdOf(stringHeader(headers, "message-id"), raw);
  const threadId = threadIdOf(stringHeader(headers, "references"), stringHeader(headers, "in-reply-to"), sourceId);
  const date = headers.get("date");
  const receivedAt =
    origin.receivedAt ?? (date instanceof Date && !Number.isNaN(date.getTime()) ? date : new Date(now()));
  const charset =
    plain !== undefined ? scan.structure.textCharset : html !== undefined ? scan.structure.htmlCharset : undefined;
  const metadata: Record<string, string> = {
    source: origin.source,
    attachments: JSON.stringify(attachments),
    ...(messageIdsIn(stringHeader(headers, "message-id"))[0] ? { message_id: sourceId } : {}),
    ...(origin.mailbox !== undefined ? { imap_mailbox: origin.mailbox } : {}),
    ...(origin.uid !== undefined ? { imap_uid: String(origin.uid) } : {}),
    ...(charset ? { charset } : {}),
    ...(content.length > MAX_BODY_CHARS ? { body_truncated: "true" } : {}),
    ...(isAutomatic(headers) ? { auto_submitted: "true" } : {}),
  };
  const replyTo = firstMailbox(headers.get("reply-to"))?.address ?? sender.address;
  return {
    ok: true,
    inquiry: {
      inquiry_id: inquiryIdFor(sourceId),
      envelope: {
        channel: "email",
        source_id: sourceId,
        thread_id: threadId,
        customer: { id: null, email: sender.address.toLowerCase(), name: sender.name.trim() || null, tier: null },
        received_at: receivedAt.getTime(),
        reply_to: replyTo.toLowerCase(),
        metadata,
      },
      subject,
      body: content.slice(0, MAX_BODY_CHARS),
      content_type: plain === undefined && html !== undefined ? "html" : "text",
    },
  };
}
