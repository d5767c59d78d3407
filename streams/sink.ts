import type { Logger } from "pino";
import { Counter, Histogram, Registry } from "prom-client";
import { TransientError, errorMessage } from "./errors.js";
import type { InputRecord, ProcessorContext, ProcessorImplementation } from "./processor.js";

/**
 * A batching sink: a processor that writes its input records to a store, one batch per Kafka
 * transaction, instead of producing outputs. `sinkProcessor` makes one a processor.
 *
 * The contract with the runtime (streams/checkpoint.ts): every record of a transaction goes
 * through `add` as it is processed; before the transaction commits those records' offsets, the
 * checkpoint flushes, and the records added since the last flush are written as one batch. The
 * batch is done with as soon as the write starts: if the write fails, the transaction aborts and
 * every record of the batch is redelivered, added and written again. So:
 * - `add` must refuse (throw `InvalidInputError`) any record the store would refuse: it then goes
 *   to the DLQ on its own, while a refusal at `write` fails the whole batch, every retry again;
 * - `write` must be idempotent: a batch whose write succeeded is redelivered when the
 *   transaction fails after it (keyed upserts, versions that only move forward).
 */
export interface BatchingSink<Item> {
  /**
   * Checks one decoded record and turns it into what the batch holds; throws
   * `InvalidInputError` (naming the record) for a record the store would refuse.
   */
  add(input: InputRecord): Item;
  /**
   * Items of one key are written once per batch: `merge` folds each item added into the one held
   * for its key, in the order added. Without a key every item is written, in the order added.
   */
  readonly key?: (item: Item) => string;
  /** The item to hold for a key once `incoming` was added after `held`; by default `incoming`. */
  readonly merge?: (held: Item, incoming: Item) => Item;
  /**
   * Writes one batch durably, or throws (any error: it reaches the runtime as a TransientError
   * named by `describe`); a throw aborts the transaction and every record of the batch is
   * redelivered. What it returns is logged with the batch (counts, never values).
   */
  write(items: readonly Item[], context: ProcessorContext): Promise<Readonly<Record<string, unknown>> | void>;
  /** Names a write of this batch in its error, e.g. "archiving a batch of 6 records". */
  readonly describe?: (batch: SinkBatch<Item>) => string;
  /** Releases the store's clients; what was added since the last flush is redelivered, not written. */
  close?(): Promise<void>;
}

/** One flush's batch. */
export interface SinkBatch<Item> {
  /** One per key (where the sink has a key), in the order their keys first came. */
  readonly items: readonly Item[];
  /** Records added, duplicates of a key included. */
  readonly records: number;
}

export interface SinkOptions {
  /** The sink's logger; the batch log lines name the processor. */
  readonly log: Logger;
}

/** A sink as a processor: `process` adds to the pending batch (and outputs nothing); `flush` writes it. */
export function sinkProcessor<Item>(
  name: string,
  sink: BatchingSink<Item>,
  options: SinkOptions,
): ProcessorImplementation {
  // Its own registry, which the host serves merged with the runtime's; two sinks in one chain would
  // clash there (same metric names), which no chain has today.
  const registry = new Registry();
  const metrics = sinkMetrics(registry);
  const log = options.log.child({ processor: name });
  const describe = sink.describe ?? ((batch) => `${name}: writing a batch of ${batch.records} records`);
  let pending = new PendingBatch(sink);

  return {
    process(input) {
      // A refused record throws before the batch is touched: the rest of the batch is unaffected.
      pending.add(sink.add(input));
      return [];
    },

    async flush() {
      if (pending.records === 0) return;
      // The records are redelivered if this write fails, so the batch is done with either way.
      const batch = pending.batch();
      pending = new PendingBatch(sink);
      const labels = { processor: name };
      const end = metrics.writeSeconds.startTimer(labels);
      let details: Readonly<Record<string, unknown>> | void;
      try {
        details = await sink.write(batch.items, { log });
      } catch (error) {
        end({ outcome: "failed" });
        throw new TransientError(`${describe(batch)}: ${errorMessage(error)}`, { cause: error });
      }
      const seconds = end({ outcome: "written" });
      metrics.itemsWritten.inc(labels, batch.items.length);
      metrics.batchItems.observe(labels, batch.items.length);
      log.debug({ ...details, records: batch.records, items: batch.items.length, seconds }, "batch written");
    },

    metrics: registry,
    close: async () => sink.close?.(),
  };
}

/** What was added since the last flush, merged per key when the sink has one. */
class PendingBatch<Item> {
  readonly #sink: BatchingSink<Item>;
  readonly #byKey = new Map<string, Item>();
  readonly #unkeyed: Item[] = [];
  #records = 0;

  constructor(sink: BatchingSink<Item>) {
    this.#sink = sink;
  }

  get records(): number {
    return this.#records;
  }

  add(item: Item): void {
    this.#records++;
    const { key, merge } = this.#sink;
    if (key === undefined) {
      this.#unkeyed.push(item);
      return;
    }
    const k = key(item);
    const held = this.#byKey.get(k);
    this.#byKey.set(k, held === undefined || merge === undefined ? item : merge(held, item));
  }

  batch(): SinkBatch<Item> {
    return { items: this.#sink.key === undefined ? this.#unkeyed : [...this.#byKey.values()], records: this.#records };
  }
}

interface SinkMetrics {
  readonly itemsWritten: Counter<"processor">;
  readonly batchItems: Histogram<"processor">;
  readonly writeSeconds: Histogram<"processor" | "outcome">;
}

/** Labelled by processor, so that a sink's series keep its name when it runs in a chain. */
function sinkMetrics(registry: Registry): SinkMetrics {
  const registers = [registry];
  return {
    itemsWritten: new Counter({
      name: "switchboard_sink_items_written_total",
      help: "Items (rows, documents) a sink wrote, one per key and batch",
      labelNames: ["processor"],
      registers,
    }),
    batchItems: new Histogram({
      name: "switchboard_sink_batch_items",
      help: "Items per batch a sink wrote",
      labelNames: ["processor"],
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers,
    }),
    writeSeconds: new Histogram({
      name: "switchboard_sink_write_seconds",
      help: "Time of a sink's batch write, by outcome (written, failed)",
      labelNames: ["processor", "outcome"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}
