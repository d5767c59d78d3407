export { ModelLoadError } from "./errors.js";
export { EMBEDDING_TASK, type Family, type Manifest, type OperatingPoint } from "./manifest.js";
export type { LabelScore, Prediction } from "./prediction.js";
export { followProduction, productionVersionDir, REGISTRY_SCHEMA } from "./registry.js";
export { openModelSlot, type ModelSlot } from "./slot.js";
export { InferencePool, InferenceWorkerCrash, sharedInferencePool } from "./inference-pool.js";
export { loadModelVersion, MAX_BATCH, type LoadedModel, type LoadOptions } from "./version.js";
