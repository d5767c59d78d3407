import type { KafkaMessage } from "kafkajs";
import pino from "pino";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { TopicCodec } from "../../streams/codec.js";
import { DLQ_HEADERS } from "../../streams/dlq.js";
import { InvalidInputError, PoisonRecordError, TransientError } from "../../streams/errors.js";
import { createRuntimeMetrics } from "../../streams/metrics.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import { CHAINED_TOPIC_HEADER, createRecordPath } from "../../streams/record-path.js";
import { chainTask, processorTask } from "../../streams/task.js";
import type { ProcessorDeclaration, Topology } from "../../streams/topology.js";

/** JSON behind the 5-byte frame: the record path's handing on decodes what it encoded, as with Avro. */
const codec: TopicCodec = {
  async decode(_topic, bytes) {
    if (!bytes || bytes[0] !== 0) throw new PoisonRecordError("not framed");
    return JSON.parse(bytes.subarray(5).toString());
  },
  decodeOwn: (_topic, bytes) => JSON.parse(bytes.subarray(5).toString()),
  encode: (_topic, value) => Buffer.concat([Buffer.alloc(5), Buffer.from(JSON.stringify(value))]),
};

const topic = (name: string) => ({ name, description: name, partitions: 1, retentionMs: 1, compacted: false, valueSchema: "x" });
const processor = (name: string, inputs: string[], outputs: string[]): ProcessorDeclaration => ({ name, description: name, inputs, outputs, metricsPort: 0 });

/** in → a → (b | c) → d, with d reading b and c: the triage chain's shape in small. */
const topology: Topology = {
  name: "t",
  topics: ["in", "a.out", "b.out", "c.out", "d.out"].map(topic),
  processors: [
    processor("a", ["in"], ["a.out"]),
    processor("b", ["a.out"], ["b.out"]),
    processor("c", ["a.out"], ["c.out"]),
    processor("d", ["b.out", "c.out"], ["d.out"]),
  ],
  chains: [{ name: "abcd", description: "test", processors: ["a", "b", "c", "d"], inputs: ["in"], metricsPort: 0, concurrency: 4 }],
  connectors: [],
};

const message = (value: unknown, offset = "7"): KafkaMessage =>
  ({ key: Buffer.from("k1"), value: codec.encode("in", value), headers: {}, timestamp: "0", offset, attributes: 0, size: 0 }) as unknown as KafkaMessage;

const options = { maxAttempts: 3, retryBackoffMs: 1, maxRecordBytes: 1_000 };
const log = pino({ level: "silent" });

function pathFor(implementations: Record<string, ProcessorImplementation>) {
  const task = chainTask(topology, topology.chains[0]!, new Map(Object.entries(implementations)));
  const metrics = createRuntimeMetrics(new Registry());
  return { run: createRecordPath(task, { codec, metrics, log }, options), metrics };
}

const pass = (to: string, tag: string): ProcessorImplementation => ({
  process: ({ value }) => [{ topic: to, value: { ...(value as object), [tag]: true } }],
});

/** d joins b and c in memory and emits once both arrived, or with what it has in afterInput. */
function joiner(): ProcessorImplementation & { seen: string[] } {
  const parts = new Map<string, object>();
  const seen: string[] = [];
  return {
    seen,
    process: ({ topic: from, value }) => {
      seen.push(from);
      parts.set(from, value as object);
      return parts.size === 2 ? [{ topic: "d.out", value: { joined: [...parts.keys()].sort() } }] : [];
    },
    afterInput: () => {
      const open = parts.size === 1 ? [{ topic: "d.out", value: { joined: [...parts.keys()], partial: true } }] : [];
      parts.clear();
      return open;
    },
  };
}

const decoded = (outcome: { messages: readonly { topic: string; message: { value: unknown } }[] }) =>
  outcome.messages.map((m) => ({ topic: m.topic, value: m.topic.endsWith(".dlq") ? "(raw)" : codec.decodeOwn(m.topic, m.message.value as Buffer) }));

