import type pg from "pg";
import type { LabelScore } from "../schemas/types.generated.js";
import { followProduction, openModelSlot, productionVersionDir, type LoadedModel, type Prediction } from "../models/index.js";
import type { ProcessorDependencies } from "../streams/processor.js";

/** A registry model as a processor serves it: the production version, hot-swapped when production changes. */
export interface ServedModel {
  readonly current: LoadedModel;
  predict(text: string): Promise<Prediction>;
  close(): Promise<void>;
}

export async function serveProductionModel(model: string, pool: pg.Pool, { config, log }: ProcessorDependencies): Promise<ServedModel> {
  const slot = await openModelSlot(await productionVersionDir(pool, model, config.modelsDir), log);
  const stopFollowing = followProduction(slot, pool, model, config.modelsDir, config.modelPollMs, log);
  log.info({ model: slot.current.name, version: slot.current.version }, "serving production model");
  return {
    get current() {
      return slot.current;
    },
    predict: async (text) => {
      const [prediction] = await slot.predict([text]);
      if (!prediction) throw new Error(`${model}: the model returned no prediction`);
      return prediction;
    },
    close: async () => {
      stopFollowing();
      await slot.close();
    },
  };
}

/** A prediction's ranked labels as the topic schemas carry them. */
export function labelScores(prediction: Prediction, limit = Infinity): LabelScore[] {
  return prediction.ranked.slice(0, limit).map(({ label, score }) => ({ label, probability: score }));
}
