import { readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { clean } from "../../processors/clean.js";
import type { InquiryCleaned, InquiryReceived } from "../../schemas/types.generated.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import { TRIAGE, findProcessor } from "../../streams/topology.js";
import { containsPersonalData } from "../../text/pii.js";
import { createResources } from "../../streams/resources.js";

/** The shared datasets, where training reads them too (training/config.py). */
const DATASETS = process.env.SWITCHBOARD_DATASETS ?? path.resolve(REPO_ROOT, "..", "shared", "datasets");

/** RFC 4180 CSV (quoted fields with commas, doubled quotes and line breaks) into rows keyed by the header. */
function readCsv(file: string): Record<string, string>[] {
  const text = readFileSync(path.join(DATASETS, file), "utf8");
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  const endField = (): void => {
    row.push(field);
    field = "";
  };
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quoted && char === '"' && text[i + 1] === '"') {
      field += '"';
      i++;
    } else if (char === '"') quoted = !quoted;
    else if (quoted || (char !== "," && char !== "\n" && char !== "\r")) field += char;
    else if (char === ",") endField();
    else if (char === "\n") {
      endField();
      rows.push(row);
      row = [];
    }
  }
  if (field !== "" || row.length > 0) {
    endField();
    rows.push(row);
  }
  const [header, ...records] = rows;
  return records.map((values) => Object.fromEntries(header!.map((name, i) => [name, values[i] ?? ""])));
}

/** Independent of text/pii.ts: shapes of personal data that must never survive cleaning. */
const EMAIL_SHAPE = /[\w.+-]+@[\w-]+\.[a-z]{2,}/i;
const INTERNATIONAL_PHONE_SHAPE = /\+\d{1,3}[ .-]?\(?\d+\)?(?:[ .-]?\d+){2,}/;
const LONG_DIGIT_RUN = /\d(?:[ -]?\d){12,18}/g;

function luhnValid(digits: string): boolean {
  const sum = [...digits].reverse().reduce((total, char, i) => {
    const digit = Number(char) * (i % 2 === 1 ? 2 : 1);
    return total + (digit > 9 ? digit - 9 : digit);
  }, 0);
  return sum % 10 === 0;
}

function personalDataShapes(text: string): string[] {
  const cards = [...text.matchAll(LONG_DIGIT_RUN)]
    .map((m) => m[0])
    .filter((run) => /^[2-6]/.test(run) && luhnValid(run.replace(/\D/g, "")));
  return [text.match(EMAIL_SHAPE)?.[0], text.match(INTERNATIONAL_PHONE_SHAPE)?.[0], ...cards].filter(
    (shape): shape is string => shape !== undefined,
  );
}

describe("clean over the shared datasets", () => {
  let processor: ProcessorImplementation<InquiryReceived>;
  const log = pino({ level: "silent" });

  beforeAll(() => {
    const { processor: declaration } = findProcessor("clean");
    processor = clean(declaration, { topology: TRIAGE, config: loadConfig(), endpoints: inject("endpoints"), log, resources: createResources(loadConfig(), inject("endpoints"), log, "test") });
  });

  async function cleanAll(inquiries: readonly InquiryReceived[]): Promise<InquiryCleaned[]> {
    const cleaned: InquiryCleaned[] = [];
    for (const value of inquiries) {
      const outputs = await processor.process(
        {
          topic: "inquiries.received",
          partition: 0,
          offset: "0",
          key: value.inquiry_id,
          value,
          headers: {},
          timestamp: 0,
        },
        { log },
      );
      cleaned.push(outputs[0]!.value as InquiryCleaned);
    }
    return cleaned;
  }

  function inquiry(id: string, channel: "email" | "chat", subject: string | null, body: string): InquiryReceived {
    const envelope = {
      channel,
      source_id: id,
      thread_id: null,
      customer: { id: null, email: null, name: null, tier: null },
      received_at: 0,
      reply_to: null,
      metadata: {},
    };
    return { inquiry_id: id, envelope, subject, body, content_type: "text" };
  }

  it("cleans every multilingual ticket without a refusal, leaving no personal data and mostly agreeing on language", async () => {
    const tickets = readCsv("tickets/tickets.csv");
    expect(tickets.length).toBeGreaterThan(5000);
    // Part of the dataset stores line breaks as the two characters "\n"; a connector would deliver real ones.
    const inquiries = tickets.map((row, i) =>
      inquiry(`ticket-${i}`, "email", row.subject || null, row.body!.replaceAll("\\n", "\n")),
    );
    const cleaned = await cleanAll(inquiries);

    const leaks = cleaned.flatMap((c) =>
      [c.subject ?? "", c.text].flatMap((text) => [
        ...personalDataShapes(text),
        ...(containsPersonalData(text) ? [c.inquiry_id] : []),
      ]),
    );
    expect(leaks).toEqual([]);
    expect(cleaned.filter((c) => c.text === "" && c.subject === null)).toEqual([]);
    // The dataset's language column is itself noisy (English tickets labeled "de"), hence not 100%.
    const agreeing = cleaned.filter((c, i) => c.language === tickets[i]!.language).length;
    expect(agreeing / cleaned.length).toBeGreaterThan(0.9);
  });

  it("cleans every Bitext request without a refusal and leaves its text intact", async () => {
    const requests = readCsv("bitext/bitext.csv");
    expect(requests.length).toBeGreaterThan(26_000);
    const cleaned = await cleanAll(requests.map((row, i) => inquiry(`bitext-${i}`, "chat", null, row.instruction!)));

    expect(cleaned.flatMap((c) => personalDataShapes(c.text))).toEqual([]);
    expect(cleaned.filter((c) => containsPersonalData(c.text))).toEqual([]);
    // Chat requests have no quotes, signatures or markup: cleaning only normalizes whitespace.
    const changed = cleaned.filter((c, i) => c.text !== requests[i]!.instruction!.replace(/\s+/g, " ").trim());
    expect(changed.map((c) => c.inquiry_id)).toEqual([]);
    const english = cleaned.filter((c) => c.language === "en").length;
    expect(english / cleaned.length).toBeGreaterThan(0.8);
  });
});
