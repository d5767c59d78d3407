import { FieldReader, NO_CUSTOMER, ignored, metadataOf, type JsonObject, type TicketEvent } from "./events.js";

/**
 * Zendesk's event webhooks (a webhook subscribed to Zendesk events, payload version 2022-11-06):
 * `{ type: "zen:event-type:ticket.<event>", id, time, account_id, subject: "zen:ticket:<id>",
 * detail: <the ticket>, event: <what changed> }`. The ticket in `detail` names people and groups
 * by id only; its `description` is the text of its first comment.
 *
 * - ticket.created → the opening message.
 * - ticket.comment_added → a message when the comment is public and not by staff. A comment
 *   whose text is the ticket's description is its first comment, should Zendesk report that one
 *   as a comment too: the opening message again, so it is a duplicate of the ticket's inquiry.
 * - ticket.group_assignment_changed / type_changed / custom_field_changed (the intent field) by a
 *   person → agent labels; Zendesk's own changes (triggers, automations: actor -1) are not labels.
 * - ticket.status_changed to solved → outcome labels from the ticket's group and type then.
 */
const PREFIX = "zen:event-type:ticket.";
/** The actor of changes made by Zendesk itself (triggers, automations). */
const SYSTEM_ACTOR = "-1";

export function parseZendesk(payload: JsonObject, intentField: string | undefined): TicketEvent {
  const fields = new FieldReader("zendesk", payload);
  const type = fields.text("type");
  const eventId = fields.text("id");
  const ticketId = fields.text("detail.id");
  fields.check();
  if (!type.startsWith(PREFIX)) return ignored("unhandled_event", `Zendesk event ${type} is not about a ticket`);
  const event = type.slice(PREFIX.length);
  const occurredAt = fields.optionalTime("time") ?? Date.now();
  const actor = fields.optionalText("detail.actor_id");
  const byPerson = actor !== SYSTEM_ACTOR;

  const metadata = () =>
    metadataOf({
      desk: "zendesk",
      ticket_id: ticketId,
      event_id: eventId,
      event_type: event,
      account_id: fields.optionalText("account_id"),
      priority: fields.optionalText("detail.priority")?.toLowerCase(),
      status: fields.optionalText("detail.status")?.toLowerCase(),
      ticket_type: fields.optionalText("detail.type")?.toLowerCase(),
      group_id: fields.optionalText("detail.group_id"),
      brand_id: fields.optionalText("detail.brand_id"),
      via: fields.optionalText("detail.via.channel"),
      tags: fields.optionalTextList("detail.tags").join(",") || undefined,
      occurred_at: new Date(occurredAt).toISOString(),
    });
  const requester = fields.optionalText("detail.requester_id");
  const customer = { ...NO_CUSTOMER, id: requester === undefined ? null : `zendesk:${requester}` };
  const subject = fields.optionalText("detail.subject") ?? null;

  switch (event) {
    case "created": {
      const body = fields.optionalText("detail.description");
      if (body === undefined) return ignored("empty_body", "the ticket has no description (attachments only)");
      return { kind: "message", ticketId, messageId: "opening", subject, body, contentType: "text", customer, metadata: metadata() };
    }
    case "comment_added": {
      const commentId = fields.text("event.comment.id");
      fields.check();
      if (fields.optionalBoolean("event.comment.is_public") === false) return ignored("private_comment", "an internal note is not a customer's message");
      if (fields.optionalBoolean("event.comment.author.is_staff") === true) return ignored("agent_comment", "a comment by staff is not a customer's message");
      const body = fields.optionalText("event.comment.body");
      if (body === undefined) return ignored("empty_body", "the comment has no text (attachments only)");
      const opening = body.trim() === fields.optionalText("detail.description")?.trim();
      return {
        kind: "message",
        ticketId,
        messageId: opening ? "opening" : commentId,
        subject,
        body,
        contentType: "text",
        customer,
        metadata: { ...metadata(), comment_id: commentId },
      };
    }
    case "group_assignment_changed":
    case "type_changed":
    case "custom_field_changed": {
      if (!byPerson) return ignored("system_change", `Zendesk itself made the ${event.replace("_changed", "")} change (a trigger or automation)`);
      if (event === "custom_field_changed") {
        const field = fields.text("event.custom_field.id");
        fields.check();
        if (field !== intentField) return ignored("unmapped_field", `custom field ${field} is not the intent field of config/ticket-labels.yaml`);
      }
      const value = fields.optionalText(event === "custom_field_changed" ? "event.current.value" : "event.current");
      if (value === undefined) return ignored("value_cleared", `the ticket's ${event.replace("_changed", "")} was cleared`);
      const field = event === "group_assignment_changed" ? "group" : event === "type_changed" ? "type" : "intent";
      return { kind: "update", ticketId, eventId, occurredAt, values: [{ field, value, source: "agent" }] };
    }
    case "status_changed": {
      const status = fields.text("event.current").toLowerCase();
      fields.check();
      if (status !== "solved") return ignored("not_solved", `status ${status} is no outcome yet`);
      const values = [
        { field: "group", value: fields.optionalText("detail.group_id") },
        { field: "type", value: fields.optionalText("detail.type") },
      ] as const;
      return {
        kind: "update",
        ticketId,
        eventId,
        occurredAt,
        values: values.flatMap(({ field, value }) => (value === undefined ? [] : [{ field, value, source: "outcome" as const }])),
      };
    }
    default:
      return ignored("unhandled_event", `Zendesk ticket event ${event} says nothing Switchboard uses`);
  }
}
