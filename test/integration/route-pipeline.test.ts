import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka } from "kafkajs";
import type pg from "pg";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { createResources } from "../../streams/resources.js";
import { routeTopicsOf, startRoute, type RouteImplementation } from "../../processors/route/index.js";
import type { PartName } from "../../processors/route/join.js";
import type { RouteTopics } from "../../processors/route/processor.js";
import { registerSchema, targetFor } from "../../schemas/registry.js";
import type { InquiryRouted } from "../../schemas/types.generated.js";
import { createPool } from "../../storage/postgres.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { createRuntimeMetrics } from "../../streams/metrics.js";
import { startProcessor, type RunningProcessor } from "../../streams/runtime.js";
import { createTopics } from "../../streams/topics.js";
import { findTopic } from "../../streams/topology.js";
import {
  createRouteSchema,
  dropRouteSchema,
  inquiryParts,
  routeTestTopology,
  type InquiryParts,
} from "../support/route.js";
import { quietLog, readCommitted } from "../support/topics.js";
import { schemaRegistryOptions } from "../../config/security.js";

/**
 * route as it runs: the transactional runtime over its own Kafka topics, the join in PostgreSQL,
 * the sweeper producing real timeout records, and the rules file reloaded while it consumes.
 */

const DEFAULT_RULES = readFileSync(path.join(REPO_ROOT, "config/routing-rules.yaml"), "utf8");
const JOIN_TIMEOUT_MS = 1_500;

const { topology, processor } = routeTestTopology("route");
let kafka: Kafka;
let codec: TopicCodec;
let topics: RouteTopics;
let adminPool: pg.Pool;
let schema: string;
let rulesDir: string;
let rulesFile: string;
let route: RouteImplementation;
let running: RunningProcessor;

beforeAll(async () => {
  const endpoints = inject("endpoints");
  kafka = createKafka(endpoints, processor.name, quietLog);
  await createTopics(kafka, topology, quietLog);
  for (const topic of topology.topics)
    await registerSchema(endpoints, targetFor(topic.name, topic.valueSchema));
  const registry = new SchemaRegistry(schemaRegistryOptions(endpoints));
  codec = await createTopicCodec(registry, topology.topics);
  topics = routeTopicsOf(processor, topology);

  adminPool = createPool(endpoints, "route-pipeline-test");
  schema = await createRouteSchema(adminPool);
  rulesDir = mkdtempSync(path.join(os.tmpdir(), "switchboard-route-"));
  rulesFile = path.join(rulesDir, "routing-rules.yaml");
  writeFileSync(rulesFile, DEFAULT_RULES);

  route = await startRoute({
    name: processor.name,
    topics,
    timeoutTopic: findTopic(topology, topics.parts.timeout),
    pool: createPool(endpoints, processor.name),
    schema,
    rulesFile,
    joinTimeoutMs: JOIN_TIMEOUT_MS,
    endpoints,
    log: quietLog,
    schedule: createResources(loadConfig(), endpoints, quietLog, "route-pipeline-test").schedule,
  });
  running = await startProcessor(
    topology,
    processor,
    route,
    { kafka, registry, metrics: createRuntimeMetrics(new Registry()), log: quietLog },
    { maxAttempts: 3, retryBackoffMs: 50, maxRecordBytes: 1_048_576, instanceId: "test", sessionTimeoutMs: 6_000, commitIntervalMs: 200 },
  );
});

afterAll(async () => {
  await running?.stop();
  await dropRouteSchema(adminPool, schema);
  await adminPool.end();
  rmSync(rulesDir, { recursive: true, force: true });
});

