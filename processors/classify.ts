import type { InquiryClassified } from "../schemas/types.generated.js";
import type { ProcessorDeclaration } from "../streams/topology.js";
import { labelScores, modelInput } from "./feedback.js";
import { servedFeedback } from "./served-feedback.js";
import { outputOf, reading } from "../streams/ports.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../streams/processor.js";

const TOP_K = 3;

/**
 * Intent and category of each cleaned inquiry from the production `intent` and `category`
 * models. An intent less likely than the model's calibrated out-of-scope operating point (or the
 * configured threshold when the model has none) is flagged out of scope, for a human to take.
 * The operating point is the answering version's: a swap during the call cannot mix two versions.
 * A shadow version's predictions go to predictions.feedback only.
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
      const [intentAnswer, categoryAnswer] = await Promise.all([intent.predict(input), category.predict(input)]);
      const { prediction: intentPrediction, version: intentVersion } = intentAnswer.production;
      const categoryPrediction = categoryAnswer.production.prediction;
      const threshold = intentVersion.manifest.operating_point?.threshold ?? deps.config.outOfScopeThreshold;
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
        ...servedFeedback(inquiry, "intent", intentAnswer, input).map((record) => feedbackOut(record)),
        ...servedFeedback(inquiry, "category", categoryAnswer, input).map((record) => feedbackOut(record)),
      ];
    }),
  };
}
