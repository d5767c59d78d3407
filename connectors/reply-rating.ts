import { createHash } from "node:crypto";
import type pg from "pg";
import { predictionId } from "../processors/feedback.js";
import type { PredictionFeedback, ResponseStrategy } from "../schemas/types.generated.js";
import { APP_SCHEMA } from "../storage/postgres.js";
import { UnlabelableError, labelRecord } from "./labels.js";

/**
 * A customer's thumbs up or down on the reply Switchboard drafted, as labels (label_source
 * customer) on predictions.feedback. What it means:
 *
 * - It always judges the reply: task `response`, whose "prediction" is that respond's reply
 *   (model `respond@<strategy>`) helps, `predicted_label` "helpful"; the label is "helpful"
 *   (up) or "unhelpful" (down). Live quality reads it per strategy.
 * - Up on a template reply also confirms the intent: a template is the intent's own article,
 *   so a reply that helped was drafted for the right intent (an intent label equal to the
 *   prediction). A retrieval or LLM reply may help whatever the intent was, so it confirms none.
 * - Down never labels the intent: the customer says the reply did not help, not which part was
 *   wrong (the intent, the article, or the policy itself), and "not this intent" is no class a
 *   model can learn. It stays a response label, which the conflict rule ranks below agents and
 *   outcomes.
 */
export type Rating = "up" | "down";

export const RESPONSE_TASK = "response";
export const HELPFUL = "helpful";
export const UNHELPFUL = "unhelpful";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** Why a rating cannot be recorded; the API answers 404 or 409 with it. */
export class UnratableError extends Error {
  constructor(
    readonly reason: "unknown_inquiry" | "no_reply_yet",
    message: string,
  ) {
    super(message);
    this.name = "UnratableError";
  }
}

/** The records a rating gives: the response label, and on a template reply rated up the intent confirmation. */
export async function replyRatingRecords(pool: pg.Pool, inquiryId: string, rating: Rating, at = Date.now()): Promise<PredictionFeedback[]> {
  const { rows } = await pool.query<{ strategy: ResponseStrategy; text: string; language: string | null }>(
    `SELECT r.strategy, r.text, i.language FROM ${APP_SCHEMA}.responses r
       LEFT JOIN ${APP_SCHEMA}.inquiries i USING (inquiry_id) WHERE r.inquiry_id = $1`,
    [inquiryId],
  );
  const reply = rows[0];
  if (!reply) {
    const { rowCount } = await pool.query(`SELECT 1 FROM ${APP_SCHEMA}.inquiries WHERE inquiry_id = $1`, [inquiryId]);
    throw rowCount
      ? new UnratableError("no_reply_yet", `inquiry ${inquiryId} has no drafted reply yet; a customer rates a reply`)
      : new UnratableError("unknown_inquiry", `no inquiry ${inquiryId}`);
  }
  const records: PredictionFeedback[] = [
    {
      prediction_id: predictionId(inquiryId, RESPONSE_TASK),
      inquiry_id: inquiryId,
      task: RESPONSE_TASK,
      model: `respond@${reply.strategy}`,
      input_digest: sha256(reply.text),
      features: { length: reply.text.length, language: reply.language ?? "und", values: {} },
      predicted_label: HELPFUL,
      confidence: 1,
      label: rating === "up" ? HELPFUL : UNHELPFUL,
      label_source: "customer",
      occurred_at: at,
      stage: "production",
    },
  ];
  if (rating === "up" && reply.strategy === "template") {
    const intent = await pool.query<{ predicted_label: string }>(
      `SELECT predicted_label FROM ${APP_SCHEMA}.predictions WHERE prediction_id = $1 AND predicted_at IS NOT NULL`,
      [predictionId(inquiryId, "intent")],
    );
    const predicted = intent.rows[0]?.predicted_label;
    // Without the intent prediction archived (it always is before a reply, but may lag), the reply is still rated.
    if (predicted !== undefined) {
      try {
        records.push(await labelRecord(pool, { inquiryId, task: "intent", label: predicted, source: "customer", at }));
      } catch (error) {
        if (!(error instanceof UnlabelableError)) throw error;
      }
    }
  }
  return records;
}
