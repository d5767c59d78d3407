import type { Logger } from "pino";

/**
 * The Kafka clients' lifecycle as an explicit state machine (as KafkaJS drives transactions):
 *
 *   connecting ──▶ running ──▶ recovering ──▶ connecting …
 *        │            │
 *        └──▶ fenced ◀┘        (another instance took the transactional id: stop for good)
 *   any but stopped ──▶ stopping ──▶ stopped
 *
 * Only the transitions below are legal; any other is a bug and throws.
 */
export type ClientState = "connecting" | "running" | "recovering" | "fenced" | "stopping" | "stopped";

const TRANSITIONS: Readonly<Record<ClientState, readonly ClientState[]>> = {
  connecting: ["running", "recovering", "fenced", "stopping"],
  running: ["recovering", "fenced", "stopping"],
  recovering: ["connecting", "stopping"],
  fenced: ["stopped"],
  stopping: ["stopped"],
  stopped: [],
};

export interface Lifecycle {
  readonly state: ClientState;
  /** Moves to `next`; returns false (and stays) when `next` is the current state. */
  to(next: ClientState, why?: Record<string, unknown>): boolean;
  /** True once stopping or stopped: nothing may reconnect. */
  readonly ending: boolean;
}

export function createLifecycle(log: Logger): Lifecycle {
  let state: ClientState = "connecting";
  return {
    get state() {
      return state;
    },
    get ending() {
      return state === "stopping" || state === "stopped" || state === "fenced";
    },
    to(next, why = {}) {
      if (next === state) return false;
      if (!TRANSITIONS[state].includes(next)) throw new Error(`Kafka clients cannot go from ${state} to ${next}`);
      log.debug({ ...why, from: state, to: next }, "Kafka clients changed state");
      state = next;
      return true;
    },
  };
}