/** Produces the given parts of each inquiry, every topic's records shuffled, the topics interleaved. */
async function produceParts(inquiries: readonly InquiryParts[], parts: readonly PartName[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const records = inquiries.flatMap((inquiry) => parts.map((part) => ({ part, inquiry })));
    records.sort(() => Math.random() - 0.5);
    for (let i = 0; i < records.length; i += 25) {
      const slice = records.slice(i, i + 25);
      await producer.sendBatch({
        topicMessages: parts.map((part) => ({
          topic: topics.parts[part],
          messages: slice
            .filter((r) => r.part === part)
            .map(({ inquiry }) => ({
              key: inquiry.cleaned.inquiry_id,
              value: codec.encode(topics.parts[part], inquiry[part]),
            })),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

let routedSoFar: InquiryRouted[] = [];
/** Reads the routed topic until `expected` records in all have been committed, and returns the new ones. */
async function nextRouted(expected: number): Promise<InquiryRouted[]> {
  const records = await readCommitted(kafka, topics.routed, routedSoFar.length + expected, {
    timeoutMs: 60_000,
    settleMs: 2 * JOIN_TIMEOUT_MS,
  });
  const all = await Promise.all(
    records.map(async (r) => (await codec.decode(topics.routed, r.value)) as InquiryRouted),
  );
  const fresh = all.filter(
    (r) => !routedSoFar.some((seen) => seen.inquiry_id === r.inquiry_id && seen.routed_at === r.routed_at),
  );
  routedSoFar = all;
  return fresh;
}

const batchOf = (count: number, label: string) =>
  Array.from({ length: count }, () => inquiryParts(`${label}-${randomUUID()}`));
const ALL: readonly PartName[] = ["cleaned", "classified", "sentiment", "urgency"];

describe("route in the transactional runtime", () => {
  it("routes each inquiry exactly once: complete joins at once, incomplete ones after the join timeout", async () => {
    const complete = batchOf(120, "complete");
    const incomplete = batchOf(12, "incomplete");
    await produceParts(complete, ALL);
    await produceParts(incomplete, ["cleaned", "classified"]);

    const routed = await nextRouted(complete.length + incomplete.length);
    const ids = routed.map((r) => r.inquiry_id).sort();
    expect(ids).toEqual([...complete, ...incomplete].map((i) => i.cleaned.inquiry_id).sort());
    for (const r of routed) {
      if (r.inquiry_id.startsWith("complete-")) {
        expect(r).toMatchObject({ department: "accounts", missing_parts: [], human_review: false });
      } else {
        expect(r).toMatchObject({
          department: "accounts",
          missing_parts: ["sentiment", "urgency"],
          human_review: true,
        });
      }
    }

    // The stragglers arrive after the timeout routed their inquiries: nothing more is routed.
    await produceParts(incomplete, ["sentiment", "urgency"]);
    expect(await nextRouted(0)).toEqual([]);
  });

  it("keeps routing under the previous rules while the file is broken, and applies a fixed file without a restart", async () => {
    writeFileSync(rulesFile, DEFAULT_RULES.replace("  ACCOUNT: accounts", "  ACCOUNT: [accounts"));
    await vi.waitFor(() => expect(route.rules.lastError()).toBeDefined(), { timeout: 10_000 });
    const duringBreak = batchOf(20, "broken");
    await produceParts(duringBreak, ALL);
    const routedDuringBreak = await nextRouted(duringBreak.length);
    expect(routedDuringBreak.map((r) => [r.department, r.queue])).toEqual(
      duringBreak.map(() => ["accounts", "accounts"]),
    );

    writeFileSync(rulesFile, DEFAULT_RULES.replace("  ACCOUNT: accounts", "  ACCOUNT: customer_care"));
    await vi.waitFor(() => expect(route.rules.current().categories.get("account")?.name).toBe("customer_care"), {
      timeout: 10_000,
    });
    const afterFix = batchOf(20, "fixed");
    await produceParts(afterFix, ALL);
    const routedAfterFix = await nextRouted(afterFix.length);
    expect(routedAfterFix.map((r) => [r.department, r.queue])).toEqual(
      afterFix.map(() => ["customer_care", "customer-care"]),
    );
  });
});
