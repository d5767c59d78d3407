import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createQueueMetrics, recordQueues } from "../../monitoring/queues.js";

describe("queue metrics", () => {
  it("set the waiting inquiries and the oldest's age per department and queue; an emptied queue loses its series", async () => {
    const registry = new Registry();
    const metrics = createQueueMetrics(registry);
    recordQueues(metrics, [
      { department: "billing", queue: "tier2", open: 3, oldest_seconds: 15_000 },
      { department: "sales", queue: "general", open: 1, oldest_seconds: 60 },
    ]);
    recordQueues(metrics, [{ department: "billing", queue: "tier2", open: 2, oldest_seconds: 15_060 }]);
    const text = await registry.metrics();
    expect(text).toContain('switchboard_queue_open_inquiries{department="billing",queue="tier2"} 2');
    expect(text).toContain('switchboard_queue_oldest_open_seconds{department="billing",queue="tier2"} 15060');
    expect(text).not.toContain('queue="general"');
  });
});
