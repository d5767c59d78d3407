/**
 * The join rule of `route`, as a pure function of the order in which an inquiry's parts arrived.
 *
 * Parts are stored once each (a redelivered part keeps its first arrival), so an inquiry's
 * arrival order only ever grows at its end. The TRIGGER is the earliest part at which the parts
 * seen so far decide the join: the cleaned inquiry is there and either all three predictions or
 * a timeout are too. Because a prefix of the order never changes, every evaluation of the same
 * inquiry agrees on the trigger, and the routed record is emitted only while processing the
 * trigger itself: processing any other part, again or for the first time, emits nothing. When a
 * Kafka transaction aborts, its records are redelivered; the trigger among them emits again,
 * into the transaction that replaces the aborted one, so exactly one routed record is committed.
 *
 * A timeout without the cleaned inquiry decides nothing: the cleaned record exists (every
 * prediction is made from it) and is only behind in route's own input, so the join waits for
 * it, and its arrival becomes the trigger.
 */

export const PREDICTIONS = ["classified", "sentiment", "urgency"] as const;
export type Prediction = (typeof PREDICTIONS)[number];
export type PartName = "cleaned" | Prediction | "timeout";
export const PART_NAMES: readonly PartName[] = ["cleaned", ...PREDICTIONS, "timeout"];

export type JoinVerdict =
  /** This part is the trigger: route the inquiry from `parts` (the arrival order up to and including it). */
  | { readonly kind: "route"; readonly parts: readonly PartName[]; readonly missing: readonly Prediction[] }
  /** The join is not decided at this part (it may be by a later one). */
  | { readonly kind: "pending" }
  /** The join was decided by an earlier part; this one changes nothing. */
  | { readonly kind: "late"; readonly trigger: PartName };

export function isDecided(seen: ReadonlySet<PartName>): boolean {
  return seen.has("cleaned") && (seen.has("timeout") || PREDICTIONS.every((p) => seen.has(p)));
}

/** Position of the trigger in the arrival order, if the join is decided. */
export function triggerIndex(arrivals: readonly PartName[]): number | undefined {
  const seen = new Set<PartName>();
  for (const [i, arrived] of arrivals.entries()) {
    seen.add(arrived);
    if (isDecided(seen)) return i;
  }
  return undefined;
}

/** The verdict for `part`, given all parts of its inquiry in arrival order (which include it). */
export function judge(part: PartName, arrivals: readonly PartName[]): JoinVerdict {
  const position = arrivals.indexOf(part);
  if (position < 0)
    throw new Error(`part ${part} is missing from the arrivals it is judged against (${arrivals.join(", ")})`);
  const trigger = triggerIndex(arrivals);
  if (trigger === undefined || position < trigger) return { kind: "pending" };
  if (position > trigger) return { kind: "late", trigger: arrivals[trigger]! };
  const parts = arrivals.slice(0, trigger + 1);
  return { kind: "route", parts, missing: PREDICTIONS.filter((p) => !parts.includes(p)) };
}
