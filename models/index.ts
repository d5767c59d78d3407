export { ModelLoadError } from "./errors.js";
export { EMBEDDING_TASK, type Family, type Manifest, type OperatingPoint } from "./manifest.js";
export type { LabelScore, Prediction } from "./prediction.js";
export { productionVersionDir, REGISTRY_SCHEMA, shadowVersionDir, type ServedStage } from "./registry.js";
export {
  createServingMetrics,
  openServedModel,
  type RefreshTrigger,
  type ServedAnswer,
  type ServedModel,
  type ServedPrediction,
  type ServingMetrics,
} from "./served.js";
export { openModelSlot, type Answer, type ModelSlot } from "./slot.js";
export { InferencePool, InferenceWorkerCrash, sharedInferencePool } from "./inference-pool.js";
export { loadModelVersion, MAX_BATCH, type LoadedModel, type LoadOptions } from "./version.js";
