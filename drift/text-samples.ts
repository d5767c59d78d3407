import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import type pg from "pg";
import { REPO_ROOT } from "../config/settings.js";

/**
 * The two sides of the text-drift test (drift/text-drift.ts): a seeded sample of the texts a
 * version was trained on, which only the training package can rebuild (it owns the data sets
 * and proves the split unchanged), and the version's most recent live inputs from the archive.
 */

const run = promisify(execFile);

/** Training texts of the version in `directory`, from `python -m training.reference_texts`. */
export async function referenceTexts(python: string, directory: string, rows: number): Promise<string[]> {
  try {
    const { stdout } = await run(python, ["-m", "training.reference_texts", path.join(directory, "manifest.json"), "--rows", String(rows)], {
      cwd: REPO_ROOT,
      maxBuffer: 64 << 20,
      env: { ...process.env, HF_HUB_OFFLINE: "1" },
    });
    const texts: unknown = JSON.parse(stdout);
    if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) throw new Error("the output is not a JSON array of texts");
    return texts as string[];
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`cannot sample the training texts of ${directory}: ${stderr || (error as Error).message}`, { cause: error });
  }
}

export interface LiveTexts {
  readonly texts: readonly string[];
  readonly from: number;
  readonly to: number;
}

/**
 * The latest `rows` inputs `model` (name@version) answered, as the model saw them (subject and
 * text, processors/feedback.ts modelInput), from the feedback sink's predictions and the archive.
 */
export async function liveTexts(pool: pg.Pool, task: string, model: string, rows: number): Promise<LiveTexts> {
  // By task, model and time: the order of the feedback_predictions_model index, so the latest rows are read, not every row.
  const { rows: found } = await pool.query<{ subject: string | null; text: string; predicted_at: Date }>(
    `SELECT i.subject, i.text, p.predicted_at
       FROM switchboard.feedback_predictions p JOIN switchboard.inquiries i USING (inquiry_id)
      WHERE p.task = $1 AND p.model = $2 AND p.predicted_at IS NOT NULL
      ORDER BY p.predicted_at DESC LIMIT $3`,
    [task, model, rows],
  );
  const times = found.map((r) => r.predicted_at.getTime());
  return {
    texts: found.map((r) => (r.subject?.trim() ? `${r.subject}\n\n${r.text}` : r.text)),
    from: times.length ? Math.min(...times) : 0,
    to: times.length ? Math.max(...times) : 0,
  };
}
