import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "../../config/settings.js";

const run = promisify(execFile);

export interface HeldOutRow {
  readonly text: string;
  readonly label: string;
}

/** The test split a version was trained beside, exactly as training rebuilds it. */
export interface HeldOut {
  readonly rows: readonly HeldOutRow[];
  /** Label of the out-of-scope rows (CLINC150): never trained on, only used at the operating point. */
  readonly oosLabel: string;
  /** Most frequent training label and its share: the majority-class baseline. */
  readonly majority: { readonly label: string; readonly share: number };
}

/**
 * The split comes from training's own code (`training.evaluation.held_out_split`, which also
 * proves by digest that the test rows are the ones the version was evaluated on), so Node and
 * Python can never disagree on it; the served intent model's out-of-scope test rows, which are
 * CLINC150's and not its split's, are appended (`oos_test_rows`). Rows travel as JSONL through a
 * temporary file.
 */
const EXPORT_SCRIPT = `
import json, sys
from collections import Counter
from training.datasets.base import OOS_LABEL
from training.evaluation import held_out_split, oos_test_rows
with open(sys.argv[1], encoding="utf-8") as handle:
    manifest = json.load(handle)
split = held_out_split(manifest)
label, count = Counter(r.label for r in split.train).most_common(1)[0]
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write(json.dumps({"oos_label": OOS_LABEL, "majority": {"label": label, "share": count / len(split.train)}}) + "\\n")
    extra = [] if any(r.label == OOS_LABEL for r in split.test) else oos_test_rows(manifest, split)
    for r in split.test + extra:
        out.write(json.dumps({"text": r.text, "label": r.label}, ensure_ascii=False) + "\\n")
`;

/** Held-out test rows of the version in `versionDir` (its manifest names dataset, seed, limit and test digest). */
export async function heldOutRows(versionDir: string, env: NodeJS.ProcessEnv = process.env): Promise<HeldOut> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), "switchboard-held-out-"));
  const file = path.join(scratch, "test.jsonl");
  try {
    try {
      await run("python3", ["-c", EXPORT_SCRIPT, path.join(versionDir, "manifest.json"), file], {
        cwd: REPO_ROOT,
        env,
        maxBuffer: 16 << 20,
      });
    } catch (error) {
      const stderr = String((error as { stderr?: string }).stderr ?? "")
        .trim()
        .split("\n")
        .at(-1);
      throw new Error(`cannot rebuild the held-out split of ${versionDir}: ${stderr || (error as Error).message}`, {
        cause: error,
      });
    }
    const [header, ...lines] = (await readFile(file, "utf8")).split("\n").filter((line) => line.length > 0);
    const meta = JSON.parse(header!) as { oos_label: string; majority: { label: string; share: number } };
    return {
      oosLabel: meta.oos_label,
      majority: meta.majority,
      rows: lines.map((line) => JSON.parse(line) as HeldOutRow),
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** CLINC150's official test split, or why it cannot be read here. */
export type OfficialTest =
  | { readonly rows: readonly HeldOutRow[]; readonly oosLabel: string; readonly sha256: string }
  | { readonly absent: string };

const OFFICIAL_TEST_SCRIPT = `
import json, sys
from training.datasets.base import OOS_LABEL
from training.datasets import clinc150
try:
    rows = clinc150.official_test()
except (OSError, ValueError) as error:
    print(json.dumps({"absent": f"{type(error).__name__}: {error}"}))
    sys.exit(0)
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write(json.dumps({"oos_label": OOS_LABEL, "sha256": clinc150.OFFICIAL.url_sha256}) + "\\n")
    for r in rows:
        out.write(json.dumps({"text": r.text, "label": r.label}, ensure_ascii=False) + "\\n")
print(json.dumps({"rows": len(rows)}))
`;

/**
 * The official test split of CLINC150 (4,500 in-scope and 1,000 out-of-scope queries, without
 * any that repeat a training query) from the canonical file, pinned by sha256 in
 * `training/datasets/clinc150.py` (`OFFICIAL`): a local copy, the cache's, or a download.
 */
export async function clinc150OfficialTest(env: NodeJS.ProcessEnv = process.env): Promise<OfficialTest> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), "switchboard-clinc150-"));
  const file = path.join(scratch, "official-test.jsonl");
  try {
    const { stdout } = await run("python3", ["-c", OFFICIAL_TEST_SCRIPT, file], {
      cwd: REPO_ROOT,
      env,
      maxBuffer: 16 << 20,
    });
    const status = JSON.parse(stdout.trim().split("\n").at(-1)!) as { absent?: string };
    if (status.absent !== undefined) return { absent: status.absent };
    const [header, ...lines] = (await readFile(file, "utf8")).split("\n").filter((line) => line.length > 0);
    const meta = JSON.parse(header!) as { oos_label: string; sha256: string };
    return { oosLabel: meta.oos_label, sha256: meta.sha256, rows: lines.map((line) => JSON.parse(line) as HeldOutRow) };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
