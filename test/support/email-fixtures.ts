import { readFileSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import type { RefusalReason } from "../../connectors/email/mime.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";

/** The email fixtures (test/fixtures/email/*.eml) and what each must become, from their index. */

export const EMAIL_FIXTURES_DIR = path.join(REPO_ROOT, "test", "fixtures", "email");

export interface ExpectedInquiry {
  readonly file: string;
  readonly subject: string | null;
  readonly customer: { readonly email: string; readonly name: string | null };
  readonly content_type: "text" | "html";
  readonly body_contains: readonly string[];
  readonly body_excludes?: readonly string[];
  readonly body_empty?: boolean;
  /** `self`: the message's own source id. */
  readonly thread_id: string;
  /** `sha256`: derived from the bytes (no Message-ID). */
  readonly source_id?: "sha256";
  /** Of the part the body comes from; null without a body. */
  readonly charset: string | null;
  readonly attachments: readonly { name: string; type: string; size: number }[];
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface ExpectedRefusal {
  readonly file: string;
  readonly refused: RefusalReason;
}

export type EmailFixture = (ExpectedInquiry | ExpectedRefusal) & { readonly raw: Buffer };

export const isRefusal = (f: ExpectedInquiry | ExpectedRefusal): f is ExpectedRefusal => "refused" in f;

export function loadEmailFixtures(): EmailFixture[] {
  const index = JSON.parse(readFileSync(path.join(EMAIL_FIXTURES_DIR, "index.json"), "utf8")) as { fixtures: (ExpectedInquiry | ExpectedRefusal)[] };
  return index.fixtures.map((f) => ({ ...f, raw: readFileSync(path.join(EMAIL_FIXTURES_DIR, f.file)) }));
}

/**
 * The same message with run-unique ids: every Message-ID in Message-ID, In-Reply-To and
 * References gets `.<tag>` before its `@`, and an `X-Test-Run` header changes the bytes of a
 * message without one. The inquiry ids (derived from the Message-ID) are then new for each run,
 * as a real mailbox's mail is, while threads stay threads.
 */
export function uniquify(raw: Buffer, tag: string): Buffer {
  const text = raw.toString("latin1");
  const split = text.search(/\r?\n\r?\n/);
  const head = split === -1 ? text : text.slice(0, split);
  const rest = split === -1 ? "" : text.slice(split);
  const rewritten = head.replace(/^(message-id|in-reply-to|references):((?:.*)(?:\r?\n[ \t].*)*)/gim, (field: string) =>
    field.replace(/<([^<>@\s]+)@([^<>\s]+)>/g, (_m, local: string, domain: string) => `<${local}.${tag}@${domain}>`),
  );
  return Buffer.from(`X-Test-Run: ${tag}\r\n${rewritten}${rest}`, "latin1");
}

/** The fixture's expected thread id once `uniquify` rewrote it. */
export function expectedThreadId(expected: ExpectedInquiry, inquiry: InquiryReceived, tag?: string): string {
  if (expected.thread_id === "self") return inquiry.envelope.source_id;
  return tag ? expected.thread_id.replace(/@/, `.${tag}@`) : expected.thread_id;
}

/** Checks an inquiry against its fixture's expectations. */
export function expectInquiryMatches(inquiry: InquiryReceived, expected: ExpectedInquiry, tag?: string): void {
  const where = expected.file;
  expect(inquiry.envelope.channel, where).toBe("email");
  expect(inquiry.subject, where).toBe(expected.subject);
  expect(inquiry.envelope.customer, where).toEqual({ id: null, email: expected.customer.email, name: expected.customer.name, tier: null });
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
  for (const [key, value] of Object.entries(expected.metadata ?? {})) expect(inquiry.envelope.metadata[key], `${where} metadata.${key}`).toBe(value);
  expect(inquiry.inquiry_id, where).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
}
