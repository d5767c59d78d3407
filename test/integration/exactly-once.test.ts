import { afterEach, describe, expect, it, inject } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import type { ChildProcess } from "node:child_process";
import { inquiries, chainFixture, produce, readCommitted, startWorker, stopChild } from "../support/topics.js";

const RECORDS = 20_000;

/** Counts of each key in the output: every input id must appear exactly once. */
function tally(keys: (string | null)[]): { missing: number; duplicated: number } {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(String(key), (counts.get(String(key)) ?? 0) + 1);
  let missing = 0;
  for (let i = 0; i < RECORDS; i++) if (!counts.has(`eo-${i}`)) missing++;
  const duplicated = [...counts.values()].filter((n) => n > 1).length;
  return { missing, duplicated };
}

describe("exactly once", () => {
  let worker: ChildProcess | undefined;
  // After each test: the next one starts a worker of its own, and one left running outlives the suite.
  afterEach(async () => {
    if (worker) await stopChild(worker, "SIGKILL");
    worker = undefined;
  });

  it("a pass-through killed with SIGKILL at random moments writes every input exactly once", async () => {
    const fixture = await chainFixture("eo", inject("endpoints"));
    const values = inquiries(RECORDS, "eo");
    worker = startWorker(fixture);
    // Produce in slices while the worker is killed and restarted at random moments.
    const producing = (async () => {
      for (let i = 0; i < RECORDS; i += 1000) {
        await produce(fixture, values.slice(i, i + 1000));
        await sleep(150);
      }
    })();
    let kills = 0;
    const killing = (async () => {
      for (let round = 0; round < 5; round++) {
        await sleep(1500 + Math.random() * 3000);
        await stopChild(worker!, "SIGKILL");
        kills++;
        worker = startWorker(fixture);
      }
    })();
    await Promise.all([producing, killing]);
    const output = await readCommitted(fixture.kafka, fixture.output, RECORDS, { timeoutMs: 180_000, settleMs: 5_000 });
    const { missing, duplicated } = tally(output.map((r) => r.key));
    expect(kills).toBe(5);
    expect({ missing, duplicated, total: output.length }).toEqual({ missing: 0, duplicated: 0, total: RECORDS });
  }, 400_000);

  it("with records in flight at once and finishing out of order, writes each exactly once and in its partition's order", async () => {
    const fixture = await chainFixture("concurrent", inject("endpoints"));
    const count = 5_000;
    const values = inquiries(count, "co");
    const concurrent = { WORKER_CONCURRENCY: "8", WORKER_DELAY_MS: "3" };
    worker = startWorker(fixture, concurrent);
    const producing = produce(fixture, values, 250);
    await sleep(2_000);
    await stopChild(worker, "SIGKILL");
    worker = startWorker(fixture, concurrent);
    await producing;
    const output = await readCommitted(fixture.kafka, fixture.output, count, { timeoutMs: 120_000, settleMs: 3_000 });
    const ids = output.map((r) => r.key!);
    expect({ total: ids.length, distinct: new Set(ids).size }).toEqual({ total: count, distinct: count });
    // Keys keep their partition from input to output, and were produced in increasing order.
    const outOfOrder = [0, 1, 2].filter((partition) => {
      const sequence = output.filter((r) => r.partition === partition).map((r) => Number(r.key!.slice("co-".length)));
      return sequence.some((n, i) => i > 0 && n < sequence[i - 1]!);
    });
    expect(outOfOrder).toEqual([]);
  }, 200_000);

  it("passes on a backlog that one transaction writes as more than a broker record batch holds, and in commit-interval chunks", async () => {
    const fixture = await chainFixture("backlog", inject("endpoints"));
    // 6,000 records of ~2 KB spread over the input's three partitions, all with one key: the
    // worker's first fetch carries them all and its transaction writes them to one output
    // partition, ~12 MB against the broker's 1 MiB message.max.bytes per record batch.
    const values = inquiries(6_000, "backlog").map((v) => ({ ...v, body: `${v.body} ${"x".repeat(2_000)}` }));
    const producer = fixture.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < values.length; i += 300) {
      const slice = values.slice(i, i + 300);
      await producer.send({
        topic: fixture.input,
        messages: slice.map((v, j) => ({ key: "one-customer", partition: j % 3, value: fixture.codec.encode(fixture.input, v) })),
      });
    }
    await producer.disconnect();
    // A short commit interval splits each partition batch into many transactions as well.
    worker = startWorker(fixture, { SWITCHBOARD_COMMIT_INTERVAL_MS: "20" });
    const output = await readCommitted(fixture.kafka, fixture.output, values.length, { timeoutMs: 120_000, settleMs: 2_000 });
    const decoded = await Promise.all(output.map((r) => fixture.codec.decode(fixture.output, r.value)));
    const ids = decoded.map((v) => (v as { inquiry_id: string }).inquiry_id);
    expect({ total: ids.length, distinct: new Set(ids).size }).toEqual({ total: values.length, distinct: values.length });
  }, 200_000);
});
