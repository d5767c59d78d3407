import { setTimeout as sleep } from "node:timers/promises";
import type { ChildProcess } from "node:child_process";
import { afterAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import { kafka as kafkaService } from "../../stack/services/kafka.js";
import { stackPorts } from "../../stack/index.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { inquiries, chainFixture, produce, quietLog, readCommitted, startWorker, stopChild } from "../support/topics.js";

const config = loadConfig();
const localKafka = !config.kafkaBrokers && inject("endpoints").kafkaBrokers.join() === `127.0.0.1:${config.kafkaPort}`;

describe.runIf(localKafka)("broker restart", () => {
  let worker: ChildProcess | undefined;
  afterAll(async () => {
    if (worker) await stopChild(worker, "SIGKILL");
  });

  it("processors recover after the broker restarts mid-stream, with no loss and no duplicate", async () => {
    const supervisor = createSupervisor(config.stackHome, stackPorts(config), quietLog);
    const fixture = await chainFixture("restart", inject("endpoints"));
    worker = startWorker(fixture);
    const before = inquiries(3000, "before");
    const after = inquiries(3000, "after");
    await produce(fixture, before);
    await sleep(1000);
    await supervisor.down([kafkaService]);
    await sleep(2000);
    await supervisor.up([kafkaService]);
    await produce(fixture, after);

    const output = await readCommitted(fixture.kafka, fixture.output, 6000, { timeoutMs: 180_000 });
    const keys = output.map((r) => r.key);
    expect(new Set(keys).size).toBe(6000);
    expect(keys).toHaveLength(6000);
    expect(worker.exitCode).toBeNull();
  }, 300_000);
});
