import type pg from "pg";
import type { LabelSource, PredictionStage } from "../schemas/types.generated.js";
import { APP_SCHEMA } from "../storage/postgres.js";
import { PREDICTION_COLUMNS, archiveTable, inTransaction, upsert, type PredictionFields } from "./archive-store.js";

/**
 * The feedback sink's tables (storage/migrations/005_feedback.sql, 006_feedback_stage.sql) and the batch write: one
 * PostgreSQL transaction, one multi-row statement per table. Labels are only ever inserted (a
 * replayed label is the same row, by its digest, and is skipped); a prediction is replaced only
 * by a strictly newer one. The conflict rule between labels is the `resolved_labels` view.
 */

/** One row per prediction: the archive's fields without its newest-label columns, and its stage. */
export interface FeedbackPredictionRow extends PredictionFields {
  /** production: the version that answered; shadow: a version scoring the same input beside it, never routed. */
  readonly stage: PredictionStage;
}

export interface LabelRow {
  readonly label_id: string;
  readonly prediction_id: string;
  readonly inquiry_id: string;
  readonly task: string;
  readonly label: string;
  readonly label_source: Exclude<LabelSource, "model">;
  readonly labeled_at: string;
  readonly judged_model: string;
  readonly judged_label: string;
}

const newerPrediction =
  "excluded.predicted_at IS NOT NULL AND (stored.predicted_at IS NULL OR excluded.predicted_at > stored.predicted_at)";

const FEEDBACK_PREDICTION_COLUMNS = { ...PREDICTION_COLUMNS, stage: "text" } as const;

export const FEEDBACK_PREDICTIONS = archiveTable<FeedbackPredictionRow>({
  name: "feedback_predictions",
  key: "prediction_id",
  columns: FEEDBACK_PREDICTION_COLUMNS,
  indexed: ["prediction_id", "inquiry_id", "task", "model"],
  onConflict: `DO UPDATE SET ${Object.keys(FEEDBACK_PREDICTION_COLUMNS)
    .filter((column) => column !== "prediction_id")
    .map((column) => `${column} = excluded.${column}`)
    .join(", ")} WHERE ${newerPrediction}`,
});

export const LABELS = archiveTable<LabelRow>({
  name: "labels",
  key: "label_id",
  columns: {
    label_id: "text",
    prediction_id: "text",
    inquiry_id: "text",
    task: "text",
    label: "text",
    label_source: "text",
    labeled_at: "timestamptz",
    judged_model: "text",
    judged_label: "text",
  },
  indexed: ["label_id", "prediction_id", "task"],
  // Every label is kept as it came: the same label again is the same row.
  onConflict: "DO NOTHING",
});

export interface FeedbackRows {
  readonly predictions: readonly FeedbackPredictionRow[];
  readonly labels: readonly LabelRow[];
}

/** What a batch wrote: a prediction already as new, or a label already stored, is not counted. */
export interface FeedbackWritten {
  readonly predictions: number;
  /** The labels stored for the first time, by task and source. */
  readonly labels: ReadonlyArray<Pick<LabelRow, "task" | "label_source">>;
}

export async function writeFeedback(db: pg.Pool, rows: FeedbackRows): Promise<FeedbackWritten> {
  return inTransaction(db, async (client) => ({
    predictions: await upsert(client, FEEDBACK_PREDICTIONS, rows.predictions),
    labels: await insertLabels(client, rows.labels),
  }));
}

/** The labels' insert, answering which were new (a label already stored is skipped and not returned). */
async function insertLabels(client: pg.PoolClient, rows: readonly LabelRow[]): Promise<FeedbackWritten["labels"]> {
  if (rows.length === 0) return [];
  // In key order, as upsert does, so concurrent batches cannot deadlock.
  const ordered = [...rows].sort((a, b) => (a.label_id < b.label_id ? -1 : a.label_id > b.label_id ? 1 : 0));
  const { rows: inserted } = await client.query<Pick<LabelRow, "task" | "label_source">>({
    name: "feedback-insert-labels",
    text: `${LABELS.upsert} RETURNING task, label_source`,
    values: [JSON.stringify(ordered)],
  });
  return inserted;
}

export interface ResolvedLabel {
  readonly prediction_id: string;
  readonly task: string;
  readonly label: string;
  readonly label_source: Exclude<LabelSource, "model">;
  readonly labeled_at: Date;
  readonly judged_model: string;
  readonly judged_label: string;
  readonly label_count: number;
  readonly disputed: boolean;
}

/** The label the conflict rule chose for each of these predictions (none for an unlabelled one). */
export async function resolvedLabels(db: pg.Pool, predictionIds: readonly string[]): Promise<Map<string, ResolvedLabel>> {
  const { rows } = await db.query<ResolvedLabel>(
    `SELECT prediction_id, task, label, label_source, labeled_at, judged_model, judged_label, label_count::int AS label_count, disputed
       FROM ${APP_SCHEMA}.resolved_labels WHERE prediction_id = ANY($1)`,
    [predictionIds],
  );
  return new Map(rows.map((row) => [row.prediction_id, row]));
}
