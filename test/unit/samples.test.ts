import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SAMPLE_INQUIRIES, datasetInquiries, datasetInquiriesWithLabels, datasetsDir, toInquiry, type DemoDataset } from "../../cli/samples/index.js";

const CHANNELS = ["email", "ticket", "api", "chat"];
const TIERS = ["standard", "premium", "vip"];

describe("the sample inquiries written for the project", () => {
  it("parse, and every one has a body, a valid channel and content type, and a known tier if any", () => {
    const raw = JSON.parse(readFileSync(new URL("../../cli/samples/sample-inquiries.json", import.meta.url), "utf8")) as unknown[];
    expect(raw).toHaveLength(SAMPLE_INQUIRIES.length);
    expect(SAMPLE_INQUIRIES.length).toBeGreaterThanOrEqual(50);
    for (const sample of SAMPLE_INQUIRIES) {
      expect(sample.body.trim(), JSON.stringify(sample)).not.toBe("");
      expect(CHANNELS).toContain(sample.channel);
      expect([undefined, "text", "html"]).toContain(sample.content_type);
      expect([undefined, ...TIERS]).toContain(sample.customer.tier);
      expect(sample.subject === null || typeof sample.subject === "string").toBe(true);
    }
  });

  it("cover every channel, every tier and none, HTML bodies, and one customer writing twice", () => {
    expect(new Set(SAMPLE_INQUIRIES.map((s) => s.channel))).toEqual(new Set(CHANNELS));
    expect(new Set(SAMPLE_INQUIRIES.map((s) => s.customer.tier))).toEqual(new Set([undefined, ...TIERS]));
    expect(SAMPLE_INQUIRIES.some((s) => s.content_type === "html" && /<script\b/.test(s.body) && /<style\b/.test(s.body))).toBe(true);
    const ids = SAMPLE_INQUIRIES.flatMap((s) => (s.customer.id ? [s.customer.id] : []));
    expect(ids.length - new Set(ids).size).toBeGreaterThan(0);
  });

  it("become received inquiries that keep their content type, text by default", () => {
    const html = SAMPLE_INQUIRIES.find((s) => s.content_type === "html")!;
    const plain = SAMPLE_INQUIRIES.find((s) => s.content_type === undefined)!;
    expect(toInquiry(html).content_type).toBe("html");
    expect(toInquiry(plain).content_type).toBe("text");
    const inquiry = toInquiry(SAMPLE_INQUIRIES[0]!, 1_700_000_000_000);
    expect(inquiry.envelope).toMatchObject({ channel: SAMPLE_INQUIRIES[0]!.channel, received_at: 1_700_000_000_000, reply_to: "dana@example.com" });
    expect(inquiry.envelope.customer).toEqual({ id: null, email: "dana@example.com", name: "Dana", tier: "premium" });
  });
});

describe("inquiries from the shared datasets", () => {
  afterEach(() => vi.unstubAllEnvs());

  it("returns the requested count, the same texts for the same seed and others for another seed", () => {
    const first = datasetInquiries("bitext", 50, 7);
    const again = datasetInquiries("bitext", 50, 7);
    const other = datasetInquiries("bitext", 50, 8);
    expect(first).toHaveLength(50);
    expect(again.map((i) => i.body)).toEqual(first.map((i) => i.body));
    expect(other.map((i) => i.body)).not.toEqual(first.map((i) => i.body));
    expect(new Set(first.map((i) => i.inquiry_id)).size).toBe(50);
    expect(new Set(first.map((i) => i.envelope.channel))).toEqual(new Set(["chat", "api"]));
    expect(datasetInquiries("bitext", 0)).toEqual([]);
  });

  it("maps each dataset's rows to its channel, tickets with subject and body", () => {
    const tickets = datasetInquiries("tickets", 30, 1);
    expect(tickets.every((i) => i.envelope.channel === "ticket" && i.body.trim() !== "")).toBe(true);
    expect(tickets.some((i) => i.subject !== null)).toBe(true);
    expect(tickets.some((i) => i.body.includes("\\n"))).toBe(false);
    expect(datasetInquiries("airline", 5, 1).every((i) => i.envelope.channel === "api" && i.subject === null)).toBe(true);
    expect(datasetInquiries("clinc150", 5, 1).every((i) => i.envelope.channel === "chat")).toBe(true);
  });

  it("repeats the shuffled rows when more are asked for than the file holds", () => {
    const clinc = datasetInquiries("clinc150", 30_000, 3);
    expect(clinc).toHaveLength(30_000);
    expect(new Set(clinc.map((i) => i.body)).size).toBeLessThan(30_000);
  });

  it(
    "held-out rows come with their true labels, deterministic for a seed, as the same texts the CSV holds",
    () => {
      const labeled = datasetInquiriesWithLabels("tickets", 40, 5);
      expect(labeled).toHaveLength(40);
      expect(datasetInquiriesWithLabels("tickets", 40, 5).map((l) => l.inquiry.body)).toEqual(labeled.map((l) => l.inquiry.body));
      for (const { labels } of labeled) {
        expect(labels.urgency ?? labels.department).toBeDefined();
        if (labels.urgency) expect(["low", "medium", "high"]).toContain(labels.urgency);
        expect(["en", "de", "es", "fr", "pt"]).toContain(labels.language);
      }
      // Python's csv module and this module's parser read the same rows.
      const parsed = new Set(datasetInquiries("tickets", 10_000, 0).map((i) => `${i.subject}\u0000${i.body}`));
      for (const { inquiry } of labeled) expect(parsed.has(`${inquiry.subject}\u0000${inquiry.body}`), inquiry.body.slice(0, 60)).toBe(true);

      const bitext = datasetInquiriesWithLabels("bitext", 60, 5);
      for (const { labels } of bitext) {
        expect(Object.keys(labels).every((task) => task === "intent" || task === "category")).toBe(true);
        expect(labels.intent ?? labels.category).toBeDefined();
      }
      expect(bitext.some((l) => l.labels.intent !== undefined) && bitext.some((l) => l.labels.category !== undefined)).toBe(true);
      expect(() => datasetInquiriesWithLabels("bitext", 1_000_000)).toThrow(/held-out rows asked for/);
    },
    120_000,
  );

  it("names the folder it looked in when the datasets are missing", () => {
    const missing = path.join(os.tmpdir(), "switchboard-no-datasets-here");
    vi.stubEnv("SWITCHBOARD_DATASETS", missing);
    expect(datasetsDir()).toBe(missing);
    expect(() => datasetInquiries("tickets", 5)).toThrow(path.join(missing, "tickets", "tickets.csv"));
    expect(() => datasetInquiriesWithLabels("airline", 5)).toThrow(/SWITCHBOARD_DATASETS/);
  });

  it("refuses an unknown dataset name and a count that is not a whole number", () => {
    expect(() => datasetInquiries("recipes" as DemoDataset, 5)).toThrow("unknown dataset recipes: one of bitext, tickets, airline, clinc150");
    expect(() => datasetInquiries("bitext", Number.NaN)).toThrow(/count must be a non-negative integer/);
  });
});
