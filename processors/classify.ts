import type { InquiryClassified, InquiryCleaned } from "../schemas/types.generated.js";
import type { ProcessorImplementation } from "../streams/processor.js";
import type { ProcessorDeclaration } from "../streams/topology.js";
import { createPool } from "../storage/postgres.js";
import { modelInput, predictionFeedback } from "./feedback.js";
import type { ProcessorDependencies } from "../streams/processor.js";
import { labelScores, serveProductionModel } from "./serving.js";

const TOP_K = 3;

/**
 * Intent and category of each cleaned inquiry from the production `intent` and `category`
 * models. An intent less likely than the model's calibrated out-of-scope operating point (or the
 * configured threshold when the model has none) is flagged out of scope, for a human to take.
 */
export async function classify(_declaration: ProcessorDeclaration, deps: ProcessorDependencies): Promise<ProcessorImplementation> {
  const pool = createPool(deps.endpoints.databaseUrl, "classify");
  const intent = await serveProductionModel("intent", pool, deps);
  const category = await serveProductionModel("category", pool, deps);

  return {
    process: async (record) => {
      const inquiry = record.value as InquiryCleaned;
      const input = modelInput(inquiry);
      const [intentPrediction, categoryPrediction] = await Promise.all([intent.predict(input), category.predict(input)]);
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
        { topic: "inquiries.classified", value: classified },
        predictionFeedback(inquiry, "intent", intentPrediction, input),
        predictionFeedback(inquiry, "category", categoryPrediction, input),
      ];
    },
    close: async () => {
      await Promise.all([intent.close(), category.close()]);
      await pool.end();
    },
  };
}
