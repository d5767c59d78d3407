import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { stackPorts } from "../../stack/index.js";
import { kafka as kafkaService } from "../../stack/services/kafka.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { createTopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { freePort, get, post, setupServices, startApi, tailTopic, testKey, until, type ApiProcess } from "../support/api.js";
import { quietLog, stopChild } from "../support/topics.js";
import { schemaRegistryOptions } from "../../config/security.js";

/**
 * Redis and Kafka going away under a running API, and coming back. The shared stack's services
 * stay up for everyone else: each test stops a service of its own, a second redis-server and a
 * second single-broker Kafka (the local stack's, from its cached jars, on free ports).
 */

const endpoints = inject("endpoints");
const runId = `api-outages-${randomUUID().slice(0, 8)}`;
let token: string;

const inquiry = (text: string) => ({ body: text, metadata: { test_run: runId } });
const body = async (response: Response) => (await response.json()) as { error: string; inquiry_id: string };

beforeAll(async () => {
  await setupServices(endpoints);
  ({ token } = await testKey(endpoints));
});

describe("Redis down", () => {
  let redis: ChildProcess | undefined;
  let api: ApiProcess | undefined;
  afterAll(async () => {
    await api?.stop();
    if (redis) await stopChild(redis);
  });

  it("503 with Retry-After while it is away, nothing published; the API recovers by itself when it is back", async () => {
    const port = await freePort();
    const startRedis = () => spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    redis = startRedis();
    api = await startApi(endpoints, { REDIS_URL: `redis://127.0.0.1:${port}` });
    const url = `${api.url}/v1/inquiries`;
    expect((await post(url, token, inquiry("before the outage"))).status).toBe(202);

    await stopChild(redis);
    const refused = await post(url, token, inquiry("during the outage"), { "idempotency-key": `outage-${runId}` });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    expect((await body(refused)).error).toBe("unavailable_redis");
    expect((await get(`${url}/${randomUUID()}`, token)).status).toBe(503);
    const health = await fetch(`${api.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ checks: { redis: false } });

    redis = startRedis();
    const recovered = await until(async () => {
      const response = await post(url, token, inquiry("during the outage"), { "idempotency-key": `outage-${runId}` });
      return response.status === 202 ? response : undefined;
    }, 20_000);
    expect(recovered?.status).toBe(202);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/switchboard_connector_rejected_total\{[^}]*reason="unavailable_redis"[^}]*\} [1-9]/);
  });
});

describe("Kafka down", () => {
  const home = mkdtempSync(path.join(os.tmpdir(), "switchboard-kafka2-"));
  const config = loadConfig();
  let supervisor: ReturnType<typeof createSupervisor>;
  let api: ApiProcess | undefined;
  afterAll(async () => {
    await api?.stop();
    await supervisor?.down([kafkaService]);
    rmSync(home, { recursive: true, force: true });
  });

  it("503 with Retry-After while the broker is down; the retry with its Idempotency-Key is the same inquiry; the API recovers by itself", { timeout: 300_000 }, async () => {
    // The shared stack's jars, so the second broker needs no Maven run.
    symlinkSync(path.join(config.stackHome, "cache"), path.join(home, "cache"));
    const ports = { ...stackPorts(config), kafka: await freePort(), kafkaController: await freePort(), kafkaSasl: await freePort() };
    supervisor = createSupervisor(home, ports, quietLog);
    await supervisor.up([kafkaService]);
    const brokers = [`127.0.0.1:${ports.kafka}`];
    const kafka = createKafka({ ...endpoints, kafkaBrokers: brokers }, runId, quietLog);
    await createTopics(kafka, TRIAGE, quietLog);
    const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));

    // Started while the broker is up; it reconnects by itself after the outage.
    const tail = await tailTopic<InquiryReceived>(kafka, codec, "inquiries.received", (v) => v.envelope.metadata.test_run === runId);
    api = await startApi(endpoints, { KAFKA_BROKERS: brokers.join(",") });
    const url = `${api.url}/v1/inquiries`;
    expect((await post(url, token, inquiry("before the outage"))).status).toBe(202);

    await supervisor.down([kafkaService]);
    const started = Date.now();
    const refused = await post(url, token, inquiry("sent while Kafka is down"), { "idempotency-key": `kafka-${runId}` });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    expect((await body(refused)).error).toBe("unavailable_kafka");
    // Bounded by the intake's timeout, not by the client's patience.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(503);

    await supervisor.up([kafkaService]);
    try {
      // The client retries with the same Idempotency-Key, as a 503 invites.
      const recovered = await until(async () => {
        const response = await post(url, token, inquiry("sent while Kafka is down"), { "idempotency-key": `kafka-${runId}` });
        return response.status === 202 ? response : undefined;
      }, 60_000, 1_000);
      expect(recovered?.status).toBe(202);
      const { inquiry_id: id } = await body(recovered!);
      expect(await until(async () => ((await fetch(`${api!.url}/healthz`)).status === 200 ? true : undefined), 10_000)).toBe(true);
      expect(await until(async () => (tail.records().some((r) => r.key === id) ? true : undefined), 30_000)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      // No second inquiry: a produce still in flight when the API gave up may land once the broker
      // is back (kafkajs cannot cancel it), so the retry repeats that same inquiry (id and time),
      // which every stage downstream keys by.
      const copies = tail.records().filter((r) => r.value.body === "sent while Kafka is down");
      expect(copies.length).toBeGreaterThanOrEqual(1);
      expect(new Set(copies.map((r) => r.key))).toEqual(new Set([id]));
      expect(new Set(copies.map((r) => r.value.envelope.received_at)).size).toBe(1);
    } finally {
      await tail.close();
    }
  });
});
