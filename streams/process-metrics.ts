import { PerformanceObserver, constants } from "node:perf_hooks";
import v8 from "node:v8";
import { Gauge, collectDefaultMetrics, type Registry } from "prom-client";

/**
 * The Node process's own figures beyond prom-client's defaults. Heap used sampled at a scrape
 * is a saw-tooth of garbage waiting for the next collection, and RSS keeps pages the allocator
 * holds on to; the heap right after a full (mark-compact) collection is what the process keeps
 * alive, so a leak is a slope there and nowhere else as clearly.
 */
export function createProcessMetrics(registry: Registry) {
  return {
    heapAfterMajorGc: new Gauge({
      name: "switchboard_heap_after_major_gc_bytes",
      help: "V8 heap in use right after the latest full (mark-compact) garbage collection, the memory the process keeps alive (before the first one: the heap in use at start)",
      registers: [registry],
    }),
  };
}

type GcEntry = PerformanceEntry & { readonly detail?: { readonly kind?: number } };

/** prom-client's default metrics and the process metrics above on `registry`; the returned function stops observing. */
export function collectProcessMetrics(registry: Registry): () => void {
  collectDefaultMetrics({ register: registry });
  const metrics = createProcessMetrics(registry);
  metrics.heapAfterMajorGc.set(v8.getHeapStatistics().used_heap_size);
  // Entries are delivered after the collection, in a later task: allocations in between are counted too (microseconds' worth).
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some((entry) => (entry as GcEntry).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) {
      metrics.heapAfterMajorGc.set(v8.getHeapStatistics().used_heap_size);
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return () => observer.disconnect();
}
