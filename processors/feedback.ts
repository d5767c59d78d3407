import { createHash } from "node:crypto";
import type { Prediction } from "../models/index.js";
import type { InquiryCleaned, LabelScore, PredictionFeedback } from "../schemas/types.generated.js";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** A prediction's ranked labels as the topic schemas carry them. */
export function labelScores(prediction: Prediction, limit = Infinity): LabelScore[] {
  return prediction.ranked.slice(0, limit).map(({ label, score }) => ({ label, probability: score }));
}

/** The text a model sees: subject and body, as the ticket models were trained. */
export function modelInput(inquiry: InquiryCleaned): string {
  return inquiry.subject?.trim() ? `${inquiry.subject}\n\n${inquiry.text}` : inquiry.text;
}

/** The id of an inquiry's prediction for a task: the same for the prediction and every label that judges it. */
export function predictionId(inquiryId: string, task: string): string {
  return sha256(`${inquiryId}\u0000${task}`).slice(0, 32);
}

/**
 * The `predictions.feedback` value of one prediction. Its id depends only on the inquiry and
 * the task, so a reprocessed inquiry and the human labels that come later refer to the same one.
 */
export function predictionFeedback(
  inquiry: InquiryCleaned,
  task: string,
  prediction: Prediction,
  input: string,
  values: Readonly<Record<string, number>> = {},
): PredictionFeedback {
  return {
    prediction_id: predictionId(inquiry.inquiry_id, task),
    inquiry_id: inquiry.inquiry_id,
    task,
    model: prediction.model,
    input_digest: sha256(input),
    features: {
      length: input.length,
      language: inquiry.language,
      values: {
        ...(prediction.activeFeatures === undefined ? {} : { active_features: prediction.activeFeatures }),
        ...(prediction.centroidCosine === undefined || Number.isNaN(prediction.centroidCosine)
          ? {}
          : { embedding_centroid_cosine: prediction.centroidCosine }),
        ...values,
      },
    },
    predicted_label: prediction.label,
    confidence: prediction.confidence,
    label: null,
    label_source: "model",
    occurred_at: Date.now(),
    stage: "production",
  };
}
