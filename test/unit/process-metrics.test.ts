import { setTimeout as sleep } from "node:timers/promises";
import v8 from "node:v8";
import vm from "node:vm";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { collectProcessMetrics } from "../../streams/process-metrics.js";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const keptBytes = async (registry: Registry) => {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === "switchboard_heap_after_major_gc_bytes");
  return Number((metric as { values: { value: number }[] } | undefined)?.values[0]?.value);
};

/** A full collection, then the observer's delivery (a later task). */
const collect = async () => {
  gc();
  await sleep(50);
};

describe("the heap a process keeps alive (switchboard_heap_after_major_gc_bytes)", () => {
  it("follows what survives a full collection, not the garbage between collections", async () => {
    const registry = new Registry();
    const stop = collectProcessMetrics(registry);
    try {
      await collect();
      const base = await keptBytes(registry);
      expect(base).toBeGreaterThan(0);

      let kept: number[][] | undefined = Array.from({ length: 200 }, () => Array.from({ length: 10_000 }, (_, i) => i + 0.5));
      await collect();
      const holding = await keptBytes(registry);
      expect(holding - base).toBeGreaterThan(10 * 2 ** 20); // 2 million doubles, 16 MB

      // Garbage made and dropped since is not counted after the next collection; what was released is not either.
      for (let i = 0; i < 100; i++) void Array.from({ length: 10_000 }, (_, j) => j + 0.5);
      expect(kept.length).toBe(200);
      kept = undefined;
      await collect();
      expect(await keptBytes(registry)).toBeLessThan(holding - 10 * 2 ** 20);
    } finally {
      stop();
    }
  });

  it("stops following collections once stopped", async () => {
    const registry = new Registry();
    collectProcessMetrics(registry)();
    await collect();
    const before = await keptBytes(registry);
    const kept = Array.from({ length: 100 }, () => Array.from({ length: 10_000 }, (_, i) => i + 0.5));
    await collect();
    expect(await keptBytes(registry)).toBe(before);
    expect(kept.length).toBe(100);
  });
});
