import { createHash } from "node:crypto";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import type { TicketMessage } from "./events.js";
import type { Desk } from "./signatures.js";

/** Namespace of ticket inquiry ids (a random UUID fixed for Switchboard: changing it renames every inquiry). */
const TICKET_NAMESPACE = Buffer.from("6f1c1f0e7b2a4d5e9a0b3c8d2e4f6a71", "hex");

/**
 * A name-based (version 5) UUID: the same name always gives the same id, so every delivery of
 * one ticket message is the same inquiry, whichever process or retry publishes it.
 */
function uuidV5(name: string): string {
  const bytes = createHash("sha1").update(TICKET_NAMESPACE).update(name).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The conversation a ticket's inquiries share: `<desk>:<ticket id>`. */
export const ticketThread = (desk: Desk, ticketId: string) => `${desk}:${ticketId}`;

/** `<desk>:<ticket id>:<message>` — the message is `opening` or the comment id. */
export const messageSourceId = (desk: Desk, message: TicketMessage) => `${ticketThread(desk, message.ticketId)}:${message.messageId}`;

export const ticketInquiryId = (sourceId: string) => uuidV5(sourceId);

/** The `inquiries.received` record of a ticket message; replies go back through the help desk, so no reply address. */
export function ticketInquiry(desk: Desk, message: TicketMessage, receivedAt: number): InquiryReceived {
  const sourceId = messageSourceId(desk, message);
  return {
    inquiry_id: ticketInquiryId(sourceId),
    envelope: {
      channel: "ticket",
      source_id: sourceId,
      thread_id: ticketThread(desk, message.ticketId),
      customer: message.customer,
      received_at: receivedAt,
      reply_to: null,
      metadata: message.metadata,
    },
    subject: message.subject,
    body: message.body,
    content_type: message.contentType,
  };
}
