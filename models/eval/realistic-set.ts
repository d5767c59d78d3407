/**
 * The realistic evaluation set (training/datasets/realistic: inquiries.jsonl, labels.json and
 * LABELLING.md), read and checked against its label spaces as training/datasets/realistic.py
 * does; and each row as the connector would have received it, on the set's fixed date.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { REPO_ROOT } from "../../config/settings.js";
import { toInquiry } from "../../cli/samples/index.js";
import {
  ChannelValues,
  ContentTypeValues,
  SentimentValues,
  UrgencyLevelValues,
  type InquiryReceived,
} from "../../schemas/types.generated.js";

export const REALISTIC_DIR = path.join(REPO_ROOT, "training", "datasets", "realistic");
export const REALISTIC_DATA = path.join(REALISTIC_DIR, "inquiries.jsonl");
export const REALISTIC_LABELS = path.join(REALISTIC_DIR, "labels.json");

const nonEmpty = z.string().trim().min(1);

const labelSpaceSchema = z.object({
  received_at: z.iso.datetime(),
  out_of_scope: nonEmpty,
  intents: z.record(nonEmpty, nonEmpty),
  sentiments: z.array(z.enum(SentimentValues)),
  urgencies: z.array(z.enum(UrgencyLevelValues)),
  departments: z.array(nonEmpty).min(1),
  channels: z.array(z.enum(ChannelValues)),
  languages: z.array(z.string().regex(/^[a-z]{2}$/)).min(1),
  tiers: z.array(nonEmpty),
  shares: z.object({
    min_rows: z.number().int().positive(),
    min_not_english: z.number().min(0).max(1),
    out_of_scope: z.tuple([z.number(), z.number()]),
  }),
});
export type LabelSpace = z.infer<typeof labelSpaceSchema>;

const rowSchema = z.strictObject({
  id: nonEmpty,
  channel: z.enum(ChannelValues),
  language: nonEmpty,
  tier: nonEmpty.optional(),
  subject: z.string().nullable(),
  body: nonEmpty,
  content_type: z.enum(ContentTypeValues).optional(),
  intent: nonEmpty,
  category: nonEmpty.nullable(),
  sentiment: z.enum(SentimentValues),
  urgency: z.enum(UrgencyLevelValues),
  department: nonEmpty,
  note: nonEmpty.optional(),
});
export type RealisticRow = z.infer<typeof rowSchema>;

export interface RealisticSet {
  readonly rows: readonly RealisticRow[];
  readonly labels: LabelSpace;
  /** sha256 of inquiries.jsonl: which edition of the set a report is about. */
  readonly sha256: string;
  /** When every row counts as received (deadlines such as "by Friday" are relative to it). */
  readonly receivedAt: number;
}

/** The problems of one parsed row against the label spaces (empty when it fits). */
export function rowProblems(row: RealisticRow, labels: LabelSpace): string[] {
  const problems: string[] = [];
  const oneOf = (what: string, value: string, allowed: readonly string[]) => {
    if (!allowed.includes(value)) problems.push(`${what} "${value}" is not one of ${allowed.join(", ")}`);
  };
  oneOf("channel", row.channel, labels.channels);
  oneOf("language", row.language, labels.languages);
  oneOf("sentiment", row.sentiment, labels.sentiments);
  oneOf("urgency", row.urgency, labels.urgencies);
  oneOf("department", row.department, labels.departments);
  if (row.tier !== undefined) oneOf("tier", row.tier, labels.tiers);
  if (row.intent === labels.out_of_scope) {
    if (row.category !== null) problems.push("an out-of-scope inquiry has no category (null)");
  } else if (!(row.intent in labels.intents)) {
    problems.push(`intent "${row.intent}" is neither a served intent nor "${labels.out_of_scope}"`);
  } else if (row.category !== labels.intents[row.intent]) {
    problems.push(`category "${row.category}" is not ${row.intent}'s (${labels.intents[row.intent]})`);
  }
  return problems;
}

/** Reads and checks the set; throws listing every row that does not fit. */
export async function loadRealisticSet(
  dataFile = REALISTIC_DATA,
  labelsFile = REALISTIC_LABELS,
): Promise<RealisticSet> {
  const labels = labelSpaceSchema.parse(JSON.parse(await readFile(labelsFile, "utf8")));
  const bytes = await readFile(dataFile);
  const rows: RealisticRow[] = [];
  const problems: string[] = [];
  const ids = new Set<string>();
  bytes
    .toString("utf8")
    .split("\n")
    .forEach((line, index) => {
      if (line.trim() === "") return;
      const where = `${path.basename(dataFile)}:${index + 1}`;
      const parsed = rowSchema.safeParse(JSON.parse(line));
      if (!parsed.success) {
        problems.push(...parsed.error.issues.map((issue) => `${where}: ${issue.path.join(".")}: ${issue.message}`));
        return;
      }
      const found = rowProblems(parsed.data, labels);
      if (ids.has(parsed.data.id)) found.push(`id "${parsed.data.id}" repeats an earlier row`);
      ids.add(parsed.data.id);
      if (found.length > 0) problems.push(...found.map((p) => `${where}: ${p}`));
      else rows.push(parsed.data);
    });
  if (problems.length > 0)
    throw new Error(`the realistic set does not fit its label spaces:\n  ${problems.join("\n  ")}`);
  return {
    rows,
    labels,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    receivedAt: Date.parse(labels.received_at),
  };
}

/** A row as its connector would have received it (the tier on the customer, the set's date). */
export function receivedInquiry(row: RealisticRow, receivedAt: number): InquiryReceived {
  return toInquiry(
    {
      channel: row.channel,
      customer: { id: `realistic-${row.id}`, ...(row.tier !== undefined && { tier: row.tier }) },
      subject: row.subject,
      body: row.body,
      ...(row.content_type !== undefined && { content_type: row.content_type }),
    },
    receivedAt,
  );
}
