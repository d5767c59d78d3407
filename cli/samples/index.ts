import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "../../config/settings.js";
import { seededRandom, shuffled } from "../../drift/seeded.js";
import type { Channel, ContentType, Customer, InquiryReceived } from "../../schemas/types.generated.js";

// ---------------------------------------------------------------------------------------------
// Inquiries written for the project: a fictional home-goods retailer's mail, tickets, chats and
// API calls, with the noise real traffic has (HTML, quoted replies, signatures, personal data).

export interface SampleInquiry {
  readonly channel: Channel;
  readonly customer: Partial<Customer>;
  readonly subject: string | null;
  readonly body: string;
  /** "text" when absent. */
  readonly content_type?: ContentType;
}

/** Realistic inquiries written for the project, for demos and tests. */
export const SAMPLE_INQUIRIES: readonly SampleInquiry[] = JSON.parse(
  readFileSync(new URL("./sample-inquiries.json", import.meta.url), "utf8"),
) as SampleInquiry[];

const NO_CUSTOMER: Customer = { id: null, email: null, name: null, tier: null };

/** A received inquiry as a connector would emit it. */
export function toInquiry(sample: SampleInquiry, receivedAt = Date.now()): InquiryReceived {
  const inquiryId = randomUUID();
  return {
    inquiry_id: inquiryId,
    envelope: {
      channel: sample.channel,
      source_id: `sample-${inquiryId}`,
      thread_id: null,
      customer: { ...NO_CUSTOMER, ...sample.customer },
      received_at: receivedAt,
      reply_to: sample.customer.email ?? null,
      metadata: { source: "samples" },
    },
    subject: sample.subject,
    body: sample.body,
    content_type: sample.content_type ?? "text",
  };
}

// ---------------------------------------------------------------------------------------------
// Rows of the public data sets (see ../shared/datasets/README.md) as received inquiries, for
// demos, end-to-end tests and the pipeline benchmark; with their true labels for evaluation.

/** The shared datasets this module reads: for demos, end-to-end tests and the pipeline benchmark. */
export const DEMO_DATASETS = ["bitext", "tickets", "airline", "clinc150"] as const;
export type DemoDataset = (typeof DEMO_DATASETS)[number];

/** True labels of a dataset row, named like the pipeline's prediction tasks. */
export interface InquiryLabels {
  readonly intent?: string;
  readonly category?: string;
  readonly sentiment?: string;
  readonly urgency?: string;
  readonly department?: string;
  /** ISO 639-1, where the dataset records it (tickets). */
  readonly language?: string;
  /** CLINC150's own intent, `oos` for its out-of-scope queries; not the retail intent set. */
  readonly clinc150_intent?: string;
}

export interface LabeledInquiry {
  readonly inquiry: InquiryReceived;
  readonly labels: InquiryLabels;
}

interface DatasetRow {
  readonly subject: string | null;
  readonly body: string;
}

interface Dataset {
  /** Path under the datasets folder, as training/datasets/*.py reads it. */
  readonly file: string;
  readonly read: (file: string) => DatasetRow[];
  /** The channel such a message would arrive on; `position` alternates channels deterministically. */
  readonly channel: (position: number) => Channel;
  /** Training target (training/tasks.py) whose held-out test rows carry a label → that label's name here. */
  readonly heldOut: Readonly<Record<string, keyof InquiryLabels>>;
}

const DATASETS: Readonly<Record<DemoDataset, Dataset>> = {
  bitext: {
    file: "bitext/bitext.csv",
    read: (file) => readCsv(file).map((r) => ({ subject: null, body: field(r, "instruction", file) })),
    channel: (position) => (position % 2 === 0 ? "chat" : "api"),
    heldOut: { intent: "intent", category: "category" },
  },
  tickets: {
    file: "tickets/tickets.csv",
    read: (file) =>
      readCsv(file).map((r) => {
        const subject = field(r, "subject", file);
        // Like training's ticket_text: some bodies carry escaped newlines, real traffic does not.
        return { subject: subject.trim() === "" ? null : subject, body: field(r, "body", file).replaceAll("\\n", "\n") };
      }),
    channel: () => "ticket",
    heldOut: { urgency: "urgency", department: "department" },
  },
  airline: {
    file: "sentiment/airline_tweets.csv",
    read: (file) => readCsv(file).map((r) => ({ subject: null, body: field(r, "text", file) })),
    channel: () => "api",
    heldOut: { sentiment: "sentiment" },
  },
  clinc150: {
    file: "clinc150/clinc150_train_val.json",
    read: (file) => {
      const parts = JSON.parse(readFileSync(file, "utf8")) as Record<string, [string, string][]>;
      return ["train", "val", "oos_train", "oos_val"].flatMap((part) => (parts[part] ?? []).map(([text]) => ({ subject: null, body: text })));
    },
    channel: () => "chat",
    heldOut: { "intent-clinc150": "clinc150_intent" },
  },
};

