import { expect } from "vitest";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { expectedThreadId, type ExpectedInquiry } from "./email-fixtures.js";

/** Checks an inquiry against its fixture's expectations. */
export function expectInquiryMatches(inquiry: InquiryReceived, expected: ExpectedInquiry, tag?: string): void {
  const where = expected.file;
  expect(inquiry.envelope.channel, where).toBe("email");
  expect(inquiry.subject, where).toBe(expected.subject);
  expect(inquiry.envelope.customer, where).toEqual({
    id: null,
    email: expected.customer.email,
    name: expected.customer.name,
    tier: null,
  });
  expect(inquiry.envelope.reply_to, where).toBe(expected.customer.email);
  expect(inquiry.content_type, where).toBe(expected.content_type);
  for (const snippet of expected.body_contains) expect(inquiry.body, where).toContain(snippet);
  for (const snippet of expected.body_excludes ?? []) expect(inquiry.body, where).not.toContain(snippet);
  if (expected.body_empty) expect(inquiry.body.trim(), where).toBe("");
  if (expected.source_id === "sha256") expect(inquiry.envelope.source_id, where).toMatch(/^sha256:[0-9a-f]{64}$/);
  else expect(inquiry.envelope.metadata.message_id, where).toBe(inquiry.envelope.source_id);
  expect(inquiry.envelope.thread_id, where).toBe(expectedThreadId(expected, inquiry, tag));
  expect(inquiry.envelope.metadata.charset, where).toBe(expected.charset ?? undefined);
  expect(JSON.parse(inquiry.envelope.metadata.attachments ?? "null"), where).toEqual(expected.attachments);
  for (const [key, value] of Object.entries(expected.metadata ?? {}))
    expect(inquiry.envelope.metadata[key], `${where} metadata.${key}`).toBe(value);
  expect(inquiry.inquiry_id, where).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
}
