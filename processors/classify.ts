import type { InquiryClassified } from "../schemas/types.generated.js";
import type { ProcessorDeclaration } from "../streams/topology.js";
import { labelScores, modelInput, predictionFeedback } from "./feedback.js";
import { outputOf, reading } from "../streams/ports.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../streams/processor.js";

const TOP_K = 3;

/**
 * Intent and category of each cleaned inquiry from the production `intent` and `category`
 * models. An intent less likely than the model's calibrated out-of-scope operating point (or the
 * configured threshold when the model has none) is flagged out of scope, for a human to take.
 */
export async function classify(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
): Promise<ProcessorImplementation> {
  const classifiedOut = outputOf(deps.topology, declaration, "inquiries.classified");
  const feedbackOut = outputOf(deps.topology, declaration, "predictions.feedback");
  const intent = await deps.resources.productionModel("intent");
  const category = await deps.resources.productionModel("category");

  return {
    process: reading(deps.topology, declaration, "inquiries.cleaned", async ({ value: inquiry }) => {
      const input = modelInput(inquiry);
      const [intentPrediction, categoryPrediction] = await Promise.all([
        intent.predict(input),
        category.predict(input),
      ]);
      const threshold = intent.current.manifest.operating_point?.threshold ?? deps.config.outOfScopeThreshold;
      const classified: InquiryClassified = {
        inquiry_id: inquiry.inquiry_id,
        intent: intentPrediction.label,
        category: categoryPrediction.label,
        confidence: intentPrediction.confidence,
        out_of_scope: intentPrediction.confidence < threshold,
        top_k: labelScores(intentPrediction, TOP_K),
        model: intentPrediction.model,
        classified_at: Date.now(),
      };
      return [
        classifiedOut(classified),
        feedbackOut(predictionFeedback(inquiry, "intent", intentPrediction, input)),
        feedbackOut(predictionFeedback(inquiry, "category", categoryPrediction, input)),
      ];
    }),
  };
}
