import type { ContentType } from "../../schemas/types.generated.js";
import { FieldReader, ignored, metadataOf, type JsonObject, type LabelValue, type TicketEvent } from "./events.js";

/**
 * Switchboard's own ticket event, for help desks without a shape of their own here (README,
 * Ticket webhooks): `{ event, id, occurred_at?, ticket: { id, subject?, status?, priority?,
 * tags?, group?, type?, intent? }, requester?: { id?, email?, name?, tier? }, comment?: { id,
 * body, content_type?: text|html, author?: customer|agent, public? }, changes?: { group?, type?,
 * intent?, status? } }`.
 *
 * - ticket.created → the opening message (`comment` is the ticket's first message).
 * - ticket.comment_added → a message, unless the author is an agent or the comment is not public.
 * - ticket.updated → agent labels from `changes`; a change of status to solved or closed gives
 *   outcome labels from the ticket's group, type and intent instead (the resolved state confirms them).
 */
const EVENTS = ["ticket.created", "ticket.comment_added", "ticket.updated"];
const RESOLVED = new Set(["solved", "closed", "resolved"]);
const LABEL_FIELDS = ["group", "type", "intent"] as const;

export function parseGeneric(payload: JsonObject): TicketEvent {
  const fields = new FieldReader("generic", payload);
  const event = fields.text("event");
  const eventId = fields.text("id");
  const ticketId = fields.text("ticket.id");
  fields.check();
  if (!EVENTS.includes(event)) return ignored("unhandled_event", `event ${event} is none of ${EVENTS.join(", ")}`);

  if (event === "ticket.updated") {
    fields.object("changes");
    fields.check();
    const occurredAt = fields.optionalTime("occurred_at") ?? Date.now();
    const status = fields.optionalText("changes.status")?.toLowerCase();
    const resolved = status !== undefined && RESOLVED.has(status);
    const values: LabelValue[] = LABEL_FIELDS.flatMap((field) => {
      const value = resolved
        ? (fields.optionalText(`changes.${field}`) ?? fields.optionalText(`ticket.${field}`))
        : fields.optionalText(`changes.${field}`);
      return value === undefined ? [] : [{ field, value, source: resolved ? "outcome" : "agent" }];
    });
    if (values.length === 0) return ignored("no_label", "the update changes neither group, type, intent nor resolves the ticket");
    return { kind: "update", ticketId, eventId, occurredAt, values };
  }

  const commentId = event === "ticket.comment_added" ? fields.text("comment.id") : "opening";
  const body = fields.text("comment.body");
  const contentType = fields.optionalText("comment.content_type") ?? "text";
  if (contentType !== "text" && contentType !== "html") fields.refuse("comment.content_type", "text or html");
  fields.check();
  if (fields.optionalText("comment.author") === "agent") return ignored("agent_comment", "a comment by an agent is not a customer's message");
  if (fields.optionalBoolean("comment.public") === false) return ignored("private_comment", "an internal note is not a customer's message");
  return {
    kind: "message",
    ticketId,
    messageId: commentId,
    subject: fields.optionalText("ticket.subject") ?? null,
    body,
    contentType: contentType as ContentType,
    customer: {
      id: fields.optionalText("requester.id") ?? null,
      email: fields.optionalText("requester.email") ?? null,
      name: fields.optionalText("requester.name") ?? null,
      tier: fields.optionalText("requester.tier")?.toLowerCase() ?? null,
    },
    metadata: metadataOf({
      desk: "generic",
      ticket_id: ticketId,
      event_id: eventId,
      event_type: event,
      comment_id: event === "ticket.comment_added" ? commentId : undefined,
      priority: fields.optionalText("ticket.priority")?.toLowerCase(),
      status: fields.optionalText("ticket.status")?.toLowerCase(),
      ticket_type: fields.optionalText("ticket.type"),
      group: fields.optionalText("ticket.group"),
      tags: fields.optionalTextList("ticket.tags").join(",") || undefined,
      occurred_at: fields.optionalText("occurred_at"),
    }),
  };
}
