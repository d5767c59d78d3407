import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@elastic/elasticsearch";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka } from "kafkajs";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import { readArticles } from "../../knowledge-base/articles.js";
import type { TextEmbedder } from "../../knowledge-base/embedding.js";
import { loadKnowledgeBase } from "../../knowledge-base/load.js";
import { respond } from "../../processors/respond/index.js";
import { openAiChatModel } from "../../processors/respond/llm.js";
import { registerSchema, targetFor } from "../../schemas/registry.js";
import type { InquiryResponse, InquiryRouted } from "../../schemas/types.generated.js";
import type { Endpoints } from "../../stack/index.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { createRuntimeMetrics } from "../../streams/metrics.js";
import type { InputRecord, ProcessorImplementation } from "../../streams/processor.js";
import { startProcessor, type RunningProcessor } from "../../streams/runtime.js";
import { createTopics } from "../../streams/topics.js";
import type { ProcessorDeclaration, Topology } from "../../streams/topology.js";
import { quietLog, readCommitted } from "../support/topics.js";
import { routedInquiry } from "../support/routed.js";
import { bitextSample, deleteIndex, exportedEmbedder, kbIndexName, type ExportedEmbedder } from "./kb-fixture.js";
import { elasticsearchOptions, schemaRegistryOptions } from "../../config/security.js";
import { createResources } from "../../streams/resources.js";

/**
 * respond as it runs: the transactional runtime over its own Kafka topics, the knowledge base in
 * the real Elasticsearch with the real embedder, routed records in, responses out.
 */

const id = `respond-${randomUUID().slice(0, 8)}`;
const topic = (schema: string) => ({
  name: `test.${id}.${schema}`,
  description: schema,
  partitions: 3,
  retentionMs: 86_400_000,
  compacted: false,
  valueSchema: schema,
});
const routedTopic = topic("inquiries.routed");
const responsesTopic = topic("inquiries.responses");
const processor: ProcessorDeclaration = {
  name: `test-${id}`,
  description: "respond under test",
  inputs: [routedTopic.name],
  outputs: [responsesTopic.name],
  metricsPort: 0,
};
const topology: Topology = {
  name: `test-${id}`,
  topics: [routedTopic, responsesTopic],
  processors: [processor],
  chains: [],
  connectors: [],
};

const index = kbIndexName("respond");
let endpoints: Endpoints;
let es: Client;
let kafka: Kafka;
let codec: TopicCodec;
let exported: ExportedEmbedder;
let embedder: TextEmbedder;
let responder: ProcessorImplementation;
let running: RunningProcessor;

const deps = () => {
  const config = { ...loadConfig(), knowledgeBaseIndex: index };
  return { topology, config, endpoints, log: quietLog, resources: createResources(config, endpoints, quietLog, "test") };
};

beforeAll(async () => {
  endpoints = inject("endpoints");
  es = new Client(elasticsearchOptions(endpoints));
  exported = await exportedEmbedder();
  embedder = exported.embedder;
  await loadKnowledgeBase(es, index, readArticles(), { embedder, log: quietLog });

  kafka = createKafka(endpoints, processor.name, quietLog);
  await createTopics(kafka, topology, quietLog);
  for (const t of topology.topics) await registerSchema(endpoints, targetFor(t.name, t.valueSchema));
  const registry = new SchemaRegistry(schemaRegistryOptions(endpoints));
  codec = await createTopicCodec(registry, topology.topics);

  responder = await respond(processor, deps(), { embedder, llm: null, metricsRegistry: new Registry() });
  running = await startProcessor(
    topology,
    processor,
    responder,
    { kafka, registry, metrics: createRuntimeMetrics(new Registry()), log: quietLog },
    {
      maxAttempts: 3,
      retryBackoffMs: 50,
      maxRecordBytes: 1_048_576,
      instanceId: "test",
      sessionTimeoutMs: 6_000,
      commitIntervalMs: 200,
    },
  );
});

afterAll(async () => {
  await running?.stop();
  await responder?.close?.();
  await deleteIndex(es, index);
  await exported?.dispose();
  await es?.close();
});

function routed(inquiryId: string, overrides: Partial<InquiryRouted> = {}): InquiryRouted {
  const base = routedInquiry();
  return routedInquiry({
    inquiry_id: inquiryId,
    envelope: {
      ...base.envelope,
      source_id: `m-${inquiryId}`,
      customer: { ...base.envelope.customer, tier: "standard" },
      received_at: Date.now() - 50,
      reply_to: "dana@example.com",
    },
    text: "Where is my order 48213? The tracking has not moved since Monday.",
    routed_at: Date.now(),
    ...overrides,
  });
}

