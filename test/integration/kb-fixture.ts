import { randomUUID } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { Client } from "@elastic/elasticsearch";
import { REPO_ROOT } from "../../config/settings.js";
import { slotEmbedder, type TextEmbedder } from "../../knowledge-base/embedding.js";
import { openModelSlot, type ModelSlot } from "../../models/index.js";
import { quietLog } from "../support/topics.js";
import { python, tempModelsDir } from "./models-fixture.js";

/** A knowledge-base index name unique to one test run. */
export const kbIndexName = (label: string) => `test-kb-${label}-${randomUUID().slice(0, 8)}`;

export async function deleteIndex(client: Client, index: string): Promise<void> {
  await client.indices.delete({ index, ignore_unavailable: true });
}

export interface ExportedEmbedder {
  readonly embedder: TextEmbedder;
  /** Releases the model and removes its temporary directory. */
  dispose(): Promise<void>;
}

/**
 * The real `embedder` model, exported by the training package into a temporary models
 * directory (not registered: the shared registry is left alone).
 */
export async function exportedEmbedder(): Promise<ExportedEmbedder> {
  const modelsDir = tempModelsDir("kb-embedder");
  const remove = () => rmSync(modelsDir, { recursive: true, force: true });
  let slot: ModelSlot;
  try {
    const { stdout } = await python(["-m", "training", "export-embedder", "--no-register"], {
      SWITCHBOARD_MODELS_DIR: modelsDir,
    });
    const directory = /-> (.+)$/m.exec(stdout)?.[1];
    if (!directory) throw new Error(`export-embedder printed no version directory: ${stdout}`);
    slot = await openModelSlot(directory.trim(), quietLog);
  } catch (error) {
    remove();
    throw error;
  }
  return {
    embedder: slotEmbedder(slot),
    async dispose() {
      await slot.close();
      remove();
    },
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
