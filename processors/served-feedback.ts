import type { ServedAnswer } from "../models/index.js";
import type { InquiryCleaned, PredictionFeedback } from "../schemas/types.generated.js";
import { predictionFeedback, predictionId } from "./feedback.js";

/**
 * The predictions.feedback records of one served answer: production's, and the shadow's when it
 * answered, each with its own latency_ms. The shadow's record has its own prediction id (labels
 * judge the production prediction, which the shadow evaluation joins by inquiry and task) and
 * stage `shadow`, so nothing downstream mistakes it for what was routed.
 */
export function servedFeedback(
  inquiry: InquiryCleaned,
  task: string,
  answer: ServedAnswer,
  input: string,
  values: Readonly<Record<string, number>> = {},
): PredictionFeedback[] {
  const { production, shadow } = answer;
  const records = [predictionFeedback(inquiry, task, production.prediction, input, { ...values, latency_ms: production.latencyMs })];
  if (shadow) {
    records.push({
      ...predictionFeedback(inquiry, task, shadow.prediction, input, { ...values, latency_ms: shadow.latencyMs }),
      prediction_id: predictionId(inquiry.inquiry_id, `${task}@shadow`),
      stage: "shadow",
    });
  }
  return records;
}