describe("the record path through a chain", () => {
  it("hands every output to the members that read it, in the same outcome, and writes each intermediate record too", async () => {
    const d = joiner();
    const { run } = pathFor({ a: pass("a.out", "a"), b: pass("b.out", "b"), c: pass("c.out", "c"), d });
    const outcome = await run("in", 0, message({ id: 1 }));
    expect(outcome.dlq).toBe(false);
    expect(decoded(outcome)).toEqual(
      expect.arrayContaining([
        { topic: "a.out", value: { id: 1, a: true } },
        { topic: "b.out", value: { id: 1, a: true, b: true } },
        { topic: "c.out", value: { id: 1, a: true, c: true } },
        { topic: "d.out", value: { joined: ["b.out", "c.out"] } },
      ]),
    );
    expect(outcome.messages).toHaveLength(4);
    expect(d.seen.sort()).toEqual(["b.out", "c.out"]);
  });

  it("retries a member's transient failure alone: the members before it run once", async () => {
    let aRuns = 0;
    let cFailures = 2;
    const { run, metrics } = pathFor({
      a: { process: (r) => (aRuns++, pass("a.out", "a").process(r, { log })) },
      b: pass("b.out", "b"),
      c: {
        process: (r) => {
          if (cFailures-- > 0) throw new Error("flaky");
          return pass("c.out", "c").process(r, { log });
        },
      },
      d: joiner(),
    });
    const outcome = await run("in", 0, message({ id: 2 }));
    expect(outcome.dlq).toBe(false);
    expect(aRuns).toBe(1);
    expect(outcome.messages.map((m) => m.topic).sort()).toEqual(["a.out", "b.out", "c.out", "d.out"]);
    expect((await metrics.retries.get()).values.find((v) => v.labels.processor === "c")?.value).toBe(2);
  });

  it("a member refusing a handed-on record sends the consumed record to its DLQ once, and the others' outputs are still written", async () => {
    const refuse: ProcessorImplementation = {
      process: () => {
        throw new InvalidInputError("b refuses");
      },
    };
    const { run } = pathFor({ a: pass("a.out", "a"), b: refuse, c: pass("c.out", "c"), d: joiner() });
    const outcome = await run("in", 3, message({ id: 3 }, "41"));
    expect(outcome.dlq).toBe(true);
    const dlq = outcome.messages.filter((m) => m.topic === "in.dlq");
    expect(dlq).toHaveLength(1);
    const headers = dlq[0]!.message.headers!;
    expect(headers[DLQ_HEADERS.processor]).toBe("b");
    expect(headers[DLQ_HEADERS.errorClass]).toBe("InvalidInputError");
    expect(headers[DLQ_HEADERS.sourceOffset]).toBe("41");
    expect(headers[CHAINED_TOPIC_HEADER]).toBe("a.out");
    expect(dlq[0]!.message.value).toEqual(message({ id: 3 }).value);
    // d got c's part only: afterInput emitted what it had.
    expect(decoded(outcome).find((m) => m.topic === "d.out")?.value).toEqual({ joined: ["c.out"], partial: true });
  });

  it("two members refusing records of one input still make one DLQ record", async () => {
    const refuse: ProcessorImplementation = {
      process: () => {
        throw new InvalidInputError("no");
      },
    };
    const { run, metrics } = pathFor({ a: pass("a.out", "a"), b: refuse, c: refuse, d: joiner() });
    const outcome = await run("in", 0, message({ id: 4 }));
    expect(outcome.messages.filter((m) => m.topic === "in.dlq")).toHaveLength(1);
    expect((await metrics.dlqRecords.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(2);
  });

  it("retries exhausted on a handed-on record: the consumed record goes to the DLQ with the attempts", async () => {
    const { run } = pathFor({
      a: pass("a.out", "a"),
      b: pass("b.out", "b"),
      c: {
        process: () => {
          throw new Error("always down");
        },
      },
      d: joiner(),
    });
    const outcome = await run("in", 0, message({ id: 5 }));
    const [dlq] = outcome.messages.filter((m) => m.topic === "in.dlq");
    expect(dlq?.message.headers?.[DLQ_HEADERS.attempts]).toBe("3");
    expect(dlq?.message.headers?.[DLQ_HEADERS.processor]).toBe("c");
  });

  it("a member whose service is away holds the record past its attempts, and it goes through once the service is back: nothing DLQ'd", async () => {
    let failures = 0;
    const { run, metrics } = pathFor({
      a: pass("a.out", "a"),
      b: {
        process: ({ value }) => {
          // Twice the attempts: a record error or an unknown failure would be in the DLQ by now.
          if (failures++ < 2 * options.maxAttempts) {
            throw new TransientError("knowledge-base retrieval failed", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9200"), { code: "ECONNREFUSED" }) });
          }
          return [{ topic: "b.out", value: { ...(value as object), b: true } }];
        },
      },
      c: pass("c.out", "c"),
      d: joiner(),
    });
    const outcome = await run("in", 0, message({ id: 8 }));
    expect(outcome.dlq).toBe(false);
    expect(outcome.messages.map((m) => m.topic)).toEqual(["a.out", "c.out", "b.out", "d.out"]);
    expect((await metrics.retries.get()).values.find((v) => v.labels.processor === "b")?.value).toBe(2 * options.maxAttempts);
    expect((await metrics.dlqRecords.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(0);
  });

  it("poison and oversized input go to the DLQ under the first member reading it", async () => {
    const { run } = pathFor({ a: pass("a.out", "a"), b: pass("b.out", "b"), c: pass("c.out", "c"), d: joiner() });
    const poison = await run("in", 0, { ...message({}), value: Buffer.from("nope") } as KafkaMessage);
    expect(poison.messages.map((m) => [m.topic, m.message.headers?.[DLQ_HEADERS.errorClass], m.message.headers?.[DLQ_HEADERS.processor]])).toEqual([
      ["in.dlq", "PoisonRecordError", "a"],
    ]);
    const oversized = await run("in", 0, message({ body: "x".repeat(2_000) }));
    expect(oversized.messages.map((m) => m.message.headers?.[DLQ_HEADERS.errorClass])).toEqual(["OversizedRecordError"]);
  });

  it("a processor alone is a chain of one: its outputs, nothing handed on", async () => {
    const task = processorTask(topology.processors[0]!, pass("a.out", "a"));
    const run = createRecordPath(task, { codec, metrics: createRuntimeMetrics(new Registry()), log }, options);
    expect(decoded(await run("in", 0, message({ id: 6 })))).toEqual([{ topic: "a.out", value: { id: 6, a: true } }]);
  });

  it("a member writing a topic it did not declare is refused", async () => {
    const { run } = pathFor({ a: { process: () => [{ topic: "d.out", value: {} }] }, b: pass("b.out", "b"), c: pass("c.out", "c"), d: joiner() });
    const outcome = await run("in", 0, message({ id: 7 }));
    expect(outcome.messages.map((m) => m.message.headers?.[DLQ_HEADERS.errorClass])).toEqual(["InvalidOutputError"]);
  });
});
