import { describe, expect, it } from "vitest";
import { inquiryIdFor, messageIdsIn, threadIdOf } from "../../connectors/email/ids.js";
import { parseEmail, MAX_BODY_CHARS } from "../../connectors/email/mime.js";
import { MIME_LIMITS, scanStructure } from "../../connectors/email/structure.js";
import { expectInquiryMatches } from "../support/email-expect.js";
import { isRefusal, loadEmailFixtures, uniquify } from "../support/email-fixtures.js";
import { deepNesting, manyHeaders, manyParts, withAttachment } from "../support/email-bombs.js";

const options = { maxBytes: 26_214_400 };
const origin = { source: "import" as const };

describe("email fixtures → inquiries", () => {
  const fixtures = loadEmailFixtures();

  it("has the 25 fixtures of the index", () => {
    expect(fixtures).toHaveLength(25);
  });

  for (const fixture of fixtures) {
    it(fixture.file, async () => {
      const verdict = await parseEmail(fixture.raw, origin, options);
      if (isRefusal(fixture)) {
        expect(verdict.ok ? "published" : verdict.reason).toBe(fixture.refused);
        return;
      }
      if (!verdict.ok) throw new Error(`${fixture.file} refused: ${verdict.reason} (${verdict.detail})`);
      expectInquiryMatches(verdict.inquiry, fixture);
    });
  }

  it("gives a message the same inquiry id every time, and a re-tagged copy another", async () => {
    const [first] = fixtures;
    const a = await parseEmail(first!.raw, origin, options);
    const b = await parseEmail(
      first!.raw,
      { source: "imap", mailbox: "INBOX", uid: 7, receivedAt: new Date(0) },
      options,
    );
    const c = await parseEmail(uniquify(first!.raw, "run1"), origin, options);
    if (!a.ok || !b.ok || !c.ok) throw new Error("fixture refused");
    expect(b.inquiry.inquiry_id).toBe(a.inquiry.inquiry_id);
    expect(b.inquiry.envelope.metadata).toMatchObject({ source: "imap", imap_mailbox: "INBOX", imap_uid: "7" });
    expect(b.inquiry.envelope.received_at).toBe(0);
    expect(c.inquiry.inquiry_id).not.toBe(a.inquiry.inquiry_id);
    expect(c.inquiry.envelope.source_id).toBe("<CAF4k2p0a1.run1@mail.example.com>");
  });
});

describe("ids", () => {
  it("derives a version 5 UUID from the source id", () => {
    expect(inquiryIdFor("<a@b>")).toBe(inquiryIdFor("<a@b>"));
    expect(inquiryIdFor("<a@b>")).not.toBe(inquiryIdFor("<a@c>"));
    expect(inquiryIdFor("<a@b>")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("reads Message-IDs from headers with comments and folding", () => {
    expect(messageIdsIn("<one@x> (comment)\r\n <two@x>")).toEqual(["<one@x>", "<two@x>"]);
    expect(messageIdsIn("bare@x")).toEqual(["<bare@x>"]);
    expect(messageIdsIn("no id here")).toEqual([]);
  });

  it("takes the thread from References' root, else In-Reply-To, else the message itself", () => {
    expect(threadIdOf("<root@x> <mid@x>", "<mid@x>", "<self@x>")).toBe("<root@x>");
    expect(threadIdOf(undefined, "<parent@x>", "<self@x>")).toBe("<parent@x>");
    expect(threadIdOf(undefined, undefined, "<self@x>")).toBe("<self@x>");
  });
});

describe("limits", () => {
  it("refuses a message above the size limit before parsing it", async () => {
    const big = withAttachment(MIME_LIMITS.maxHeaderBytes);
    const verdict = await parseEmail(big, origin, { maxBytes: big.length - 1 });
    expect(verdict).toMatchObject({ ok: false, reason: "too_large" });
  });

  it("refuses deep nesting, too many parts and too many header fields, by reason", async () => {
    expect(await parseEmail(deepNesting(MIME_LIMITS.maxDepth + 5), origin, options)).toMatchObject({
      ok: false,
      reason: "too_deep",
    });
    expect(await parseEmail(manyParts(MIME_LIMITS.maxParts + 10), origin, options)).toMatchObject({
      ok: false,
      reason: "too_many_parts",
    });
    expect(await parseEmail(manyHeaders(MIME_LIMITS.maxHeaderFields + 1), origin, options)).toMatchObject({
      ok: false,
      reason: "too_many_headers",
    });
    expect(await parseEmail(manyHeaders(900, 600), origin, options)).toMatchObject({
      ok: false,
      reason: "header_too_large",
    });
  });

  it("takes what is just inside every limit", async () => {
    expect(scanStructure(deepNesting(MIME_LIMITS.maxDepth - 1))).toMatchObject({ ok: true });
    expect(scanStructure(manyParts(MIME_LIMITS.maxParts - 2))).toMatchObject({ ok: true });
    const verdict = await parseEmail(manyHeaders(MIME_LIMITS.maxHeaderFields - 20), origin, options);
    expect(verdict.ok).toBe(true);
  });

  it("lists a large attachment with its size and does not keep it", async () => {
    const verdict = await parseEmail(withAttachment(3 * 1024 * 1024), origin, options);
    if (!verdict.ok) throw new Error(verdict.reason);
    expect(JSON.parse(verdict.inquiry.envelope.metadata.attachments!)).toEqual([
      { name: "catalogue.bin", type: "application/octet-stream", size: 3 * 1024 * 1024 },
    ]);
    expect(JSON.stringify(verdict.inquiry).length).toBeLessThan(2_000);
  });

  it("caps a huge body below the broker's record limit and says so", async () => {
    const body = "The lamp flickers. ".repeat(20_000);
    const raw = Buffer.from(
      `From: a@example.com\r\nSubject: long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`,
    );
    const verdict = await parseEmail(raw, origin, options);
    if (!verdict.ok) throw new Error(verdict.reason);
    expect(verdict.inquiry.body).toHaveLength(MAX_BODY_CHARS);
    expect(verdict.inquiry.envelope.metadata.body_truncated).toBe("true");
  });

  it("refuses a message with neither subject nor body", async () => {
    const raw = Buffer.from("From: a@example.com\r\nMessage-ID: <e@x>\r\n\r\n\r\n");
    expect(await parseEmail(raw, origin, options)).toMatchObject({ ok: false, reason: "empty" });
  });
});
