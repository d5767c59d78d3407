import type { InquiryClassified } from "../schemas/types.generated.js";
import type { LoadedModel } from "../models/version.js";
import type { ProcessorDeclaration } from "../streams/topology.js";
import { labelScores, modelInput } from "./feedback.js";
import { servedFeedback } from "./served-feedback.js";
import { outputOf, reading } from "../streams/ports.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../streams/processor.js";
import { UNDETERMINED_LANGUAGE } from "../text/language.js";
import type { ServedModel } from "../models/index.js";

const TOP_K = 3;

/**
 * The models of inquiries in another language than English: heads over the multilingual encoder
 * (training/models/multilingual.py), trained on the same English Bitext rows and carried across
 * languages by the encoder. `npm start` trains them in the background once the pipeline serves
 * (`switchboard multilingual-defaults`: the 12-layer encoder embeds every row, minutes), so a
 * classify that started without them looks for them every model poll interval and serves them
 * from the first look after both are promoted, without a restart.
 */
export const MULTILINGUAL_MODELS = { intent: "intent-multilingual", category: "category-multilingual" } as const;

interface Classifiers {
  readonly intent: ServedModel;
  readonly category: ServedModel;
}

/** The multilingual pair when the registry serves both, else null (every language gets the English pair). */
async function multilingualClassifiers(deps: ProcessorDependencies, processor: string, warn: boolean): Promise<Classifiers | null> {
  try {
    const [intent, category] = await Promise.all([
      deps.resources.productionModel(MULTILINGUAL_MODELS.intent),
      deps.resources.productionModel(MULTILINGUAL_MODELS.category),
    ]);
    if (!warn) deps.log.info({ processor, models: Object.values(MULTILINGUAL_MODELS) }, "multilingual intent and category models in production: inquiries not in English are classified by them from now on");
    return { intent, category };
  } catch (error) {
    if (warn) {
      deps.log.warn(
        { processor, models: Object.values(MULTILINGUAL_MODELS), error: (error as Error).message },
        "no multilingual intent and category models in production: inquiries in every language are classified by the English models until both are",
      );
    }
    return null;
  }
}

/**
 * Which pair classifies an inquiry: the multilingual one for a detected language other than
 * English. Generic so that `npm run eval` (models/eval/realistic.ts) picks its predictions alike.
 */
export function classifiersFor<Pair>(language: string, english: Pair, multilingual: Pair | null): Pair {
  return multilingual && language !== "en" && language !== UNDETERMINED_LANGUAGE ? multilingual : english;
}

/**
 * Intent and category of each cleaned inquiry from the production `intent` and `category`
 * models. An intent less likely than the model's calibrated out-of-scope operating point is
 * flagged out of scope, for a human to take. Every intent version trained now carries its point
 * (chosen on validation with CLINC150's out-of-scope queries, training/oos.py); a version whose
 * point is not to be served (`served: false`: the default intent model's, see training/tasks.py)
 * or an older one without a point gets the configured threshold, with a warning once per version.
 * The operating point is the answering version's: a swap during the call cannot mix two versions.
 * A shadow version's predictions go to predictions.feedback only. An inquiry in another language
 * is classified by the multilingual models when the registry serves them (MULTILINGUAL_MODELS).
 */
export async function classify(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
): Promise<ProcessorImplementation> {
  const classifiedOut = outputOf(deps.topology, declaration, "inquiries.classified");
  const feedbackOut = outputOf(deps.topology, declaration, "predictions.feedback");
  const english: Classifiers = {
    intent: await deps.resources.productionModel("intent"),
    category: await deps.resources.productionModel("category"),
  };
  let multilingual = await multilingualClassifiers(deps, declaration.name, true);
  if (!multilingual) {
    const looking = deps.resources.schedule("multilingual models", deps.config.modelPollMs, async () => {
      multilingual ??= await multilingualClassifiers(deps, declaration.name, false);
      if (multilingual) void looking.stop();
    });
  }
  const warned = new Set<string>();
  const thresholdOf = (version: Pick<LoadedModel, "version" | "manifest">): number => {
    const point = version.manifest.operating_point;
    if (point && point.served !== false) return point.threshold;
    if (!warned.has(version.version)) {
      warned.add(version.version);
      deps.log.warn(
        { processor: declaration.name, model: "intent", version: version.version, threshold: deps.config.outOfScopeThreshold, measuredPoint: point?.threshold },
        point
          ? "served intent model's out-of-scope operating point is measured, not served; using the configured fallback threshold"
          : "served intent model has no out-of-scope operating point; using the configured fallback threshold (retrain it: `train --model intent` chooses one)",
      );
    }
    return deps.config.outOfScopeThreshold;
  };

  return {
    process: reading(deps.topology, declaration, "inquiries.cleaned", async ({ value: inquiry }) => {
      const input = modelInput(inquiry);
      const { intent, category } = classifiersFor(inquiry.language, english, multilingual);
      const [intentAnswer, categoryAnswer] = await Promise.all([intent.predict(input), category.predict(input)]);
      const { prediction: intentPrediction, version: intentVersion } = intentAnswer.production;
      const categoryPrediction = categoryAnswer.production.prediction;
      const threshold = thresholdOf(intentVersion);
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
