import { Writable } from "node:stream";
import pino from "pino";
import type { MetricValueWithName, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { InvalidInputError, TransientError } from "../../streams/errors.js";
import type { InputRecord, ProcessorImplementation } from "../../streams/processor.js";
import { sinkProcessor, type BatchingSink } from "../../streams/sink.js";

interface Item {
  readonly id: string;
  readonly version: number;
}

const logLines: Array<Record<string, unknown>> = [];
const log = pino(
  { level: "debug" },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  }),
);

const record = (id: string, version = 1): InputRecord<Item> => ({
  topic: "items",
  partition: 0,
  offset: String(version),
  key: id,
  value: { id, version },
  headers: {},
  timestamp: 0,
});

/** A sink over an in-memory store that keeps what each write was given; `failNext` fails the next write. */
function memorySink(overrides: Partial<BatchingSink<Item>> = {}) {
  const writes: Item[][] = [];
  const state = { failNext: false };
  const sink: BatchingSink<Item> = {
    add(input) {
      const value = input.value as Item;
      if (value.id === "") throw new InvalidInputError("an item needs an id");
      return value;
    },
    async write(items) {
      if (state.failNext) {
        state.failNext = false;
        throw new Error("store unavailable");
      }
      writes.push([...items]);
      return { stored: items.length };
    },
    ...overrides,
  };
  return { sink, writes, state };
}

const context = { log };
const processAll = async (processor: ProcessorImplementation, records: readonly InputRecord<Item>[]) => {
  for (const r of records) expect(await processor.process(r, context)).toEqual([]);
};
/** A metric's series; a histogram's are its buckets, `_sum` and `_count`, named by `metricName`. */
const metricValues = async (registry: Registry | undefined, name: string): Promise<MetricValueWithName<string>[]> =>
  (await registry!.getMetricsAsJSON()).find((m) => m.name === name)?.values ?? [];

