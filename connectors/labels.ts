import type pg from "pg";
import { predictionId } from "../processors/feedback.js";
import type { LabelSource, PredictionFeedback } from "../schemas/types.generated.js";
import { APP_SCHEMA } from "../storage/postgres.js";

/** The tasks a person can label: the models' four and route's department. */
export const LABEL_TASKS = ["intent", "category", "sentiment", "urgency", "department"] as const;
export type LabelTask = (typeof LABEL_TASKS)[number];

/** Route decides the department by rules, not a model; its "prediction" is named after that. */
export const ROUTE_MODEL = "route@rules";

export interface HumanLabel {
  readonly inquiryId: string;
  readonly task: LabelTask;
  readonly label: string;
  readonly source: Exclude<LabelSource, "model">;
  /** When the person gave it (ms since epoch); defaults to now. */
  readonly at?: number;
}

/** Why a label cannot be recorded yet; the caller answers 404 or 409 with it. */
export class UnlabelableError extends Error {
  constructor(
    readonly reason: "unknown_inquiry" | "not_predicted_yet",
    message: string,
  ) {
    super(message);
    this.name = "UnlabelableError";
  }
}

interface PredictionRow {
  model: string;
  predicted_label: string;
  confidence: number;
  input_digest: string;
  features: PredictionFeedback["features"];
}

/**
 * The `predictions.feedback` record of a human label: it names the prediction it judges (same
 * `prediction_id`) and repeats that prediction's fields, which the archive has, so it joins its
 * prediction whatever order the two reach a consumer in. A department label judges route's
 * decision, which has no model prediction record of its own.
 */
export async function labelRecord(pool: pg.Pool, label: HumanLabel): Promise<PredictionFeedback> {
  const at = label.at ?? Date.now();
  const base = {
    prediction_id: predictionId(label.inquiryId, label.task),
    inquiry_id: label.inquiryId,
    task: label.task,
  };
  const labelPart = { label: label.label, label_source: label.source, occurred_at: at, stage: "production" } as const;

  if (label.task === "department") {
    const { rows } = await pool.query<{ department: string; text: string | null; language: string | null }>(
      `SELECT d.department, i.text, i.language FROM ${APP_SCHEMA}.routing_decisions d
         LEFT JOIN ${APP_SCHEMA}.inquiries i USING (inquiry_id) WHERE d.inquiry_id = $1`,
      [label.inquiryId],
    );
    const decision = rows[0];
    if (!decision) throw await missing(pool, label);
    return {
      ...base,
      model: ROUTE_MODEL,
      input_digest: "",
      features: { length: decision.text?.length ?? 0, language: decision.language ?? "und", values: {} },
      predicted_label: decision.department,
      confidence: 1,
      ...labelPart,
    };
  }

  const { rows } = await pool.query<PredictionRow>(
    `SELECT model, predicted_label, confidence, input_digest, features FROM ${APP_SCHEMA}.predictions
      WHERE prediction_id = $1 AND predicted_at IS NOT NULL`,
    [base.prediction_id],
  );
  const prediction = rows[0];
  if (!prediction) throw await missing(pool, label);
  return {
    ...base,
    model: prediction.model,
    input_digest: prediction.input_digest,
    features: prediction.features,
    predicted_label: prediction.predicted_label,
    confidence: prediction.confidence,
    ...labelPart,
  };
}

async function missing(pool: pg.Pool, label: HumanLabel): Promise<UnlabelableError> {
  const { rowCount } = await pool.query(`SELECT 1 FROM ${APP_SCHEMA}.inquiries WHERE inquiry_id = $1`, [
    label.inquiryId,
  ]);
  return rowCount
    ? new UnlabelableError(
        "not_predicted_yet",
        `inquiry ${label.inquiryId} has no ${label.task} prediction yet; retry shortly`,
      )
    : new UnlabelableError("unknown_inquiry", `no inquiry ${label.inquiryId}`);
}
