/**
 * The windows live quality is measured over, always ending now: the last hour, day, ... of a
 * model version's predictions (by prediction time), or its last N predictions.
 */
export type QualityWindow =
  | { readonly kind: "time"; readonly durationMs: number; readonly name: string }
  | { readonly kind: "count"; readonly size: number; readonly name: string };

const UNITS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * "15m", "1h", "1d", "7d": a time window; a plain integer ("1000"): the last that many
 * predictions. The text given is the window's name (the `window` label of the metrics).
 */
export function parseWindow(text: string): QualityWindow {
  const spec = text.trim();
  const timed = /^(\d+)([mhd])$/.exec(spec);
  if (timed) {
    const amount = Number(timed[1]);
    if (amount > 0) return { kind: "time", durationMs: amount * UNITS[timed[2]!]!, name: spec };
  }
  if (/^\d+$/.test(spec) && Number(spec) > 0 && Number.isSafeInteger(Number(spec))) return { kind: "count", size: Number(spec), name: spec };
  throw new Error(`window "${text}": expected a duration (15m, 1h, 1d) or a count of predictions (1000)`);
}
