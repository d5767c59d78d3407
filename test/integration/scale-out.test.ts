import { setTimeout as sleep } from "node:timers/promises";
import type { ChildProcess } from "node:child_process";
import { afterEach, describe, expect, inject, it } from "vitest";
import { freePort } from "../support/api.js";
import { chainFixture, inquiries, readCommitted, startWorker, stopChild, type ChainFixture } from "../support/topics.js";
import { metricValue, unlessExits, until, waitHealthy } from "../support/worker-process.js";

const PARTITIONS = 6;
const SLICE = 100;

interface Instance {
  readonly id: string;
  readonly child: ChildProcess;
  readonly port: number;
}

/** Records the instance wrote in committed transactions, from its own /metrics. */
async function recordsOut(instance: Instance, fixture: ChainFixture): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${instance.port}/metrics`).catch(() => undefined);
  if (!response?.ok) return 0;
  return metricValue(await response.text(), "switchboard_records_out_total", { topic: fixture.output });
}

describe("scale-out", () => {
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) await stopChild(child, "SIGKILL");
  });

  it("instances in one group share the partitions; with one SIGKILLed and a fourth added under load, every record is written exactly once", async () => {
    const fixture = await chainFixture("scale", inject("endpoints"), 1, PARTITIONS);
    // Each instance its own transactional id (processor name + instance id), as on separate hosts.
    const start = async (id: string): Promise<Instance> => {
      const port = await freePort();
      // A few ms a record keeps each instance busy most of the time, so a kill finds work uncommitted.
      const child = startWorker(fixture, {
        SWITCHBOARD_INSTANCE_ID: id,
        SWITCHBOARD_METRICS_PORT: String(port),
        WORKER_TAG_OUTPUT: "1",
        WORKER_DELAY_MS: "4",
      });
      children.push(child);
      return { id, child, port };
    };
    const [a, b, c] = await Promise.all(["scale-a", "scale-b", "scale-c"].map(start));
    await Promise.all([a!, b!, c!].map((w) => waitHealthy(w.child, w.port)));

    // Continuous load, until told to stop.
    let produced = 0;
    let loading = true;
    const producer = fixture.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const load = (async () => {
      while (loading) {
        const values = inquiries(SLICE).map((v, i) => ({ ...v, inquiry_id: `scale-${produced + i}` }));
        await producer.send({ topic: fixture.input, messages: values.map((v) => ({ key: v.inquiry_id, value: fixture.codec.encode(fixture.input, v) })) });
        produced += SLICE;
        await sleep(100);
      }
    })();
    const alive = [a!, c!];
    const working = (instance: Instance) =>
      unlessExits(
        instance.child,
        until(`${instance.id} to commit output`, async () => ((await recordsOut(instance, fixture)) > 0 ? true : undefined)),
      );

    // Once each of the three has committed output, each holds partitions: kill one mid-stream.
    await Promise.all([a!, b!, c!].map(working));
    await stopChild(b!.child, "SIGKILL");
    const d = await start("scale-d");
    alive.push(d);
    // d joins once b's session has expired; it must take partitions and commit under the load.
    await working(d);
    const target = produced + 5 * SLICE;
    await until("more load after the fourth joined", () => (produced >= target ? true : undefined));
    loading = false;
    await load;
    await producer.disconnect();
    expect(alive.filter((w) => w.child.exitCode !== null || w.child.signalCode !== null).map((w) => w.id)).toEqual([]);

    // b's last transaction stays open until the broker times it out; read_committed waits for it.
    const output = await readCommitted(fixture.kafka, fixture.output, produced, { timeoutMs: 120_000, settleMs: 3_000 });
    const counts = new Map<string, number>();
    for (const r of output) counts.set(r.key!, (counts.get(r.key!) ?? 0) + 1);
    const missing = Array.from({ length: produced }, (_, i) => `scale-${i}`).filter((key) => !counts.has(key)).length;
    const duplicated = [...counts.values()].filter((n) => n > 1).length;
    expect({ total: output.length, missing, duplicated }).toEqual({ total: produced, missing: 0, duplicated: 0 });
    // Every instance's committed work is in the output, under its own tag.
    expect(new Set(output.map((r) => r.headers["test.instance"]))).toEqual(new Set(["scale-a", "scale-b", "scale-c", "scale-d"]));
  }, 240_000);
});
