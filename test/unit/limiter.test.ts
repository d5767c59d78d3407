import { describe, expect, it } from "vitest";
import { createLimiter } from "../../streams/limiter.js";

/** A task that records when it starts and ends, finishing after `ms`. */
const recorder = (log: string[]) => (name: string, ms: number, fail = false) => () =>
  new Promise<string>((resolve, reject) => {
    log.push(`start ${name}`);
    setTimeout(() => {
      log.push(`end ${name}`);
      if (fail) reject(new Error(name));
      else resolve(name);
    }, ms);
  });

describe("limiter", () => {
  it("with concurrency 1 runs tasks one at a time in submission order, even after a failure", async () => {
    const limiter = createLimiter(1);
    const log: string[] = [];
    const task = recorder(log);
    await Promise.allSettled([limiter.run(task("a", 20)), limiter.run(task("b", 1, true)), limiter.run(task("c", 1))]);
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });

  it("never runs more than its concurrency at once and hands each caller its own result", async () => {
    const limiter = createLimiter(3);
    let running = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        limiter.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((resolve) => setTimeout(resolve, 5 + (i % 3)));
          running--;
          return i;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(results).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("runs an exclusive task alone: after the tasks before it, before the tasks after it", async () => {
    const limiter = createLimiter(4);
    const log: string[] = [];
    const task = recorder(log);
    await Promise.all([
      limiter.run(task("a", 10)),
      limiter.run(task("b", 5)),
      limiter.exclusive(task("flush", 5)),
      limiter.run(task("c", 1)),
    ]);
    expect(log.indexOf("start flush")).toBeGreaterThan(Math.max(log.indexOf("end a"), log.indexOf("end b")));
    expect(log.indexOf("start c")).toBeGreaterThan(log.indexOf("end flush"));
  });

  it("refuses a concurrency that is not a positive integer", () => {
    expect(() => createLimiter(0)).toThrow(/positive integer/);
    expect(() => createLimiter(1.5)).toThrow(/positive integer/);
  });
});
