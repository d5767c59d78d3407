/**
 * Coalesces the calls that arrive while a batch is running into the next batch: records in flight
 * at once (a processor's concurrency) then share one model run or one multi-search instead of
 * queueing for one each. One batch runs at a time, so under load batches grow by themselves and
 * when idle a call runs at once, without waiting for company. A failed batch is retried call by
 * call, so one caller's bad input fails that caller alone.
 */
export type BatchCall<In, Out> = (inputs: readonly In[]) => Promise<Out[]>;

interface Pending<In, Out> {
  readonly inputs: readonly In[];
  readonly resolve: (outputs: Out[]) => void;
  readonly reject: (error: unknown) => void;
}

/** `maxRows` bounds a coalesced batch; a single call larger than that still runs whole. */
export function coalescing<In, Out>(call: BatchCall<In, Out>, maxRows: number): BatchCall<In, Out> {
  const pending: Pending<In, Out>[] = [];
  let running = false;

  /** Runs one call for `group` and hands each caller its own rows. */
  const runGroup = async (group: readonly Pending<In, Out>[]): Promise<void> => {
    const rows = group.reduce((sum, p) => sum + p.inputs.length, 0);
    const outputs = await call(group.flatMap((p) => p.inputs));
    if (outputs.length !== rows) throw new Error(`a batch of ${rows} inputs returned ${outputs.length} outputs`);
    let at = 0;
    for (const p of group) {
      p.resolve(outputs.slice(at, at + p.inputs.length));
      at += p.inputs.length;
    }
  };

  const dispatch = async (): Promise<void> => {
    if (running || pending.length === 0) return;
    running = true;
    const group: Pending<In, Out>[] = [];
    let rows = 0;
    while (pending.length > 0 && (group.length === 0 || rows + pending[0]!.inputs.length <= maxRows)) {
      const next = pending.shift()!;
      group.push(next);
      rows += next.inputs.length;
    }
    try {
      await runGroup(group);
    } catch (error) {
      if (group.length === 1) group[0]!.reject(error);
      // One caller's bad input must not fail the others: each runs again on its own.
      else for (const p of group) await runGroup([p]).catch(p.reject);
    } finally {
      running = false;
      void dispatch();
    }
  };

  return (inputs) =>
    new Promise<Out[]>((resolve, reject) => {
      pending.push({ inputs, resolve, reject });
      // On the next turn, so that the calls made by records started together join the first batch.
      setImmediate(() => void dispatch());
    });
}
