/**
 * Joins the partition batches of one fetch into one Kafka transaction. kafkajs hands each
 * topic-partition batch to its own `eachBatch` call; committing each separately costs a
 * transaction round trip per partition and, behind them, the next fetch. Every handler takes a
 * ticket when it starts and joins with its results when done; once every started handler has
 * joined (or given up), one transaction commits them all and each handler learns the outcome.
 */
export interface GroupTicket<Part> {
  /** Resolves once the transaction holding `part` committed; rejects if it aborted. */
  join(part: Part): Promise<void>;
  /** The handler has nothing to commit (no records, stale after a rebalance, or it failed). */
  abandon(): void;
}

export interface GroupCommit<Part> {
  begin(): GroupTicket<Part>;
}

interface Waiting<Part> {
  readonly part: Part;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * `minIntervalMs` spaces commits: a group complete sooner waits for it (and, since its handlers
 * wait too, nothing new is fetched meanwhile, so the next group carries what arrived).
 */
export function createGroupCommit<Part>(commit: (parts: readonly Part[]) => Promise<void>, minIntervalMs = 0): GroupCommit<Part> {
  let active = 0;
  let waiting: Waiting<Part>[] = [];
  let committing = false;
  let scheduled = false;
  let lastCommitAt = -Infinity;

  const flush = async (): Promise<void> => {
    committing = true;
    const wait = lastCommitAt + minIntervalMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    // Taken after the wait: a handler that joined meanwhile rides along.
    const group = waiting;
    waiting = [];
    active -= group.length;
    try {
      await commit(group.map((w) => w.part));
      lastCommitAt = performance.now();
      for (const w of group) w.resolve();
    } catch (error) {
      for (const w of group) w.reject(error);
    } finally {
      committing = false;
      schedule();
    }
  };

  // Checked on the next turn of the event loop, so that handlers started by the same fetch
  // have all taken their tickets before the group is judged complete.
  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      if (!committing && waiting.length > 0 && waiting.length === active) void flush();
    });
  }

  return {
    begin() {
      active++;
      let settled = false;
      const settle = () => {
        if (settled) throw new Error("a group-commit ticket is used once");
        settled = true;
      };
      return {
        join(part) {
          settle();
          const joined = new Promise<void>((resolve, reject) => waiting.push({ part, resolve, reject }));
          schedule();
          return joined;
        },
        abandon() {
          settle();
          active--;
          schedule();
        },
      };
    },
  };
}
