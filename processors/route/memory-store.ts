import type { PartName } from "./join.js";
import type { JoinStore } from "./store.js";

/**
 * The join state of route run in a chain: every part of an inquiry is computed in the
 * transaction that routes it, so nothing needs to outlive the chain's work on one input, and a
 * crash loses only what the aborted transaction's redelivery computes again. Same contract as
 * the PostgreSQL store: a part is stored once, arrival order grows at its end.
 */
export interface MemoryJoinStore extends JoinStore {
  /** Whether the inquiry has an undecided join, and whether its cleaned part is in it. */
  undecided(inquiryId: string): { readonly cleaned: boolean } | undefined;
  /** Forgets an inquiry's join, decided or not. */
  forget(inquiryId: string): void;
}

interface Join {
  readonly firstSeenAt: number;
  readonly parts: Map<PartName, unknown>;
  decided: boolean;
}

export function createMemoryJoinStore(now: () => number = Date.now): MemoryJoinStore {
  const joins = new Map<string, Join>();
  return {
    async addPart(inquiryId, part, payload) {
      let join = joins.get(inquiryId);
      if (!join) joins.set(inquiryId, (join = { firstSeenAt: now(), parts: new Map(), decided: false }));
      if (!join.parts.has(part)) join.parts.set(part, payload);
      return [...join.parts.keys()];
    },
    async decide(inquiryId, wanted) {
      const join = joins.get(inquiryId);
      if (!join) return new Map();
      join.decided = true;
      return new Map([...join.parts].filter(([part]) => wanted.includes(part)));
    },
    // No sweeper runs for a chained route: a join never waits for a timeout.
    async requestTimeouts() {
      return 0;
    },
    async collectDecided() {
      return 0;
    },
    async collectAbandoned() {
      return [];
    },
    async countUndecided() {
      return [...joins.values()].filter((j) => !j.decided).length;
    },
    undecided(inquiryId) {
      const join = joins.get(inquiryId);
      return join && !join.decided ? { cleaned: join.parts.has("cleaned") } : undefined;
    },
    forget(inquiryId) {
      joins.delete(inquiryId);
    },
  };
}
