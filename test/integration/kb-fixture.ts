import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Client } from "@elastic/elasticsearch";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { slotEmbedder, type TextEmbedder } from "../../knowledge-base/embedding.js";
import { openModelSlot, type ModelSlot } from "../../models/index.js";
import { quietLog } from "../support/topics.js";
import { python } from "./models-fixture.js";

/** A knowledge-base index name unique to one test run. */
export const kbIndexName = (label: string) => `test-kb-${label}-${randomUUID().slice(0, 8)}`;

export async function deleteIndex(client: Client, index: string): Promise<void> {
  await client.indices.delete({ index, ignore_unavailable: true });
}

export interface ExportedEmbedder {
  readonly embedder: TextEmbedder;
  /** The version directory it was loaded from. */
  readonly directory: string;
  /** Releases the model (the exported version stays cached for the next run). */
  dispose(): Promise<void>;
}

/** The embedder kinds of `python -m training export-embedder --kind`. */
export const EMBEDDER_KINDS = ["static", "static-distill", "minilm", "minilm-int8"] as const;
export type EmbedderKind = (typeof EMBEDDER_KINDS)[number];

/**
 * Where exported embedders are kept (not registered: the shared registry is left alone): the
 * stack's models folder, where `prepare` (the main job, the end-to-end tests) already exported
 * the production static embedder. The static kinds take minutes to distil; an export with the
 * recipe of a version already there reuses it in seconds.
 */
export const EMBEDDER_CACHE_DIR = process.env.SWITCHBOARD_TEST_EMBEDDERS ?? loadConfig().modelsDir;

/** Exports (or reuses) an embedder of `kind` into EMBEDDER_CACHE_DIR; returns its version directory. */
export async function exportEmbedder(kind: EmbedderKind): Promise<string> {
  mkdirSync(EMBEDDER_CACHE_DIR, { recursive: true });
  const { stdout } = await python(["-m", "training", "export-embedder", "--kind", kind, "--no-register"], {
    SWITCHBOARD_MODELS_DIR: EMBEDDER_CACHE_DIR,
  });
  const directory = /-> (.+)$/m.exec(stdout)?.[1];
  if (!directory) throw new Error(`export-embedder printed no version directory: ${stdout}`);
  return directory.trim();
}

/** The kind the knowledge-base tests use: the one `defaults` puts in production, unless SWITCHBOARD_TEST_EMBEDDER names another (to compare). */
const TEST_KIND: EmbedderKind = (() => {
  const kind = process.env.SWITCHBOARD_TEST_EMBEDDER ?? "static";
  if (!(EMBEDDER_KINDS as readonly string[]).includes(kind))
    throw new Error(`SWITCHBOARD_TEST_EMBEDDER=${kind}: one of ${EMBEDDER_KINDS.join(", ")}`);
  return kind as EmbedderKind;
})();

/** The real `embedder` model of `kind`, loaded. */
export async function exportedEmbedder(kind: EmbedderKind = TEST_KIND): Promise<ExportedEmbedder> {
  const directory = await exportEmbedder(kind);
  const slot: ModelSlot = await openModelSlot(directory, quietLog);
  return {
    embedder: slotEmbedder(slot),
    directory,
    dispose: () => slot.close(),
  };
}

export interface LabelledRequest {
  readonly text: string;
  readonly category: string;
  readonly intent: string;
}

/**
 * `size` Bitext rows spread evenly over the file (it is sorted by intent, so every intent is
 * represented), starting at row `offset`. Bitext's `{{Order Number}}`-style placeholders are
 * removed: live inquiries carry the values, which `clean` extracts as entities.
 */
export function bitextSample(size: number, offset: number): LabelledRequest[] {
  const root = process.env.SWITCHBOARD_DATASETS ?? path.join(REPO_ROOT, "..", "shared", "datasets");
  const [header, ...rows] = parseCsv(readFileSync(path.join(root, "bitext", "bitext.csv"), "utf8"));
  const column = (name: string) => header!.indexOf(name);
  const [text, category, intent] = [column("instruction"), column("category"), column("intent")];
  const step = Math.floor(rows.length / size);
  return Array.from({ length: size }, (_, i) => rows[offset + i * step]!).map((row) => ({
    text: row[text]!.replace(/\{\{[^}]*\}\}/g, " ")
      .replace(/\s+/g, " ")
      .trim(),
    category: row[category]!,
    intent: row[intent]!,
  }));
}

/** RFC 4180: quoted fields with doubled quotes, CRLF or LF line ends. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += c;
    }
  }
  if (field !== "" || row.length > 0) rows.push([...row, field]);
  return rows;
}