async function produce(records: readonly InquiryRouted[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({
      topic: routedTopic.name,
      messages: records.map((r) => ({ key: r.inquiry_id, value: codec.encode(routedTopic.name, r) })),
    });
  } finally {
    await producer.disconnect();
  }
}

let seen = 0;
/** Every response committed so far, by inquiry id (duplicates would show as arrays longer than one). */
async function responses(expectedTotal: number): Promise<Map<string, InquiryResponse[]>> {
  const records = await readCommitted(kafka, responsesTopic.name, expectedTotal, {
    timeoutMs: 90_000,
    settleMs: 2_000,
  });
  seen = records.length;
  const byId = new Map<string, InquiryResponse[]>();
  for (const record of records) {
    const response = (await codec.decode(responsesTopic.name, record.value)) as InquiryResponse;
    expect(record.key).toBe(response.inquiry_id);
    byId.set(response.inquiry_id, [...(byId.get(response.inquiry_id) ?? []), response]);
  }
  return byId;
}

describe("respond", () => {
  it("refuses to start without a knowledge-base index, saying how to make one", async () => {
    const missing = { ...deps(), config: { ...deps().config, knowledgeBaseIndex: kbIndexName("missing") } };
    await expect(respond(processor, missing, { embedder: null })).rejects.toThrow(
      /does not exist: run `switchboard kb load` first/,
    );
  });

  it("refuses to start without a production toxicity model, saying how to get one", async () => {
    const base = deps();
    const bare = { ...base, config: { ...base.config, registrySchema: `no_models_${id.replace(/-/g, "_")}` } };
    const withoutRegistry = { ...bare, resources: createResources(bare.config, endpoints, quietLog, "test") };
    try {
      await expect(respond(processor, withoutRegistry, { embedder: null })).rejects.toThrow(
        /cannot start: no production toxicity model, the reply guardrail .*`switchboard train --defaults`/,
      );
    } finally {
      await withoutRegistry.resources.close();
    }
  });

  it("answers each routed inquiry exactly once, by template, retrieval or hand-off", async () => {
    const cases: Record<string, { record: InquiryRouted; check: (r: InquiryResponse) => void }> = {};
    const add = (label: string, overrides: Partial<InquiryRouted>, check: (r: InquiryResponse) => void) => {
      const inquiryId = `${id}-${label}`;
      cases[inquiryId] = { record: routed(inquiryId, overrides), check };
    };
    add("template", {}, (r) => {
      expect(r).toMatchObject({ strategy: "template", sources: ["track_order"], department: "orders", model: null });
      expect(r.text).toMatch(/^Hello Dana,\n\nThanks for checking in on order 48213\./);
    });
    add(
      "template-no-entities",
      {
        entities: [],
        envelope: { ...routed("x").envelope, customer: { id: null, email: null, name: null, tier: null } },
      },
      (r) => {
        expect(r.strategy).toBe("template");
        expect(r.text).toMatch(/^Hello,\n\nThanks for checking in on your order\./);
      },
    );
    add(
      "retrieval",
      {
        intent: "review",
        category: "FEEDBACK",
        text: "I forgot my password and the reset email never arrives, I cannot log in",
        entities: [],
        department: "customer_relations",
      },
      (r) => {
        expect(r).toMatchObject({
          strategy: "retrieval",
          sources: ["recover_password"],
          department: "customer_relations",
        });
        expect(r.text).toContain("https://example.com/account/reset");
      },
    );
    add("escalated", { escalated: true, escalation_reason: "critical urgency", urgency: "critical" }, (r) => {
      expect(r).toMatchObject({ strategy: "human", sources: [] });
      expect(r.text).toMatch(/priority.*within 2 hours/s);
    });
    add(
      "review",
      { human_review: true, review_reasons: ["intent confidence 0.41 below 0.6"], department: "billing" },
      (r) => {
        expect(r.strategy).toBe("human");
        expect(r.text).toContain("within 24 hours");
      },
    );
    add(
      "out-of-scope",
      { intent: null, category: null, department: "general", text: "What's the weather like in Lisbon tomorrow?" },
      (r) => {
        expect(r.strategy).toBe("human");
        expect(r.text).toContain("within 48 hours");
      },
    );
    // As route sends it: the classifier's guess kept, flagged out of scope, the default department.
    add(
      "out-of-scope-flagged",
      {
        intent: "delivery_period",
        category: "DELIVERY",
        department: "general",
        queue: "general",
        human_review: true,
        review_reasons: ["out_of_scope"],
        text: "Can you recommend a good hotel near the Lisbon office for my trip next week?",
      },
      (r) => {
        expect(r).toMatchObject({ strategy: "human", sources: [], department: "general" });
        expect(r.text).toMatch(/^Hello Dana,\n\nThank you for contacting Harbor & Pine\. Our customer care team helps with orders/);
        expect(r.text).toContain("a member of our team will read it and reply within 48 hours");
      },
    );
    add("german", { language: "de", text: "Wo ist meine Bestellung 48213?", queue: "support-de" }, (r) => {
      expect(r.strategy).toBe("human");
      expect(r.text).toMatch(/^Hallo Dana,\n\nVielen Dank/);
    });
    add("japanese", { language: "ja", text: "注文はどこですか", queue: "international" }, (r) => {
      expect(r.strategy).toBe("human");
      expect(r.text).toMatch(/^Hello Dana,/);
    });

    await produce(Object.values(cases).map((c) => c.record));
    const byId = await responses(Object.keys(cases).length);
    expect([...byId.keys()].sort()).toEqual(Object.keys(cases).sort());
    for (const [inquiryId, { record, check }] of Object.entries(cases)) {
      const [response, ...duplicates] = byId.get(inquiryId)!;
      expect(duplicates, inquiryId).toEqual([]);
      expect(response!.envelope).toEqual(record.envelope);
      expect(response!.text, inquiryId).not.toContain("dana@example.com");
      check(response!);
    }
  });

  it("drafts from templates for most Bitext requests routed with their true intent", async () => {
    const sample = bitextSample(54, 11);
    const records = sample.map((request, i) =>
      routed(`${id}-bitext-${i}`, {
        text: request.text,
        intent: request.intent,
        category: request.category,
        entities: [],
        department: "general",
      }),
    );
    const before = seen;
    await produce(records);
    const byId = await responses(before + records.length);
    const strategies: Record<string, number> = {};
    for (const record of records) {
      const answers = byId.get(record.inquiry_id) ?? [];
      expect(answers, record.inquiry_id).toHaveLength(1);
      const [answer] = answers;
      strategies[answer!.strategy] = (strategies[answer!.strategy] ?? 0) + 1;
      if (answer!.strategy === "template") expect(answer!.sources).toEqual([record.intent]);
    }
    console.log(`strategies for ${records.length} Bitext requests:`, strategies);
    expect(strategies.template ?? 0).toBeGreaterThanOrEqual(0.75 * records.length);
  });

  describe("with an LLM endpoint", () => {
    let server: Server;
    let answer = "";
    beforeAll(async () => {
      server = createServer((request, response) => {
        request.resume();
        request.on("end", () => {
          response.writeHead(200, { "content-type": "application/json" });
          response.end(
            JSON.stringify({
              model: "local-llm-1",
              choices: [{ message: { role: "assistant", content: answer }, finish_reason: "stop" }],
            }),
          );
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    async function respondWithLlm(record: InquiryRouted): Promise<InquiryResponse> {
      const llm = openAiChatModel({
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
        model: "local-llm",
        timeoutMs: 2_000,
      });
      const implementation = await respond(processor, deps(), { embedder, llm, metricsRegistry: new Registry() });
      try {
        const input: InputRecord<InquiryRouted> = {
          topic: routedTopic.name,
          partition: 0,
          offset: "0",
          key: record.inquiry_id,
          value: record,
          headers: {},
          timestamp: Date.now(),
        };
        const [output] = await implementation.process(input as InputRecord, { log: quietLog });
        return output!.value as InquiryResponse;
      } finally {
        await implementation.close?.();
      }
    }

    const unmatched = () =>
      routed(`${id}-llm`, {
        intent: "review",
        category: "FEEDBACK",
        entities: [],
        text: "Do you sell gift wrapping, and can I add a message to the parcel?",
      });

    it("drafts the reply with the LLM when no template fits and both guardrails pass", async () => {
      answer = "We don't offer gift wrapping at the moment. Orders can be followed at https://example.com/orders.";
      const response = await respondWithLlm(unmatched());
      expect(response).toMatchObject({ strategy: "llm", model: "local-llm-1" });
      expect(response.sources.length).toBeGreaterThan(0);
      expect(response.text).toBe(`Hello Dana,\n\n${answer}\n\nKind regards,\nHarbor & Pine Customer Care`);
    });

    it("falls back when the toxicity model holds the LLM's draft back", async () => {
      answer = "Gift wrapping? What a stupid question, nobody here has time for your silly parcel.";
      const response = await respondWithLlm(unmatched());
      expect(response.strategy).not.toBe("llm");
      expect(response.text).not.toContain("stupid");
      expect(response.model).toBeNull();
    });

    it("falls back when the LLM's draft fails the output guardrail", async () => {
      answer = "Gift wrapping? What a stupid question. See https://giftwrap.example.net for that.";
      const response = await respondWithLlm(unmatched());
      expect(response.strategy).not.toBe("llm");
      expect(response.text).not.toContain("stupid");
      expect(response.model).toBeNull();
    });
  });
});
