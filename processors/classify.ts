import type { InquiryClassified } from "../schemas/types.generated.js";
import type { LoadedModel } from "../models/version.js";
import type { ProcessorDeclaration } from "../streams/topology.js";
import { labelScores, modelInput } from "./feedback.js";
import { servedFeedback } from "./served-feedback.js";
import { outputOf, reading } from "../streams/ports.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../streams/processor.js";
import { UNDETERMINED_LANGUAGE } from "../text/language.js";
import type { ServedModel } from "../models/index.js";
import { isOutOfScope, servedScopePoint, type FallbackReason, type ScopePoint } from "../models/scope.js";

const TOP_K = 3;

const FALLBACK_MESSAGES: Readonly<Record<FallbackReason, string>> = {
  "no point": "served intent model has no out-of-scope operating point; using the configured fallback threshold (retrain it: `train --model intent` chooses one)",
  "point not served": "served intent model's out-of-scope operating point is measured, not served; using the configured fallback threshold",
  "point chosen on English text": "served intent model's out-of-scope point (in-scope similarity) was chosen on English text; inquiries in other languages it answers get the configured fallback threshold on confidence",
};

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
 * models. An inquiry is flagged out of scope, for a human to take, below the answering version's
 * out-of-scope operating point (models/scope.ts): for the default intent head its in-scope
 * similarity, chosen on validation with CLINC150's out-of-scope queries against customer-style
 * copies of the in-scope rows (training/oos.py); for other versions their calibrated confidence.
 * A version whose point is not to be served (`served: false`), an older one without a point, and
 * a similarity point for an inquiry not in English get the configured threshold on confidence,
 * with a warning once per version and reason. The point is the answering version's: a swap
 * during the call cannot mix two versions. A shadow version's predictions go to
 * predictions.feedback only. An inquiry in another language is classified by the multilingual
 * models when the registry serves them (MULTILINGUAL_MODELS).
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
  const pointOf = (version: Pick<LoadedModel, "version" | "manifest">, language: string): ScopePoint => {
    const operating = version.manifest.operating_point;
    const { point, fallback } = servedScopePoint(operating, language, deps.config.outOfScopeThreshold);
    if (fallback && !warned.has(`${version.version}\0${fallback}`)) {
      warned.add(`${version.version}\0${fallback}`);
      deps.log.warn(
        { processor: declaration.name, model: "intent", version: version.version, threshold: point.threshold, measuredPoint: operating?.threshold, reason: fallback },
        FALLBACK_MESSAGES[fallback],
      );
    }
    return point;
  };

  return {
    process: reading(deps.topology, declaration, "inquiries.cleaned", async ({ value: inquiry }) => {
      const input = modelInput(inquiry);
      const { intent, category } = classifiersFor(inquiry.language, english, multilingual);
      const [intentAnswer, categoryAnswer] = await Promise.all([intent.predict(input), category.predict(input)]);
      const { prediction: intentPrediction, version: intentVersion } = intentAnswer.production;
      const categoryPrediction = categoryAnswer.production.prediction;
      const point = pointOf(intentVersion, inquiry.language);
      const classified: InquiryClassified = {
        inquiry_id: inquiry.inquiry_id,
        intent: intentPrediction.label,
        category: categoryPrediction.label,
        confidence: intentPrediction.confidence,
        out_of_scope: isOutOfScope(intentPrediction, point),
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