describe("sinkProcessor", () => {
  it("writes what was added since the last flush as one batch, once per flush, in the order added", async () => {
    const { sink, writes } = memorySink();
    const processor = sinkProcessor("memory", sink, { log });
    await processAll(processor, [record("a"), record("b"), record("a", 2)]);
    expect(writes).toEqual([]);
    await processor.flush!();
    expect(writes).toEqual([[record("a").value, record("b").value, record("a", 2).value]]);

    await processAll(processor, [record("c")]);
    await processor.flush!();
    expect(writes).toEqual([[record("a").value, record("b").value, record("a", 2).value], [record("c").value]]);
  });

  it("holds one item per key, merged as added, in the order the keys first came", async () => {
    const { sink, writes } = memorySink({
      key: (item) => item.id,
      // Keeps the higher version, the first one seen on a tie: an order-dependent merge shows its order.
      merge: (held, incoming) => (incoming.version > held.version ? incoming : held),
    });
    const processor = sinkProcessor("memory", sink, { log });
    logLines.length = 0;
    await processAll(processor, [record("a", 2), record("b", 1), record("a", 1), record("b", 3), record("a", 2)]);
    await processor.flush!();
    expect(writes).toEqual([
      [
        { id: "a", version: 2 },
        { id: "b", version: 3 },
      ],
    ]);
    // The sink's own details are logged with the batch's counts: 5 records, 2 items.
    expect(logLines.find((line) => line.msg === "batch written")).toMatchObject({
      processor: "memory",
      records: 5,
      items: 2,
      stored: 2,
    });
  });

  it("without a merge, the item added last for a key replaces the one held", async () => {
    const { sink, writes } = memorySink({ key: (item) => item.id });
    const processor = sinkProcessor("memory", sink, { log });
    await processAll(processor, [record("a", 3), record("a", 1)]);
    await processor.flush!();
    expect(writes).toEqual([[{ id: "a", version: 1 }]]);
  });

  it("writes nothing for an empty batch, and counts nothing", async () => {
    const { sink, writes } = memorySink();
    const processor = sinkProcessor("memory", sink, { log });
    await processor.flush!();
    await processor.flush!();
    expect(writes).toEqual([]);
    expect(await metricValues(processor.metrics, "switchboard_sink_write_seconds")).toEqual([]);
    expect(await metricValues(processor.metrics, "switchboard_sink_items_written_total")).toEqual([]);
  });

  it("keeps nothing of a batch whose write failed, and surfaces the failure as a TransientError naming the batch", async () => {
    const { sink, writes, state } = memorySink({
      describe: (batch) => `storing a batch of ${batch.records} records (${batch.items.length} items)`,
      key: (item) => item.id,
    });
    const processor = sinkProcessor("memory", sink, { log });
    await processAll(processor, [record("a"), record("b"), record("a", 2)]);
    state.failNext = true;
    const flushing = processor.flush!();
    await expect(flushing).rejects.toBeInstanceOf(TransientError);
    await expect(flushing).rejects.toThrow("storing a batch of 3 records (2 items): store unavailable");
    await expect(flushing).rejects.toMatchObject({ cause: new Error("store unavailable") });

    // The failed batch's records are redelivered by the runtime; the sink must not write them again on its own.
    await processor.flush!();
    expect(writes).toEqual([]);
    await processAll(processor, [record("c")]);
    await processor.flush!();
    expect(writes).toEqual([[record("c").value]]);
  });

  it("names the processor in a failed write's error when the sink does not describe its batches", async () => {
    const { sink, state } = memorySink();
    const processor = sinkProcessor("memory", sink, { log });
    await processAll(processor, [record("a"), record("b")]);
    state.failNext = true;
    await expect(processor.flush!()).rejects.toThrow("memory: writing a batch of 2 records: store unavailable");
  });

  it("refuses invalid input with the sink's InvalidInputError, leaving the batch as it was", async () => {
    const { sink, writes } = memorySink();
    const processor = sinkProcessor("memory", sink, { log });
    await processAll(processor, [record("a")]);
    const refusal = expect(async () => processor.process(record(""), context)).rejects;
    await refusal.toBeInstanceOf(InvalidInputError);
    await refusal.toThrow("an item needs an id");
    await processAll(processor, [record("b")]);
    await processor.flush!();
    expect(writes).toEqual([[record("a").value, record("b").value]]);
  });

  it("counts items written, batch sizes and write times by outcome, labelled with the processor", async () => {
    const { sink, state } = memorySink({ key: (item) => item.id });
    const processor = sinkProcessor("memory", sink, { log });
    await processAll(processor, [record("a"), record("b"), record("a", 2)]);
    await processor.flush!();
    await processAll(processor, [record("c")]);
    await processor.flush!();
    await processAll(processor, [record("d")]);
    state.failNext = true;
    await processor.flush!().catch(() => undefined);

    expect(await metricValues(processor.metrics, "switchboard_sink_items_written_total")).toEqual([
      { labels: { processor: "memory" }, value: 3 },
    ]);
    const batchItems = await metricValues(processor.metrics, "switchboard_sink_batch_items");
    expect(batchItems.filter((v) => v.metricName === "switchboard_sink_batch_items_sum")).toMatchObject([{ value: 3 }]);
    expect(batchItems.filter((v) => v.metricName === "switchboard_sink_batch_items_count")).toMatchObject([
      { value: 2 },
    ]);
    const writeCounts = (await metricValues(processor.metrics, "switchboard_sink_write_seconds"))
      .filter((v) => v.metricName === "switchboard_sink_write_seconds_count")
      .map((v) => [v.labels.outcome, v.value]);
    expect(writeCounts.sort()).toEqual([
      ["failed", 1],
      ["written", 2],
    ]);
  });

  it("closes the sink's store on close, and closes without one", async () => {
    let closed = 0;
    const { sink } = memorySink({ close: async () => void closed++ });
    await sinkProcessor("memory", sink, { log }).close!();
    expect(closed).toBe(1);
    await expect(sinkProcessor("memory", memorySink().sink, { log }).close!()).resolves.toBeUndefined();
  });
});
