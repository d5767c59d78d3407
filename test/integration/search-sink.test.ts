import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { Client } from "@elastic/elasticsearch";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { search } from "../../sinks/search.js";
import { loadConfig, type Config } from "../../config/settings.js";
import { seededRandom, shuffled } from "../../drift/seeded.js";
import type { InquiryCleaned, InquiryRouted, TopicValues } from "../../schemas/types.generated.js";
import type { Endpoints } from "../../stack/index.js";
import { InvalidInputError, TransientError } from "../../streams/errors.js";
import type { InputRecord, ProcessorImplementation } from "../../streams/processor.js";
import { TRIAGE, findProcessor } from "../../streams/topology.js";
import { elasticsearchOptions } from "../../config/security.js";
import { createResources } from "../../streams/resources.js";

type Topic = "inquiries.cleaned" | "inquiries.routed";
type Delivery = InputRecord<TopicValues[Topic]>;

const run = randomUUID().slice(0, 8);
const T0 = Date.UTC(2025, 4, 12, 9, 30);
/** Everything the sink logs, so tests can check what reached the logs. */
const logLines: string[] = [];
const log = pino(
  { level: "info" },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

const delivery = <T extends Topic>(topic: T, value: TopicValues[T]): Delivery => ({
  topic,
  partition: 0,
  offset: "0",
  key: value.inquiry_id,
  value,
  headers: {},
  timestamp: Date.now(),
});

/** Realistic inquiries of different shapes: what the index must tell apart. */
const INQUIRIES = [
  {
    text: "I ordered a kettle two weeks ago (order 48213) and it still has not arrived.",
    subject: "Order 48213 never arrived",
    entities: [{ type: "order_number", value: "48213" }],
    department: "shipping",
    intent: "track_order",
  },
  {
    text: "I was charged twice for the same invoice INV-7781, 49.90 EUR each time. Please refund the duplicate.",
    subject: "Charged twice",
    entities: [{ type: "amount", value: "49.90 EUR" }],
    department: "billing",
    intent: "get_refund",
  },
  {
    text: "Please cancel my subscription at the end of this billing period.",
    subject: null,
    entities: [],
    department: "accounts",
    intent: "cancel_subscription",
  },
  {
    text: "Wie kann ich die Lieferadresse meiner Bestellung ändern?",
    subject: "Lieferadresse",
    entities: [],
    department: "shipping",
    intent: "change_shipping_address",
  },
] as const;

function cleaned(inquiryId: string, n: number, overrides: Partial<InquiryCleaned> = {}): InquiryCleaned {
  const inquiry = INQUIRIES[n % INQUIRIES.length]!;
  return {
    inquiry_id: inquiryId,
    envelope: {
      channel: n % 2 === 0 ? "email" : "chat",
      source_id: `src-${inquiryId}`,
      thread_id: null,
      customer: {
        id: `cust-${n}`,
        email: "dana.whitfield@example.com",
        name: "Dana Whitfield",
        tier: n % 2 === 0 ? "premium" : null,
      },
      received_at: T0 + n,
      reply_to: "dana.whitfield@example.com",
      metadata: {},
    },
    subject: inquiry.subject,
    text: inquiry.text,
    language: inquiry.text.startsWith("Wie") ? "de" : "en",
    language_confidence: 0.95,
    redaction_count: 0,
    entities: inquiry.entities,
    cleaned_at: T0 + n + 30,
    ...overrides,
  };
}

function routed(inquiryId: string, n: number): InquiryRouted {
  const inquiry = INQUIRIES[n % INQUIRIES.length]!;
  const { envelope, text, language, entities } = cleaned(inquiryId, n);
  return {
    inquiry_id: inquiryId,
    envelope,
    text,
    language,
    entities,
    department: inquiry.department,
    queue: `${inquiry.department}-${language}`,
    priority_score: 40 + n,
    escalated: false,
    escalation_reason: null,
    human_review: n === 1,
    review_reasons: n === 1 ? ["low_confidence:intent"] : [],
    missing_parts: [],
    intent: inquiry.intent,
    category: null,
    sentiment: "neutral",
    urgency: "medium",
    urgency_drivers: [],
    routed_at: T0 + n + 80,
  };
}


describe("search sink (Elasticsearch)", () => {
  const index = `switchboard-inquiries-test-${run}`;
  const { processor: declaration } = findProcessor("search");
  let endpoints: Endpoints;
  let config: Config;
  let es: Client;
  let sink: ProcessorImplementation;
  const newInquiryId = () => `search-test-${run}-${randomUUID().slice(0, 8)}`;
  /** As the runtime does: each record of a fetch through process(), then one flush() per `batchSize` records. */
  const deliver = async (records: readonly Delivery[], batchSize = records.length) => {
    for (let start = 0; start < records.length; start += batchSize) {
      for (const record of records.slice(start, start + batchSize)) {
        expect(await sink.process(record, { log })).toEqual([]);
      }
      await sink.flush!();
    }
  };
  const docsOf = async (ids: readonly string[]) => {
    await es.indices.refresh({ index });
    const { hits } = await es.search({ index, size: 100, query: { terms: { inquiry_id: [...ids] } } });
    return hits.hits;
  };

  beforeAll(async () => {
    endpoints = inject("endpoints");
    config = { ...loadConfig(), inquiryIndex: index };
    es = new Client(elasticsearchOptions(endpoints));
    sink = await search(declaration, { topology: TRIAGE, config, endpoints, log, resources: createResources(config, endpoints, log, "test") });
  });

  afterAll(async () => {
    await sink?.close?.();
    await es?.indices.delete({ index, ignore_unavailable: true });
    await es?.close();
  });

  it("creates the index with an explicit, strict mapping, and starts again on the existing index", async () => {
    const mapping = (await es.indices.getMapping({ index }))[index]!.mappings;
    expect(mapping.dynamic).toBe("strict");
    expect(mapping.properties).toMatchObject({
      inquiry_id: { type: "keyword" },
      text: { type: "text", analyzer: "standard" },
      subject: { type: "text", analyzer: "standard" },
      department: { type: "keyword" },
      human_review: { type: "boolean" },
      entities: { type: "nested" },
      received_at: { type: "date" },
    });
    const again = await search(declaration, { topology: TRIAGE, config, endpoints, log, resources: createResources(config, endpoints, log, "test") });
    await again.close?.();
  });

  it.each([
    [1, 16],
    [2, 3],
    [3, 1],
  ])(
    "keeps one document per inquiry, whatever the order and however often each record is delivered (seed %i, %i records per flush)",
    async (seed, batchSize) => {
      const ids = INQUIRIES.map(() => newInquiryId());
      const records = ids.flatMap((id, n) => [
        delivery("inquiries.cleaned", cleaned(id, n)),
        delivery("inquiries.routed", routed(id, n)),
      ]);
      await deliver(shuffled([...records, ...records], seededRandom(seed)), batchSize);

      const docs = await docsOf(ids);
      expect(docs.map((d) => d._id).sort()).toEqual([...ids].sort());
      const byId = new Map(docs.map((d) => [d._id, d._source]));
      expect(byId.get(ids[1]!)).toEqual({
        inquiry_id: ids[1],
        channel: "chat",
        source_id: `src-${ids[1]}`,
        thread_id: null,
        customer_id: "cust-1",
        customer_tier: null,
        subject: "Charged twice",
        text: INQUIRIES[1].text,
        language: "en",
        redaction_count: 0,
        entities: [{ type: "amount", value: "49.90 EUR" }],
        received_at: new Date(T0 + 1).toISOString(),
        cleaned_at: new Date(T0 + 31).toISOString(),
        department: "billing",
        queue: "billing-en",
        priority_score: 41,
        escalated: false,
        human_review: true,
        review_reasons: ["low_confidence:intent"],
        intent: "get_refund",
        category: null,
        sentiment: "neutral",
        urgency: "medium",
        routed_at: new Date(T0 + 81).toISOString(),
      });
    },
  );

  it("finds inquiries by their words, routing fields and entities", async () => {
    const ids = INQUIRIES.map(() => newInquiryId());
    await deliver(
      ids.flatMap((id, n) => [
        delivery("inquiries.cleaned", cleaned(id, n)),
        delivery("inquiries.routed", routed(id, n)),
      ]),
    );
    await es.indices.refresh({ index });
    const matching = async (query: object) => {
      const { hits } = await es.search({
        index,
        size: 100,
        query: { bool: { must: [query], filter: [{ terms: { inquiry_id: ids } }] } },
      });
      return hits.hits.map((h) => h._id).sort();
    };

    expect(await matching({ match: { text: "refund duplicate invoice" } })).toEqual([ids[1]]);
    expect(await matching({ match: { text: "lieferadresse" } })).toEqual([ids[3]]);
    expect(
      await matching({ multi_match: { query: "never arrived", fields: ["subject", "text"], operator: "and" } }),
    ).toEqual([ids[0]]);
    expect(await matching({ term: { department: "shipping" } })).toEqual([ids[0], ids[3]].sort());
    expect(await matching({ term: { human_review: true } })).toEqual([ids[1]]);
    expect(
      await matching({
        nested: {
          path: "entities",
          query: {
            bool: { filter: [{ term: { "entities.type": "order_number" } }, { term: { "entities.value": "48213" } }] },
          },
        },
      }),
    ).toEqual([ids[0]]);
  });

  it("writes an inquiry's records of one batch as one update, and nothing when they are redelivered", async () => {
    const id = newInquiryId();
    const records = [delivery("inquiries.routed", routed(id, 0)), delivery("inquiries.cleaned", cleaned(id, 0))];
    await deliver(records);
    const before = await es.get({ index, id });
    expect(before._version).toBe(1);
    await deliver(records);
    const after = await es.get({ index, id });
    expect(after._version).toBe(before._version);
    expect(after._source).toEqual(before._source);
  });

  it("keeps personal data out of the index, even when a record still carries it", async () => {
    const id = newInquiryId();
    const personal = ["dana.whitfield@example.com", "Dana Whitfield", "+44 20 7946 0958", "4111 1111 1111 1111"];
    await deliver([
      delivery(
        "inquiries.cleaned",
        cleaned(id, 1, {
          subject: "Refund to dana.whitfield@example.com",
          text: "Please refund card 4111 1111 1111 1111 and call me on +44 20 7946 0958.",
          entities: [{ type: "contact", value: "dana.whitfield@example.com" }],
        }),
      ),
      delivery("inquiries.routed", routed(id, 1)),
    ]);
    const [doc] = await docsOf([id]);
    const stored = JSON.stringify(doc!._source);
    for (const value of personal) expect(stored).not.toContain(value);
    expect(stored).toContain(`cust-1`);
    expect(
      (await es.search({ index, query: { match: { text: "dana.whitfield@example.com" } } })).hits.hits.map(
        (h) => h._id,
      ),
    ).not.toContain(id);
  });

  describe("at Elasticsearch's limits", () => {
    const withSourceId = (id: string, sourceId: string) => {
      const base = cleaned(id, 0);
      return delivery("inquiries.cleaned", { ...base, envelope: { ...base.envelope, source_id: sourceId } });
    };
    const withReceivedAt = (id: string, receivedAt: number) => {
      const base = cleaned(id, 0);
      return delivery("inquiries.cleaned", { ...base, envelope: { ...base.envelope, received_at: receivedAt } });
    };
    const entities = (count: number) =>
      Array.from({ length: count }, (_, i) => ({ type: "order_number", value: `${i}` }));
    const withEntities = (id: string, count: number) =>
      delivery("inquiries.cleaned", cleaned(id, 0, { entities: entities(count) }));
    const withPriority = (id: string, priority: number) =>
      delivery("inquiries.routed", { ...routed(id, 0), priority_score: priority });
    const LATEST = Date.parse("9999-12-31T23:59:59.999Z");
    const EARLIEST = Date.parse("0001-01-01T00:00:00.000Z");

    // "é" is two bytes in UTF-8: the limits count bytes, not characters.
    it.each<[string, (id: string) => Delivery, (id: string) => Delivery]>([
      [
        "a keyword of 32,766 bytes",
        (id) => withSourceId(id, "é".repeat(16_383)),
        (id) => withSourceId(id, `${"é".repeat(16_383)}x`),
      ],
      [
        "a document id of 512 bytes",
        (id) => withSourceId(id.padEnd(512, "x"), "s"),
        (id) => withSourceId(id.padEnd(513, "x"), "s"),
      ],
      ["10,000 nested entities", (id) => withEntities(id, 10_000), (id) => withEntities(id, 10_001)],
      ["the largest float", (id) => withPriority(id, 3.4028234663852886e38), (id) => withPriority(id, 3.5e38)],
      ["a time in the year 9999", (id) => withReceivedAt(id, LATEST), (id) => withReceivedAt(id, LATEST + 1)],
      ["a time in the year 1", (id) => withReceivedAt(id, EARLIEST), (id) => withReceivedAt(id, EARLIEST - 1)],
    ])(
      "indexes %s; process() refuses one past it, for the DLQ, with the inquiry in the reason",
      async (_, fits, tooBig) => {
        const accepted = fits(newInquiryId());
        const refused = tooBig(newInquiryId());
        const refusal = expect(async () => sink.process(refused, { log })).rejects;
        await refusal.toBeInstanceOf(InvalidInputError);
        await refusal.toThrow(
          `indexing ${refused.topic} record of inquiry ${refused.value.inquiry_id} into ${index}: `,
        );
        // The refused record was processed in this batch too: the runtime DLQs it and flushes the rest.
        await deliver([accepted]);
        const ids = [accepted.value.inquiry_id, refused.value.inquiry_id];
        expect((await docsOf(ids)).map((d) => d._id)).toEqual([accepted.value.inquiry_id]);
      },
    );

    it("are Elasticsearch's own: one past each, it refuses the document (or the whole bulk request)", async () => {
      const documents = [
        { source_id: `${"é".repeat(16_383)}x` },
        { entities: entities(10_001) },
        { priority_score: 3.5e38 },
        { received_at: new Date(LATEST + 1).toISOString() },
      ].map((fields) => ({ inquiry_id: newInquiryId(), ...fields }));
      const { items } = await es.bulk({
        operations: documents.flatMap((doc) => [
          { update: { _index: index, _id: doc.inquiry_id } },
          { doc, doc_as_upsert: true },
        ]),
      });
      expect(items.map((item) => item.update?.status)).toEqual(documents.map(() => 400));
      await expect(
        es.bulk({
          operations: [
            { update: { _index: index, _id: newInquiryId().padEnd(513, "x") } },
            { doc: {}, doc_as_upsert: true },
          ],
        }),
      ).rejects.toThrow(/action_request_validation_exception/);
      expect(await docsOf(documents.map((d) => d.inquiry_id))).toEqual([]);
    });
  });

  it("fails the whole flush while the index is closed, logging each inquiry without its values; the redelivered batch then indexes each once", async () => {
    const ids = INQUIRIES.map(() => newInquiryId());
    const records = ids.flatMap((id, n) => [
      delivery("inquiries.cleaned", cleaned(id, n)),
      delivery("inquiries.routed", routed(id, n)),
    ]);
    logLines.length = 0;
    await es.indices.close({ index });
    try {
      for (const record of records) await sink.process(record, { log });
      const flushing = sink.flush!();
      await expect(flushing).rejects.toBeInstanceOf(TransientError);
      await expect(flushing).rejects.toThrow(
        `indexing a batch of ${ids.length} inquiries into ${index}: ${ids.length} failed: ${ids.length} × index_closed_exception (400)`,
      );
    } finally {
      await es.indices.open({ index, wait_for_active_shards: "all" });
    }
    const logged = logLines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 50);
    expect(logged.map((entry) => entry.inquiryId).sort()).toEqual([...ids].sort());
    expect(logged[0]).toMatchObject({ index, status: 400, errorType: "index_closed_exception" });
    for (const inquiry of INQUIRIES) expect(logLines.join("")).not.toContain(inquiry.text.slice(0, 20));

    await deliver(records);
    const { docs } = await es.mget<{ text: string; department: string }>({ index, ids });
    expect(
      docs.map((doc) => ("found" in doc ? [doc._version, doc._source?.text, doc._source?.department] : doc)),
    ).toEqual(INQUIRIES.map((inquiry) => [1, inquiry.text, inquiry.department]));
  });
});
