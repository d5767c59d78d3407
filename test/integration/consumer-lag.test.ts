import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import pino from "pino";
import { Registry } from "prom-client";
import { afterEach, describe, expect, inject, it } from "vitest";
import { schemaRegistryOptions } from "../../config/security.js";
import { loadConfig } from "../../config/settings.js";
import { registerSchema, targetFor } from "../../schemas/registry.js";
import { stackPorts } from "../../stack/index.js";
import { kafka as kafkaService } from "../../stack/services/kafka.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { createTopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import { freePort } from "../support/api.js";
import { DependencyUnavailableError } from "../../streams/errors.js";
import { createRuntimeMetrics, type RuntimeMetrics } from "../../streams/metrics.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import { startProcessor, type RunningProcessor } from "../../streams/runtime.js";
import { chainFixture, chainTopology, inquiries, produce, quietLog, readCommitted, type ChainFixture } from "../support/topics.js";
import { until } from "../support/worker-process.js";

/** The lag series of one instance, by partition. */
async function lagOf(metrics: RuntimeMetrics): Promise<Map<string, number>> {
  return new Map((await metrics.consumerLag.get()).values.map((v) => [String(v.labels.partition), v.value]));
}
const total = (lag: ReadonlyMap<string, number>) => [...lag.values()].reduce((sum, v) => sum + v, 0);

