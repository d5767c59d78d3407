import { readFileSync } from "node:fs";
import path from "node:path";
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
  const index = JSON.parse(readFileSync(path.join(EMAIL_FIXTURES_DIR, "index.json"), "utf8")) as {
    fixtures: (ExpectedInquiry | ExpectedRefusal)[];
  };
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
