import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { KafkaMessage } from "kafkajs";
import pino from "pino";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import { readArticles } from "../../knowledge-base/articles.js";
import { respond } from "../../processors/respond/index.js";
import type { ToxicityModel } from "../../processors/respond/toxicity.js";
import { routedInquiry } from "../support/routed.js";
import { resolveEndpoints } from "../../stack/index.js";
import type { TopicCodec } from "../../streams/codec.js";
import { createRuntimeMetrics } from "../../streams/metrics.js";
import { createRecordPath } from "../../streams/record-path.js";
import { createResources, type Resources } from "../../streams/resources.js";
import { processorTask } from "../../streams/task.js";
import type { ProcessorDeclaration, Topology } from "../../streams/topology.js";

/**
 * respond's record while Elasticsearch is away or not ready: the real processor, the real
 * Elasticsearch client and the runtime's record path, against an HTTP server answering as
 * Elasticsearch does after a restart (503 'all shards failed' per search, 429, a whole request
 * refused with 503, connections reset) and then as a ready cluster. The record waits through all
 * of it, more tries than its attempts, and is answered once; nothing goes to the DLQ.
 */

const INDEX = "kb-unavailable-test";
const MAX_ATTEMPTS = 3;
const log = pino({ level: "silent" });

const topic = (name: string, valueSchema: string) => ({ name, description: name, partitions: 1, retentionMs: 1, compacted: false, valueSchema });
const declaration: ProcessorDeclaration = { name: "respond", description: "respond under test", inputs: ["routed"], outputs: ["responses"], metricsPort: 0 };
const topology: Topology = {
  name: "respond-unavailable",
  topics: [topic("routed", "inquiries.routed"), topic("responses", "inquiries.responses")],
  processors: [declaration],
  chains: [],
  connectors: [],
};

/** JSON behind the 5-byte frame: the record path only needs the bytes to round-trip. */
const codec: TopicCodec = {
  decode: async (_topic, bytes) => JSON.parse(bytes!.subarray(5).toString()),
  decodeOwn: (_topic, bytes) => JSON.parse(bytes.subarray(5).toString()),
  encode: (_topic, value) => Buffer.concat([Buffer.alloc(5), Buffer.from(JSON.stringify(value))]),
};

const routed = routedInquiry({ inquiry_id: "inq-es-away" });

/** Scores every text clean: the guardrail is not what this test is about. */
const clean: ToxicityModel = { score: async (texts) => texts.map(() => ({ score: 0.01, threshold: 0.4, model: "toxicity@test" })) };

const article = readArticles().find((a) => a.id === "track_order")!;
const HIT = {
  _index: INDEX,
  _id: article.id,
  _score: 12,
  _source: { intent: article.intent, category: article.category, department: article.department, title: article.title, body: article.body, template: article.template },
};
const SHARDS_FAILED = { type: "search_phase_execution_exception", reason: "all shards failed", root_cause: [] };

type Answer = "search-503" | "search-429" | "request-503" | "reset" | "ready";

/** Elasticsearch as respond's client sees it: `answers` in turn for each _msearch, then `after()`. */
function elasticsearchServer(answers: Answer[], after: () => Answer) {
  const seen: Answer[] = [];
  const send = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { "content-type": "application/json", "x-elastic-product": "Elasticsearch" });
    response.end(JSON.stringify(body));
  };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    request.on("end", () => {
      if (request.method === "HEAD" && request.url?.startsWith(`/${INDEX}`)) return send(response, 200, {});
      if (!request.url?.startsWith("/_msearch")) return send(response, 404, { error: { type: "not_found", reason: request.url }, status: 404 });
      const answer = answers.shift() ?? after();
      seen.push(answer);
      switch (answer) {
        case "search-503":
          return send(response, 200, { took: 1, responses: [{ error: SHARDS_FAILED, status: 503 }] });
        case "search-429":
          return send(response, 200, { took: 1, responses: [{ error: { type: "es_rejected_execution_exception", reason: "rejected execution" }, status: 429 }] });
        case "request-503":
          return send(response, 503, { error: SHARDS_FAILED, status: 503 });
        case "reset":
          return request.socket.destroy();
        case "ready":
          return send(response, 200, {
            took: 1,
            responses: [{ took: 1, timed_out: false, _shards: { total: 1, successful: 1, skipped: 0, failed: 0 }, hits: { total: { value: 1, relation: "eq" }, max_score: 12, hits: [HIT] }, status: 200 }],
          });
      }
    });
  });
  return { server, seen };
}

describe("respond while Elasticsearch is away or not ready", () => {
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  it("holds the record without spending its attempts (503 and 429 per search, a refused request, reset connections), then answers it once: no DLQ", async () => {
    let back = false;
    const { server, seen } = elasticsearchServer(
      ["search-503", "search-503", "search-429", "search-429", "request-503", "search-503", "search-503"],
      () => (back ? "ready" : "reset"),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closing.push(() => new Promise((resolve) => server.close(() => resolve())));
    const config = { ...loadConfig({ ...process.env, ELASTICSEARCH_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }), knowledgeBaseIndex: INDEX };
    const endpoints = resolveEndpoints(config);
    const resources: Resources = createResources(config, endpoints, log, "test-respond-unavailable");
    closing.push(() => resources.close());

    const implementation = await respond(declaration, { topology, config, endpoints, log, resources }, { embedder: null, llm: null, toxicity: clean });
    const metrics = createRuntimeMetrics(new Registry());
    const run = createRecordPath(processorTask(declaration, implementation), { codec, metrics, log }, { maxAttempts: MAX_ATTEMPTS, retryBackoffMs: 1, maxRecordBytes: 1_048_576 });
    const retries = async () => (await metrics.retries.get()).values.find((v) => v.labels.processor === "respond")?.value ?? 0;

    const message = { key: Buffer.from(routed.inquiry_id), value: codec.encode("routed", routed), headers: {}, timestamp: "0", offset: "0" } as unknown as KafkaMessage;
    let settled = false;
    const outcome = run("routed", 0, message).finally(() => (settled = true));
    // Six tries fail on the scripted answers (the client retries the refused request itself and
    // gets the 503 search after it: one try), a seventh on reset connections (the client's own
    // retries included); the eighth finds the cluster back.
    const failedTries = 7;
    for (const deadline = Date.now() + 60_000; !settled && (await retries()) < failedTries && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    back = true;
    const { dlq, messages } = await outcome;

    expect(dlq).toBe(false);
    expect(messages.map((m) => m.topic)).toEqual(["responses"]);
    expect(codec.decodeOwn("responses", messages[0]!.message.value as Buffer)).toMatchObject({ inquiry_id: routed.inquiry_id, strategy: "template", sources: ["track_order"] });
    // Every try but the last failed for want of Elasticsearch, more than twice the record's attempts.
    expect(await retries()).toBeGreaterThanOrEqual(failedTries);
    expect(failedTries).toBeGreaterThan(2 * MAX_ATTEMPTS);
    expect((await metrics.dlqRecords.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(0);
    expect(new Set(seen)).toEqual(new Set(["search-503", "search-429", "request-503", "reset", "ready"]));
    expect(seen.at(-1)).toBe("ready");
  });
});