/** Records written in committed transactions, as a processor upstream writes them: each partition's records followed by a marker. */
async function produceTransactionally(fixture: ChainFixture, values: ReturnType<typeof inquiries>): Promise<void> {
  const producer = fixture.kafka.producer({ transactionalId: `test-lag-${randomUUID()}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const transaction = await producer.transaction();
    await transaction.send({ topic: fixture.input, messages: values.map((v) => ({ key: v.inquiry_id, value: fixture.codec.encode(fixture.input, v) })) });
    await transaction.commit();
  } finally {
    await producer.disconnect();
  }
}

describe("consumer lag", () => {
  const running: RunningProcessor[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const processor of running.splice(0)) await processor.stop();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("grows while the processor waits for a service that is away, falls to 0 once it is back, also past transaction markers; a partition handed to another instance loses its series", async () => {
    const fixture = await chainFixture("lag", inject("endpoints"), 1, 3);
    const declaration = fixture.topology.processors[0]!;
    let away = true;
    let held = 0;
    const implementation: ProcessorImplementation = {
      process: (record) => {
        if (away) {
          held++;
          throw new DependencyUnavailableError("the test's service is away");
        }
        return [{ topic: fixture.output, value: record.value }];
      },
    };
    const start = async (instanceId: string) => {
      const metrics = createRuntimeMetrics(new Registry());
      const processor = await startProcessor(
        fixture.topology,
        declaration,
        implementation,
        { kafka: fixture.kafka, registry: new SchemaRegistry(schemaRegistryOptions(fixture.endpoints)), metrics, log: quietLog },
        { maxAttempts: 3, retryBackoffMs: 50, maxRecordBytes: 1_048_576, instanceId, sessionTimeoutMs: 6_000, commitIntervalMs: 200, lagSampleMs: 250 },
      );
      running.push(processor);
      return metrics;
    };
    const first = await start("lag-a");
    // All three partitions held and measured (at 0: nothing produced yet).
    await until("the lag of every partition", async () => ((await lagOf(first)).size === 3 ? true : undefined));
    expect(total(await lagOf(first))).toBe(0);

    // The first record of each partition is held in its batch, retried without spending attempts: nothing commits.
    await produce(fixture, inquiries(20, "lag-a"));
    await until("a lag of 20", async () => (total(await lagOf(first)) === 20 ? true : undefined));
    await produce(fixture, inquiries(25, "lag-b"));
    await until("records tried past their attempts", () => (held > 3 * 3 ? true : undefined));
    await until("a lag of 45", async () => (total(await lagOf(first)) === 45 ? true : undefined));

    away = false;
    expect((await readCommitted(fixture.kafka, fixture.output, 45)).length).toBe(45);
    await until("the lag back at 0", async () => (total(await lagOf(first)) === 0 ? true : undefined));

    // Behind the records of a committed transaction, its marker: never committed past, yet not lag.
    await produceTransactionally(fixture, inquiries(12, "lag-c"));
    expect((await readCommitted(fixture.kafka, fixture.output, 57)).length).toBe(57);
    await until("the lag at 0 past the markers", async () => (total(await lagOf(first)) === 0 ? true : undefined));

    // A second instance takes partitions: the first reports only those it still holds.
    const second = await start("lag-b");
    const split = await until(
      "the partitions split between the instances",
      async () => {
        const [a, b] = [await lagOf(first), await lagOf(second)];
        return a.size > 0 && b.size > 0 && a.size + b.size === 3 ? { a, b } : undefined;
      },
      60_000,
    );
    expect([...split.a.keys(), ...split.b.keys()].sort()).toEqual(["0", "1", "2"]);
    expect(total(split.a) + total(split.b)).toBe(0);
  });

  it("keeps its last values while the broker is away, logged once, and is measured again once it is back", { timeout: 300_000 }, async () => {
    // A broker of its own (the shared stack's jars, free ports): the shared one stays up for everyone else.
    const config = loadConfig();
    const home = mkdtempSync(path.join(os.tmpdir(), "switchboard-lag-kafka-"));
    symlinkSync(path.join(config.stackHome, "cache"), path.join(home, "cache"));
    const ports = { ...stackPorts(config), kafka: await freePort(), kafkaController: await freePort(), kafkaSasl: await freePort() };
    const supervisor = createSupervisor(home, ports, quietLog);
    cleanups.push(async () => {
      await supervisor.down([kafkaService]);
      rmSync(home, { recursive: true, force: true });
    });
    await supervisor.up([kafkaService]);
    const shared = inject("endpoints");
    const endpoints = { ...shared, kafkaBrokers: [`127.0.0.1:${ports.kafka}`] };
    const id = `lag-outage-${randomUUID().slice(0, 8)}`;
    const topology = chainTopology(`test-${id}`, [`test.${id}.0`, `test.${id}.1`], 2);
    // Silent: its clients log every refused connection while the broker is away.
    const kafka = createKafka(endpoints, id, pino({ level: "silent" }));
    await createTopics(kafka, topology, quietLog);
    for (const t of topology.topics) await registerSchema(shared, targetFor(t.name, "inquiries.received"));
    const registry = new SchemaRegistry(schemaRegistryOptions(shared));
    const fixture: ChainFixture = {
      endpoints,
      kafka,
      codec: await createTopicCodec(registry, topology.topics),
      name: topology.name,
      topics: topology.topics.map((t) => t.name),
      input: topology.topics[0]!.name,
      output: topology.topics[1]!.name,
      topology,
    };

    const lines: { msg: string }[] = [];
    const log = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    const said = (msg: string) => lines.filter((l) => l.msg === msg).length;
    let away = true;
    const metrics = createRuntimeMetrics(new Registry());
    running.push(
      await startProcessor(
        topology,
        topology.processors[0]!,
        {
          process: (record) => {
            if (away) throw new DependencyUnavailableError("the test's service is away");
            return [{ topic: fixture.output, value: record.value }];
          },
        },
        { kafka, registry, metrics, log },
        { maxAttempts: 3, retryBackoffMs: 50, maxRecordBytes: 1_048_576, instanceId: "lag-outage", sessionTimeoutMs: 6_000, commitIntervalMs: 200, lagSampleMs: 250 },
      ),
    );
    await produce(fixture, inquiries(10, "outage"));
    await until("a lag of 10", async () => (total(await lagOf(metrics)) === 10 ? true : undefined));

    await supervisor.down([kafkaService]);
    await until("the sampler saying the lag is not measured", () => (said("consumer lag not measured; its gauges keep their last values until Kafka answers") > 0 ? true : undefined));
    // A sample is tried every 250 ms from here and fails: the gauges keep their values, the failure is said once.
    const before = await lagOf(metrics);
    await sleep(3_000);
    expect(await lagOf(metrics)).toEqual(before);
    expect(total(before)).toBe(10);
    expect(said("consumer lag not measured; its gauges keep their last values until Kafka answers")).toBe(1);

    await supervisor.up([kafkaService]);
    away = false;
    await until("the lag measured again", () => (said("consumer lag measured again") > 0 ? true : undefined), 120_000);
    await until("the lag back at 0", async () => (total(await lagOf(metrics)) === 0 ? true : undefined), 120_000);
    expect((await readCommitted(kafka, fixture.output, 10)).length).toBe(10);
  });
});
