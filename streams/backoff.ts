/**
 * The one retry schedule: exponential from `initialMs`, doubling per attempt, capped at `maxMs`.
 * With jitter (the default) the delay is drawn from its upper half, so instances that failed
 * together do not retry in lockstep, and a delay never falls below half the schedule.
 */
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly jitter?: boolean;
}

/** The delay before retry number `attempt` (1 for the first retry). */
export function backoffDelay(attempt: number, { initialMs, maxMs, jitter = true }: Backoff): number {
  const delay = Math.min(initialMs * 2 ** Math.max(0, attempt - 1), maxMs);
  return jitter ? delay / 2 + Math.random() * (delay / 2) : delay;
}