/** The shared datasets folder: SWITCHBOARD_DATASETS, else `../shared/datasets` next to the repository (as training/config.py). */
export function datasetsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.SWITCHBOARD_DATASETS || path.join(REPO_ROOT, "..", "shared", "datasets");
}

function datasetFile(name: DemoDataset): string {
  // Names come from the command line too, past the type system.
  if (!(DEMO_DATASETS as readonly string[]).includes(name)) throw new Error(`unknown dataset ${String(name)}: one of ${DEMO_DATASETS.join(", ")}`);
  const dir = datasetsDir();
  const file = path.join(dir, DATASETS[name].file);
  if (!existsSync(file)) {
    throw new Error(`dataset ${name}: ${file} does not exist; set SWITCHBOARD_DATASETS to the folder holding bitext/, tickets/, sentiment/ and clinc150/ (now ${dir})`);
  }
  return file;
}

const allRows = new Map<string, DatasetRow[]>();

/**
 * `count` rows of `dataset` as received inquiries, chosen by a shuffle seeded with `seed`: the same
 * arguments give the same texts in the same order (inquiry ids are fresh each call). Rows come
 * from the whole file, so these are for load and demos, not for measuring accuracy; when `count`
 * exceeds the rows, the shuffled rows repeat.
 */
export function datasetInquiries(dataset: DemoDataset, count: number, seed = 0): InquiryReceived[] {
  checkCount(count);
  const file = datasetFile(dataset);
  const rows = allRows.get(file) ?? DATASETS[dataset].read(file);
  allRows.set(file, rows);
  if (rows.length === 0) throw new Error(`dataset ${dataset}: ${file} has no rows`);
  const order = shuffled(rows.map((_, i) => i), seededRandom(seed));
  return Array.from({ length: count }, (_, i) => {
    const index = order[i % order.length]!;
    return datasetInquiry(dataset, rows[index]!, DATASETS[dataset].channel(i), `${dataset}-${index}`);
  });
}

/**
 * `count` held-out test rows of `dataset` as received inquiries with their true labels, chosen by
 * a shuffle seeded with `seed`. The test splits are training's own (deduplicated, stratified with
 * `splitSeed`; 0 is what `python -m training train` and `--defaults` use unless given `--seed`),
 * rebuilt by the training package itself so Node and Python cannot disagree on them.
 *
 * A dataset feeds more than one model (Bitext: intent and category; tickets: urgency and
 * department), each split on its own label, so a row's held-out test sets differ by task: a row
 * carries only the labels of the tasks for which it is held out, never one a model trained on.
 */
export function datasetInquiriesWithLabels(dataset: DemoDataset, count: number, seed = 0, { splitSeed = 0 } = {}): LabeledInquiry[] {
  checkCount(count);
  const rows = heldOutRows(dataset, splitSeed);
  if (count > rows.length) {
    throw new Error(`dataset ${dataset}: ${count} held-out rows asked for, the test splits (seed ${splitSeed}) hold ${rows.length}`);
  }
  const order = shuffled(rows.map((_, i) => i), seededRandom(seed));
  return order.slice(0, count).map((index, i) => {
    const row = rows[index]!;
    return { inquiry: datasetInquiry(dataset, row, DATASETS[dataset].channel(i), `${dataset}-test-${index}`), labels: row.labels };
  });
}

function datasetInquiry(dataset: DemoDataset, row: DatasetRow, channel: Channel, sourceId: string): InquiryReceived {
  return {
    inquiry_id: randomUUID(),
    envelope: {
      channel,
      source_id: sourceId,
      thread_id: null,
      customer: NO_CUSTOMER,
      received_at: Date.now(),
      reply_to: null,
      metadata: { source: "dataset", dataset },
    },
    subject: row.subject,
    body: row.body,
    content_type: "text",
  };
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0) throw new Error(`count must be a non-negative integer, got ${count}`);
}

// ---------------------------------------------------------------------------------------------
// Held-out rows from the training package.

