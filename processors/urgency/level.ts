import { UrgencyLevelValues, type UrgencyLevel } from "../../schemas/types.generated.js";
import type { UrgencySignal } from "./signals.js";

const LEVELS: readonly UrgencyLevel[] = UrgencyLevelValues;

/**
 * Combines the model's level with the signals: an outage is at least `high`; every other signal
 * (and an outage on top of that floor) raises the level one step, up to `critical`. So `critical`
 * always needs the model or an outage at `high` plus one more signal.
 */
export function combineUrgency(modelLevel: string, signals: readonly UrgencySignal[]): UrgencyLevel {
  let index = LEVELS.indexOf(modelLevel as UrgencyLevel);
  if (index < 0) throw new Error(`the urgency model predicts "${modelLevel}", not one of ${LEVELS.join(", ")}`);
  const raises = signals.filter((s) => s !== "outage").length;
  if (signals.includes("outage")) index = Math.max(index, LEVELS.indexOf("high")) + (raises > 0 ? 1 : 0);
  else index += raises;
  return LEVELS[Math.min(index, LEVELS.length - 1)]!;
}
