import { afterAll, describe, expect, it , inject } from "vitest";
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
  afterAll(async () => {
    if (worker) await stopChild(worker, "SIGKILL");
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
});
