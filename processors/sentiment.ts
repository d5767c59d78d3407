import { SentimentValues, type InquirySentiment, type Sentiment } from "../schemas/types.generated.js";
import type { ProcessorDeclaration } from "../streams/topology.js";
import { labelScores, modelInput } from "./feedback.js";
import { servedFeedback } from "./served-feedback.js";
import { outputOf, reading } from "../streams/ports.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../streams/processor.js";

const SENTIMENTS: readonly string[] = SentimentValues;

/** Sentiment of each cleaned inquiry from the production `sentiment` model (a shadow version's to predictions.feedback only). */
export async function sentiment(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
): Promise<ProcessorImplementation> {
  const sentimentOut = outputOf(deps.topology, declaration, "inquiries.sentiment");
  const feedbackOut = outputOf(deps.topology, declaration, "predictions.feedback");
  const model = await deps.resources.productionModel("sentiment");

  return {
    process: reading(deps.topology, declaration, "inquiries.cleaned", async ({ value: inquiry }) => {
      const input = modelInput(inquiry);
      const answer = await model.predict(input);
      const { prediction } = answer.production;
      if (!SENTIMENTS.includes(prediction.label)) {
        throw new Error(`${prediction.model} predicts "${prediction.label}", not one of ${SENTIMENTS.join(", ")}`);
      }
      const scored: InquirySentiment = {
        inquiry_id: inquiry.inquiry_id,
        label: prediction.label as Sentiment,
        score: prediction.confidence,
        probabilities: labelScores(prediction),
        model: prediction.model,
        scored_at: Date.now(),
      };
      return [sentimentOut(scored), ...servedFeedback(inquiry, "sentiment", answer, input).map((record) => feedbackOut(record))];
    }),
  };
}