interface HeldOutRow extends DatasetRow {
  readonly labels: InquiryLabels;
}

/**
 * Prints one JSON line per held-out row: its text and its label per training target whose test
 * split holds it (rows of several targets are merged by training's own dedupe key). Tickets come
 * back as the subject and body of the CSV row, as a connector would receive them.
 */
const HELD_OUT_SCRIPT = `
import csv, json, sys
from training.datasets import tickets
from training.datasets.base import dedupe_key
from training.tasks import TARGETS
dataset, seed, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
originals = {}
if dataset == "tickets":
    with tickets.SOURCE.resolve().open(newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            text = tickets.ticket_text(r["subject"], r["body"])
            originals.setdefault(text, {"subject": r["subject"], "body": r["body"].replace("\\\\n", "\\n"), "language": r["language"]})
rows = {}
for target in targets:
    for example in TARGETS[target].load(seed, None).test:
        row = rows.setdefault(dedupe_key(example.text), {"subject": "", "body": example.text, "labels": {}})
        row["labels"][target] = example.label
for row in rows.values():
    original = originals.get(row["body"])
    if original:
        row.update(subject=original["subject"], body=original["body"])
        row["labels"]["language"] = original["language"]
    print(json.dumps(row, ensure_ascii=False))
`;

const heldOut = new Map<string, HeldOutRow[]>();

function heldOutRows(dataset: DemoDataset, splitSeed: number): HeldOutRow[] {
  const file = datasetFile(dataset);
  const key = `${file}\u0000${splitSeed}`;
  const cached = heldOut.get(key);
  if (cached) return cached;
  const { heldOut: targets } = DATASETS[dataset];
  const python = pythonExecutable();
  let output: string;
  try {
    output = execFileSync(python, ["-c", HELD_OUT_SCRIPT, dataset, String(splitSeed), ...Object.keys(targets)], {
      cwd: REPO_ROOT,
      env: { ...process.env, SWITCHBOARD_DATASETS: datasetsDir(), PYTHONIOENCODING: "utf-8" },
      encoding: "utf8",
      maxBuffer: 256 << 20,
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim().split("\n").at(-1);
    throw new Error(`dataset ${dataset}: cannot rebuild training's held-out split with ${python}: ${stderr || (error as Error).message}`, { cause: error });
  }
  const rows = output
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const row = JSON.parse(line) as { subject: string; body: string; labels: Record<string, string> };
      const labels: Record<string, string> = {};
      for (const [name, value] of Object.entries(row.labels)) labels[targets[name] ?? name] = value;
      return { subject: row.subject.trim() === "" ? null : row.subject, body: row.body, labels: labels as InquiryLabels };
    });
  heldOut.set(key, rows);
  return rows;
}

/** The repository's virtual environment if there is one, else python3 on PATH (as cli/training.ts). */
function pythonExecutable(): string {
  const venv = path.join(REPO_ROOT, ".venv", "bin", "python3");
  return existsSync(venv) ? venv : "python3";
}

// ---------------------------------------------------------------------------------------------
// Plumbing.

/** One CSV field (quoted: may hold commas, doubled quotes and newlines) and what ends it. */
const CSV_FIELD = /(?:"([^"]*(?:""[^"]*)*)"|([^,"\r\n]*))(,|\r\n|\n|\r|$)/y;

/** RFC 4180 CSV as records keyed by the header. */
function readCsv(file: string): Record<string, string>[] {
  const text = readFileSync(file, "utf8");
  const records: string[][] = [];
  let record: string[] = [];
  for (let at = 0; at < text.length; ) {
    CSV_FIELD.lastIndex = at;
    const match = CSV_FIELD.exec(text);
    if (!match) throw new Error(`${file}: malformed CSV at character ${at}`);
    const [, quoted, plain, end] = match;
    record.push(quoted !== undefined ? quoted.replaceAll('""', '"') : plain!);
    at = CSV_FIELD.lastIndex;
    if (end !== ",") {
      records.push(record);
      record = [];
      if (end === "") break;
    }
  }
  const [header, ...rows] = records;
  if (!header) throw new Error(`${file} is empty`);
  return rows.map((cells) => Object.fromEntries(header.map((name, i) => [name, cells[i] ?? ""])));
}

function field(record: Record<string, string>, name: string, file: string): string {
  const value = record[name];
  if (value === undefined) throw new Error(`${file} has no column ${name}`);
  return value;
}
