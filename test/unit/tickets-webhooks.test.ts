import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { ShapeError, type JsonObject, type TicketEvent } from "../../connectors/tickets/events.js";
import { parseFreshdesk } from "../../connectors/tickets/freshdesk.js";
import { parseGeneric } from "../../connectors/tickets/generic.js";
import { ticketInquiry } from "../../connectors/tickets/inquiry.js";
import { loadTicketLabels } from "../../connectors/tickets/label-map.js";
import { DESKS, signatureHeaders, verifySignature } from "../../connectors/tickets/signatures.js";
import { parseZendesk } from "../../connectors/tickets/zendesk.js";

const fixture = (name: string): JsonObject =>
  JSON.parse(readFileSync(path.join(REPO_ROOT, "test/fixtures/tickets", `${name}.json`), "utf8")) as JsonObject;
const lower = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

const SECRET = "whsec-test-0123456789abcdef";
const NOW = Date.UTC(2025, 4, 12, 9, 30);
const TOLERANCE = 300_000;

describe("webhook signatures", () => {
  const body = Buffer.from('{"say":"hello"}');

  it.each(DESKS)("%s: a signature over the exact bytes verifies, within the window", (desk) => {
    const headers = lower(signatureHeaders(desk, SECRET, body, NOW));
    const verified = verifySignature(desk, SECRET, headers, body, NOW + 60_000, TOLERANCE);
    expect(verified.ok).toBe(true);
  });

  it.each(DESKS)("%s: another body, another secret, a missing header or an old timestamp is refused", (desk) => {
    const headers = lower(signatureHeaders(desk, SECRET, body, NOW));
    const refusal = (h: Record<string, string>, b: Buffer, secret = SECRET, now = NOW) => {
      const v = verifySignature(desk, secret, h, b, now, TOLERANCE);
      return v.ok ? "ok" : v.reason;
    };
    expect(refusal(headers, Buffer.from('{"say":"hellO"}'))).toBe("bad_signature");
    expect(refusal(headers, body, `${SECRET}x`)).toBe("bad_signature");
    expect(refusal({}, body)).toBe("missing_signature");
    expect(refusal(headers, body, SECRET, NOW + TOLERANCE + 1_000)).toBe("stale_timestamp");
    expect(refusal(headers, body, SECRET, NOW - TOLERANCE - 1_000)).toBe("stale_timestamp");
  });

  it("zendesk: base64 HMAC of the ISO timestamp followed by the body", () => {
    const headers = signatureHeaders("zendesk", SECRET, body, NOW);
    expect(headers["X-Zendesk-Webhook-Signature-Timestamp"]).toBe("2025-05-12T09:30:00Z");
    expect(headers["X-Zendesk-Webhook-Signature"]).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it("generic: any of several v1 signatures may match (a sender rotating its secret)", () => {
    const signed = signatureHeaders("generic", SECRET, body, NOW)["X-Switchboard-Signature"]!;
    const [t, v1] = signed.split(",");
    const header = { "x-switchboard-signature": `${t},v1=${"0".repeat(64)},${v1}` };
    expect(verifySignature("generic", SECRET, header, body, NOW, TOLERANCE).ok).toBe(true);
    const truncated = { "x-switchboard-signature": `${t},${v1!.slice(0, 20)}` };
    expect(verifySignature("generic", SECRET, truncated, body, NOW, TOLERANCE)).toMatchObject({ ok: false, reason: "bad_signature" });
  });
});

describe("zendesk event webhooks", () => {
  it("a new ticket is its opening message, customer by requester id", () => {
    const event = parseZendesk(fixture("zendesk-ticket-created"), "360020000001");
    expect(event).toMatchObject({
      kind: "message",
      ticketId: "90211",
      messageId: "opening",
      subject: "Dining table delivery missed",
      contentType: "text",
      customer: { id: "zendesk:8447388090494", email: null, name: null },
      metadata: { desk: "zendesk", ticket_id: "90211", priority: "high", ticket_type: "question", tags: "delivery,furniture,web_form" },
    });
    expect(event.kind === "message" && event.body).toContain("Linden oak dining table");
  });

  it("a customer's comment is a message of its own; staff comments and notes are not", () => {
    const payload = fixture("zendesk-comment-added");
    expect(parseZendesk(payload, undefined)).toMatchObject({ kind: "message", messageId: "31807762240017" });
    const comment = (changes: JsonObject) => {
      const event = payload.event as { comment: JsonObject };
      return { ...payload, event: { comment: { ...event.comment, ...changes } } };
    };
    expect(parseZendesk(comment({ author: { id: 1, is_staff: true, name: "Agent" } }), undefined)).toMatchObject({ kind: "ignored", reason: "agent_comment" });
    expect(parseZendesk(comment({ is_public: false }), undefined)).toMatchObject({ kind: "ignored", reason: "private_comment" });
    expect(parseZendesk(comment({ body: "" }), undefined)).toMatchObject({ kind: "ignored", reason: "empty_body" });
    const description = (payload.detail as { description: string }).description;
    expect(parseZendesk(comment({ body: description }), undefined)).toMatchObject({ kind: "message", messageId: "opening" });
  });

  it("agent changes are agent labels, Zendesk's own are not; solved gives outcome labels", () => {
    expect(parseZendesk(fixture("zendesk-group-changed"), undefined)).toMatchObject({
      kind: "update",
      ticketId: "90211",
      eventId: "01HXR50J3AQ2ZC8M6V1T4N7E5S",
      occurredAt: Date.parse("2025-05-12T10:14:55.402Z"),
      values: [{ field: "group", value: "360011000003", source: "agent" }],
    });
    const byTrigger = fixture("zendesk-group-changed");
    expect(parseZendesk({ ...byTrigger, detail: { ...(byTrigger.detail as JsonObject), actor_id: "-1" } }, undefined)).toMatchObject({ reason: "system_change" });
    expect(parseZendesk(fixture("zendesk-intent-changed"), "360020000001")).toMatchObject({ values: [{ field: "intent", value: "track_order", source: "agent" }] });
    expect(parseZendesk(fixture("zendesk-intent-changed"), "999")).toMatchObject({ kind: "ignored", reason: "unmapped_field" });
    expect(parseZendesk(fixture("zendesk-ticket-solved"), undefined)).toMatchObject({
      values: [
        { field: "group", value: "360011000003", source: "outcome" },
        { field: "type", value: "QUESTION", source: "outcome" },
      ],
    });
  });

  it("a payload without the envelope's fields is refused with each missing field", () => {
    const attempt = () => parseZendesk({ type: "zen:event-type:ticket.created" }, undefined);
    expect(attempt).toThrow(ShapeError);
    expect(() => attempt()).toThrow(/id: .*; detail\.id/);
    expect(parseZendesk({ ...fixture("zendesk-ticket-created"), type: "zen:event-type:user.created" }, undefined)).toMatchObject({ reason: "unhandled_event" });
  });
});

describe("freshdesk automation webhooks", () => {
  it("a new ticket is its opening message (HTML), customer by requester email", () => {
    expect(parseFreshdesk(fixture("freshdesk-ticket-created"), "cf_intent")).toMatchObject({
      kind: "message",
      ticketId: "3107",
      messageId: "opening",
      contentType: "html",
      subject: "Charged twice for my order",
      customer: { email: "priya.raman@example.com", name: "Priya Raman" },
      metadata: { desk: "freshdesk", priority: "medium", tags: "billing,duplicate-charge", group: "Front Desk" },
    });
  });

  it("the requester's public comment is a message without its author prefix; an agent's is not", () => {
    const event = parseFreshdesk(fixture("freshdesk-customer-reply"), "cf_intent") as Extract<TicketEvent, { kind: "message" }>;
    expect(event.kind).toBe("message");
    expect(event.messageId).toMatch(/^reply-[0-9a-f]{16}$/);
    expect(event.body).toBe('<div dir="ltr">I attached the card statement. The second charge is still there today, a week later. When will I get it back?</div>');
    const resolved = fixture("freshdesk-ticket-resolved");
    const agentReply = { freshdesk_webhook: { ...(resolved.freshdesk_webhook as JsonObject), triggered_event: "{note_type:public}" } };
    expect(parseFreshdesk(agentReply, "cf_intent")).toMatchObject({ kind: "ignored", reason: "agent_comment" });
  });

  it("a group change is an agent label; resolved gives the ticket's group, type and intent as outcome labels", () => {
    expect(parseFreshdesk(fixture("freshdesk-group-changed"), "cf_intent")).toMatchObject({
      kind: "update",
      values: [{ field: "group", value: "Billing & Refunds", source: "agent" }],
    });
    expect(parseFreshdesk(fixture("freshdesk-ticket-resolved"), "cf_intent")).toMatchObject({
      values: [
        { field: "group", value: "Billing & Refunds", source: "outcome" },
        { field: "type", value: "Refund", source: "outcome" },
        { field: "intent", value: "get_refund", source: "outcome" },
      ],
    });
    const first = parseFreshdesk(fixture("freshdesk-group-changed"), "cf_intent");
    const again = parseFreshdesk(fixture("freshdesk-group-changed"), "cf_intent");
    expect(first.kind === "update" && again.kind === "update" && first.eventId === again.eventId).toBe(true);
  });

  it("a payload without freshdesk_webhook is refused", () => {
    expect(() => parseFreshdesk({ ticket: { id: 1 } }, undefined)).toThrow(/freshdesk_webhook: an object is required/);
  });
});

describe("generic webhooks", () => {
  it("each event maps as documented", () => {
    expect(parseGeneric(fixture("generic-ticket-created"))).toMatchObject({
      kind: "message",
      messageId: "opening",
      contentType: "html",
      customer: { id: "cust-77120", email: "jonas.weber@example.org", tier: "premium" },
    });
    expect(parseGeneric(fixture("generic-comment-added"))).toMatchObject({ kind: "message", messageId: "cm_90007", contentType: "text" });
    expect(parseGeneric(fixture("generic-ticket-updated"))).toMatchObject({
      kind: "update",
      eventId: "evt_01HY13B6T0V9K2",
      values: [
        { field: "group", value: "orders", source: "agent" },
        { field: "type", value: "order", source: "agent" },
        { field: "intent", value: "change_order", source: "agent" },
      ],
    });
    const solved = { ...fixture("generic-ticket-updated"), changes: { status: "solved" } };
    expect(parseGeneric(solved)).toMatchObject({ values: [{ field: "group", value: "orders", source: "outcome" }, { field: "type", value: "order", source: "outcome" }] });
    expect(() => parseGeneric({ event: "ticket.created", id: "e1", ticket: { id: "t1" }, comment: { content_type: "pdf" } })).toThrow(
      /comment\.body: .*; comment\.content_type: text or html/,
    );
  });
});

describe("ticket inquiries", () => {
  it("a message maps to one inquiry id whatever delivers it", () => {
    const event = parseZendesk(fixture("zendesk-ticket-created"), undefined);
    if (event.kind !== "message") throw new Error("expected a message");
    const first = ticketInquiry("zendesk", event, NOW);
    expect(ticketInquiry("zendesk", event, NOW + 5_000).inquiry_id).toBe(first.inquiry_id);
    expect(first.inquiry_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first.envelope).toMatchObject({ channel: "ticket", source_id: "zendesk:90211:opening", thread_id: "zendesk:90211", reply_to: null });
    expect(ticketInquiry("freshdesk", event, NOW).inquiry_id).not.toBe(first.inquiry_id);
  });
});

describe("ticket label map", () => {
  const config = loadConfig({});

  it("maps groups, types and intents of config/ticket-labels.yaml case-insensitively", async () => {
    const map = await loadTicketLabels(config.ticketLabels, config.routingRules);
    expect(map.label("zendesk", "group", "360011000003")).toBe("logistics");
    expect(map.label("freshdesk", "group", "billing & refunds")).toBe("billing");
    expect(map.label("freshdesk", "type", "Refund")).toBe("REFUND");
    expect(map.label("generic", "type", "Order")).toBe("ORDER");
    expect(map.label("zendesk", "type", "QUESTION")).toBeUndefined();
    expect(map.label("generic", "intent", " Track_Order ")).toBe("track_order");
    expect(map.intentField("zendesk")).toBe("360020000001");
  });

  it("refuses a department or category the routing rules do not know", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "ticket-labels-"));
    const file = path.join(dir, "ticket-labels.yaml");
    writeFileSync(file, "version: 1\nzendesk:\n  groups: { '1': warehouse }\nfreshdesk:\n  types: { Damage: BROKEN }\n");
    await expect(loadTicketLabels(file, config.routingRules)).rejects.toThrow(/zendesk\.groups\.1: unknown department "warehouse"[\s\S]*freshdesk\.types\.Damage: unknown category "BROKEN"/);
    writeFileSync(file, "version: 1\nhelpscout: {}\n");
    await expect(loadTicketLabels(file, config.routingRules)).rejects.toThrow(/refused/);
  });
});
