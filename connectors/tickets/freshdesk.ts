import { FieldReader, NO_CUSTOMER, digest, ignored, metadataOf, type JsonObject, type TicketEvent } from "./events.js";

/**
 * Freshdesk's automation-rule webhooks ("Trigger webhook", JSON, Advanced content) with the
 * template in README (Ticket webhooks): `{ "freshdesk_webhook": { "triggered_event":
 * "{{triggered_event}}", "ticket_id": "{{ticket.id}}", ... } }`. Every value is a rendered
 * placeholder, so a string (empty when the ticket has none). Freshdesk renders
 * `{{triggered_event}}` as `{ticket_action:created}` for a new ticket, `{<property>:{from:<old>,to:<new>}}`
 * for a property change (only the first change the rule matched), `{<name>:<value>}` otherwise.
 *
 * - `{ticket_action:created}` → the opening message (the description, HTML).
 * - another plain event with a latest public comment by the requester → a message; Freshdesk
 *   renders that comment as `<author name> : <html>`, so a comment by anyone else (an agent's
 *   public reply) is not a customer's message.
 * - a change of the group, the ticket type or the intent field → an agent label from the ticket's
 *   new value; status changed to Resolved or Closed → outcome labels from the ticket's group, type
 *   and intent then.
 */
interface TriggeredEvent {
  readonly name: string;
  /** The value of a plain event; the new value of a property change. */
  readonly value: string;
  readonly change: boolean;
}

function triggeredEvent(rendered: string): TriggeredEvent | undefined {
  const parts = rendered.replace(/[{}]/g, "").split(/[:,]/).map((part) => part.trim());
  if (parts.length === 2) return { name: parts[0]!, value: parts[1]!, change: false };
  if (parts.length === 5 && parts[1] === "from" && parts[3] === "to") return { name: parts[0]!, value: parts[4]!, change: true };
  return undefined;
}

const RESOLVED = new Set(["resolved", "closed"]);
/** How `{{triggered_event}}` may name the ticket type property. */
const TYPE_PROPERTIES = new Set(["ticket_type", "type"]);
/** `{{ticket.latest_public_comment}}` renders as `<author name> : <comment html>`. */
const COMMENT_AUTHOR = /^(.*?) : ([\s\S]*)$/;

export function parseFreshdesk(payload: JsonObject, intentField: string | undefined): TicketEvent {
  const fields = new FieldReader("freshdesk", payload);
  fields.object("freshdesk_webhook");
  const rendered = fields.text("freshdesk_webhook.triggered_event");
  const ticketId = fields.text("freshdesk_webhook.ticket_id");
  fields.check();
  const field = (name: string) => fields.optionalText(`freshdesk_webhook.${name}`);
  const event = triggeredEvent(rendered);
  if (!event) return ignored("unhandled_event", `unreadable triggered_event "${rendered}"`);

  const requesterName = field("requester_name");
  const customer = { ...NO_CUSTOMER, email: field("requester_email") ?? null, name: requesterName ?? null };
  const metadata = metadataOf({
    desk: "freshdesk",
    ticket_id: ticketId,
    triggered_event: rendered,
    priority: field("ticket_priority")?.toLowerCase(),
    status: field("ticket_status")?.toLowerCase(),
    ticket_type: field("ticket_type"),
    group: field("ticket_group"),
    source: field("ticket_source")?.toLowerCase(),
    tags: fields.optionalTextList("freshdesk_webhook.ticket_tags").join(",") || undefined,
  });
  const subject = field("ticket_subject") ?? null;
  const message = (messageId: string, body: string) =>
    ({ kind: "message", ticketId, messageId, subject, body, contentType: "html", customer, metadata }) as const;

  if (!event.change) {
    if (event.name === "ticket_action" && event.value === "created") {
      const description = field("ticket_description");
      if (description === undefined) return ignored("empty_body", "the ticket has no description");
      return message("opening", description);
    }
    const comment = field("ticket_latest_public_comment");
    if (comment === undefined) return ignored("unhandled_event", `Freshdesk event ${rendered} carries no comment`);
    const [, author, body] = COMMENT_AUTHOR.exec(comment) ?? [];
    if (author === undefined || body === undefined) return ignored("unknown_author", "the latest public comment does not name its author");
    if (requesterName === undefined || author.trim() !== requesterName.trim()) return ignored("agent_comment", "the latest public comment is not by the requester");
    return message(`reply-${digest(body)}`, body);
  }

  const current = { group: field("ticket_group"), type: field("ticket_type"), intent: field("ticket_intent") };
  // The event carries no id: a redelivery renders the same event and values, so their digest names it.
  const eventId = digest(rendered, current.group ?? "", current.type ?? "", current.intent ?? "", field("ticket_status") ?? "");
  const occurredAt = Date.now();
  if (event.name === "status") {
    const status = field("ticket_status")?.toLowerCase();
    if (status === undefined || !RESOLVED.has(status)) return ignored("not_solved", `status ${status ?? event.value} is no outcome yet`);
    const values = (["group", "type", "intent"] as const).flatMap((name) => {
      const value = current[name];
      return value === undefined ? [] : [{ field: name, value, source: "outcome" as const }];
    });
    return { kind: "update", ticketId, eventId, occurredAt, values };
  }
  const changed = event.name.startsWith("group") ? "group" : TYPE_PROPERTIES.has(event.name) ? "type" : event.name === intentField ? "intent" : undefined;
  if (changed === undefined) return ignored("unhandled_change", `a change of ${event.name} gives no label`);
  const value = current[changed];
  if (value === undefined) return ignored("value_cleared", `the ticket's ${changed} was cleared`);
  return { kind: "update", ticketId, eventId, occurredAt, values: [{ field: changed, value, source: "agent" }] };
}
