import pg from "pg";
import { EMBEDDER_MODEL } from "../knowledge-base/embedding.js";
import { REGISTRY_SCHEMA, type ServedStage } from "../models/registry.js";
import { APP_SCHEMA } from "../storage/postgres.js";
import type { ConfidenceSums, LabelledPrediction } from "./statistics.js";
import type { QualityWindow } from "./window.js";

/**
 * What live quality reads from PostgreSQL: the model versions being served (the registry's
 * production and shadow versions) and, per version and window, the sums of its predictions'
 * confidences and its labelled predictions (the feedback sink's tables, 005 and 006).
 */

/** Who gave a label (labels.label_source). */
export type LabelSource = "agent" | "outcome" | "customer";

/**
 * Customer labels are left out by default: on a classifier's prediction a customer's rating only
 * ever confirms it (a template reply rated up confirms its intent; a rating down labels the
 * reply, not the intent: connectors/reply-rating.ts), so counting them would raise accuracy.
 */
export const DEFAULT_LABEL_SOURCES: readonly LabelSource[] = ["agent", "outcome"];

export interface LiveVersion {
  /** Registry model name; its predictions carry it as their task (see below). */
  readonly name: string;
  readonly version: string;
  /** name@version, as predictions.feedback spells it. */
  readonly model: string;
  readonly stage: ServedStage;
}

/**
 * The registry's production and shadow versions (of `name` only, when given), production first.
 * The embedder is left out: it makes no predictions of its own.
 */
export async function liveVersions(pool: pg.Pool, name?: string, schema = REGISTRY_SCHEMA): Promise<LiveVersion[]> {
  let rows: { model: string; version: string; stage: ServedStage }[];
  try {
    ({ rows } = await pool.query<{ model: string; version: string; stage: ServedStage }>(
      `SELECT model, version, stage FROM ${pg.escapeIdentifier(schema)}.versions
        WHERE stage IN ('production', 'shadow') AND model <> $1 AND ($2::text IS NULL OR model = $2)
        ORDER BY model, stage = 'shadow', version`,
      [EMBEDDER_MODEL, name ?? null],
    ));
  } catch (error) {
    const missing = (error as { code?: string }).code === "42P01" ? " (run `python -m training migrate`)" : "";
    throw new Error(`cannot read the served model versions from the registry (schema ${schema}): ${(error as Error).message}${missing}`, { cause: error });
  }
  return rows.map((r) => ({ name: r.model, version: r.version, stage: r.stage, model: `${r.model}@${r.version}` }));
}

export interface WindowRows {
  /** First and last prediction time in the window (null when it is empty). */
  readonly from: Date | null;
  readonly to: Date | null;
  readonly sums: ConfidenceSums;
  readonly labelled: LabelledPrediction[];
}

export interface ReadOptions {
  /** The window ends here (ms since the epoch). */
  readonly now: number;
  readonly labelSources: readonly LabelSource[];
}

const predictions = `${APP_SCHEMA}.feedback_predictions`;

/**
 * The rows of one window: the version's predictions of its stage (a version that was shadow
 * before its promotion counts only its production predictions once it is production), and of
 * them those whose resolved label (resolved_labels, the conflict rule) came from `labelSources`.
 *
 * A label judges the production prediction (its prediction id is the inquiry's and task's), so a
 * shadow prediction takes the label of production's prediction of the same inquiry and task.
 * Predictions are found by task, stage, model and time (feedback_predictions_stage): the task of
 * a registry model's predictions is its name, as every model-running processor records it.
 *
 * Joined as a whole, resolved_labels would sort every label ever given on each read, and labels
 * only grow; so the window's predictions that have a label at all are found first (a semi-join
 * the planner makes by hash or by index, whichever is cheaper), and only theirs are resolved, one
 * by one (OFFSET 0 keeps that a parameterised lookup on labels_resolution). On the stack's data a
 * day of one model (148,000 predictions, 840 labels) reads in 0.26 s, most of it the predictions.
 */
export async function readWindow(pool: pg.Pool, version: LiveVersion, window: QualityWindow, options: ReadOptions): Promise<WindowRows> {
  const params: unknown[] = [version.name, version.stage, version.model, new Date(options.now), [...options.labelSources]];
  let bounds: string;
  if (window.kind === "time") {
    params.push(new Date(options.now - window.durationMs));
    bounds = `AND p.predicted_at > $6`;
  } else {
    params.push(window.size);
    bounds = `ORDER BY p.predicted_at DESC LIMIT $6`;
  }
  const judged =
    version.stage === "production"
      ? `SELECT w.prediction_id`
      : `SELECT j.prediction_id FROM ${predictions} j
          WHERE j.inquiry_id = w.inquiry_id AND j.task = w.task AND j.stage = 'production' LIMIT 1`;
  const sql = `
    WITH w AS (
      SELECT p.prediction_id, p.inquiry_id, p.task, p.predicted_label, p.confidence, p.predicted_at
        FROM ${predictions} p
       WHERE p.task = $1 AND p.stage = $2 AND p.model = $3 AND p.predicted_at <= $4 ${bounds}
    ), labelled AS (
      SELECT r.label, w.predicted_label, w.confidence
        FROM w
        CROSS JOIN LATERAL (${judged}) AS judged (prediction_id)
        CROSS JOIN LATERAL (
          SELECT r.label, r.label_source FROM ${APP_SCHEMA}.resolved_labels r WHERE r.prediction_id = judged.prediction_id OFFSET 0
        ) r
       WHERE judged.prediction_id IN (SELECT prediction_id FROM ${APP_SCHEMA}.labels) AND r.label_source = ANY($5::text[])
    )
    SELECT count(*)::int AS n,
           coalesce(sum(confidence), 0)::float8 AS sum,
           coalesce(sum(confidence * (1 - confidence)), 0)::float8 AS sum_variance,
           min(predicted_at) AS first, max(predicted_at) AS last,
           (SELECT coalesce(json_agg(json_build_array(label, predicted_label, confidence)), '[]') FROM labelled) AS labelled
      FROM w`;
  let row: { n: number; sum: number; sum_variance: number; first: Date | null; last: Date | null; labelled: [string, string, number][] };
  try {
    row = (await pool.query(sql, params)).rows[0];
  } catch (error) {
    throw new Error(`cannot read the ${window.name} window of ${version.model} (${version.stage}): ${(error as Error).message}`, { cause: error });
  }
  return {
    from: row.first,
    to: row.last,
    sums: { n: row.n, sum: row.sum, sumVariance: row.sum_variance },
    labelled: row.labelled.map(([truth, predicted, confidence]) => ({ truth, predicted, confidence })),
  };
}
