import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import type pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { archive } from "../../sinks/archive.js";
import { countArchived } from "../../sinks/archive-store.js";
import { loadConfig } from "../../config/settings.js";
import { seededRandom, shuffled } from "../../drift/seeded.js";
import type {
  InquiryCleaned,
  InquiryResponse,
  InquiryRouted,
  PredictionFeedback,
  TopicValues,
} from "../../schemas/types.generated.js";
import { APP_SCHEMA, createPool } from "../../storage/postgres.js";
import { InvalidInputError, TransientError } from "../../streams/errors.js";
import type { InputRecord, ProcessorImplementation } from "../../streams/processor.js";
import { TRIAGE, findProcessor } from "../../streams/topology.js";
import { createResources } from "../../streams/resources.js";

type Topic = keyof TopicValues;
type Delivery = InputRecord<TopicValues[Topic]>;

const run = randomUUID().slice(0, 8);
const T0 = Date.UTC(2025, 4, 12, 9, 30);

/** Everything the sink logs, so tests can check what reached the logs. */
const logLines: string[] = [];
const log = pino(
  { level: "debug" },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

function delivery<T extends Topic>(topic: T, value: TopicValues[T], offset = 0): Delivery {
  return {
    topic,
    partition: 0,
    offset: String(offset),
    key: (value as { inquiry_id: string }).inquiry_id,
    value,
    headers: {},
    timestamp: Date.now(),
  };
}

function cleaned(inquiryId: string, overrides: Partial<InquiryCleaned> = {}): InquiryCleaned {
  return {
    inquiry_id: inquiryId,
    envelope: {
      channel: "email",
      source_id: `<${inquiryId}@mail.example.com>`,
      thread_id: `thread-${inquiryId}`,
      customer: {
        id: `cust-${inquiryId}`,
        email: "dana.whitfield@example.com",
        name: "Dana Whitfield",
        tier: "premium",
      },
      received_at: T0,
      reply_to: "dana.whitfield@example.com",
      metadata: { mailbox: "support" },
    },
    subject: "Order 48213 never arrived",
    text: "Hi, I ordered a kettle two weeks ago (order 48213) and it still has not arrived. Where is it?",
    language: "en",
    language_confidence: 0.97,
    redaction_count: 1,
    entities: [{ type: "order_number", value: "48213" }],
    cleaned_at: T0 + 40,
    ...overrides,
  };
}

function routed(inquiryId: string, overrides: Partial<InquiryRouted> = {}): InquiryRouted {
  const { envelope, text, language, entities } = cleaned(inquiryId);
  return {
    inquiry_id: inquiryId,
    envelope,
    text,
    language,
    entities,
    department: "shipping",
    queue: "shipping-en",
    priority_score: 72.5,
    escalated: true,
    escalation_reason: "high urgency with negative sentiment",
    human_review: true,
    review_reasons: ["low_confidence:intent"],
    missing_parts: [],
    intent: "track_order",
    category: "ORDER",
    sentiment: "negative",
    urgency: "high",
    urgency_drivers: [],
    routed_at: T0 + 90,
    ...overrides,
  };
}

function response(inquiryId: string, overrides: Partial<InquiryResponse> = {}): InquiryResponse {
  return {
    inquiry_id: inquiryId,
    envelope: cleaned(inquiryId).envelope,
    strategy: "template",
    text: "Thanks for reaching out about order 48213. It left our warehouse and should arrive within two days.",
    sources: ["kb-track_order"],
    department: "shipping",
    model: null,
    responded_at: T0 + 120,
    ...overrides,
  };
}

const TASKS = ["intent", "sentiment", "urgency"] as const;

function prediction(inquiryId: string, task: string, overrides: Partial<PredictionFeedback> = {}): PredictionFeedback {
  return {
    prediction_id: `${inquiryId}:${task}`,
    inquiry_id: inquiryId,
    task,
    model: `${task}-baseline@3`,
    input_digest: "9f2c1b7a4e6d0c3b8a5f9e2d1c4b7a6f0e3d2c5b8a1f4e7d0c9b6a3f2e5d8c1b",
    features: { length: 92, language: "en", values: { exclamations: 0, question_marks: 1 } },
    predicted_label: task === "intent" ? "track_order" : task === "sentiment" ? "negative" : "high",
    confidence: 0.81,
    label: null,
    label_source: "model",
    occurred_at: T0 + 60,
    stage: "production",
    ...overrides,
  };
}

const label = (
  inquiryId: string,
  task: string,
  source: "agent" | "customer" | "outcome",
  value: string,
  at: number,
): PredictionFeedback => prediction(inquiryId, task, { label: value, label_source: source, occurred_at: at });


describe("archive sink (PostgreSQL)", () => {
  let db: pg.Pool;
  let sink: ProcessorImplementation;
  const { processor: declaration } = findProcessor("archive");
  const newInquiryId = () => `archive-test-${run}-${randomUUID().slice(0, 8)}`;
  /** As the runtime does: each record of a fetch through process(), then one flush() per `batchSize` records. */
  const deliver = async (records: readonly Delivery[], batchSize = records.length) => {
    for (let start = 0; start < records.length; start += batchSize) {
      for (const record of records.slice(start, start + batchSize)) {
        expect(await sink.process(record, { log })).toEqual([]);
      }
      await sink.flush!();
    }
  };
  // Without archived_at (009_agent_replies.sql): when the archive wrote a row, not what its records say.
  const row = async (table: string, where: string, id: string) =>
    (await db.query(`SELECT * FROM ${APP_SCHEMA}.${table} WHERE ${where} = $1`, [id])).rows.map(({ archived_at: _written, ...stored }) => stored);

  beforeAll(async () => {
    const endpoints = inject("endpoints");
    db = createPool(endpoints, "archive-test");
    sink = await archive(declaration, { topology: TRIAGE, config: loadConfig(), endpoints, log, resources: createResources(loadConfig(), endpoints, log, "test") });
  });

  afterAll(async () => {
    await sink?.close?.();
    if (!db) return;
    for (const table of ["inquiries", "predictions", "routing_decisions", "responses"]) {
      await db.query(`DELETE FROM ${APP_SCHEMA}.${table} WHERE inquiry_id LIKE $1`, [`archive-test-${run}-%`]);
    }
    await db.end();
  });

  it.each([
    [1, 48],
    [2, 5],
    [3, 1],
  ])(
    "archives every record exactly once, each delivered twice in a shuffled order (seed %i, %i records per flush)",
    async (seed, batchSize) => {
      const ids = [newInquiryId(), newInquiryId(), newInquiryId()];
      const records = ids.flatMap((id) => [
        delivery("inquiries.cleaned", cleaned(id)),
        delivery("inquiries.routed", routed(id)),
        delivery("inquiries.responses", response(id)),
        ...TASKS.map((task) => delivery("predictions.feedback", prediction(id, task))),
        delivery("predictions.feedback", label(id, "intent", "agent", "cancel_order", T0 + 5_000)),
      ]);
      await deliver(shuffled([...records, ...records], seededRandom(seed)), batchSize);

      expect(await countArchived(db, ids)).toEqual({ inquiries: 3, predictions: 9, routingDecisions: 3, responses: 3 });
      const id = ids[0]!;
      expect(await row("inquiries", "inquiry_id", id)).toEqual([
        {
          inquiry_id: id,
          channel: "email",
          source_id: `<${id}@mail.example.com>`,
          thread_id: `thread-${id}`,
          customer_id: `cust-${id}`,
          customer_tier: "premium",
          subject: "Order 48213 never arrived",
          text: cleaned(id).text,
          language: "en",
          language_confidence: 0.97,
          redaction_count: 1,
          entities: [{ type: "order_number", value: "48213" }],
          received_at: new Date(T0),
          cleaned_at: new Date(T0 + 40),
        },
      ]);
      expect(await row("routing_decisions", "inquiry_id", id)).toEqual([
        {
          inquiry_id: id,
          department: "shipping",
          queue: "shipping-en",
          priority_score: 72.5,
          escalated: true,
          escalation_reason: "high urgency with negative sentiment",
          human_review: true,
          review_reasons: ["low_confidence:intent"],
          missing_parts: [],
          intent: "track_order",
          category: "ORDER",
          sentiment: "negative",
          urgency: "high",
          urgency_drivers: [],
          routed_at: new Date(T0 + 90),
        },
      ]);
      expect(await row("responses", "inquiry_id", id)).toEqual([
        {
          inquiry_id: id,
          strategy: "template",
          text: response(id).text,
          sources: ["kb-track_order"],
          department: "shipping",
          model: null,
          responded_at: new Date(T0 + 120),
        },
      ]);
      const predictions = (await row("predictions", "inquiry_id", id)).sort((a, b) => a.task.localeCompare(b.task));
      expect(predictions.map((p) => [p.task, p.predicted_label, p.label, p.label_source])).toEqual([
        ["intent", "track_order", "cancel_order", "agent"],
        ["sentiment", "negative", null, "model"],
        ["urgency", "high", null, "model"],
      ]);
      expect(predictions[0]).toMatchObject({
        prediction_id: `${id}:intent`,
        model: "intent-baseline@3",
        confidence: 0.81,
        features: { length: 92, language: "en", values: { exclamations: 0, question_marks: 1 } },
        predicted_at: new Date(T0 + 60),
        labeled_at: new Date(T0 + 5_000),
      });
    },
  );

  it("writes nothing when a record is redelivered", async () => {
    const id = newInquiryId();
    const records = [
      delivery("inquiries.cleaned", cleaned(id)),
      delivery("inquiries.routed", routed(id)),
      delivery("inquiries.responses", response(id)),
      delivery("predictions.feedback", prediction(id, "intent")),
      delivery("predictions.feedback", label(id, "intent", "customer", "track_order", T0 + 5_000)),
    ];
    // xmin is the transaction that wrote a row's current version: unchanged means not rewritten.
    const versions = async () =>
      (
        await db.query(
          `SELECT xmin::text FROM ${APP_SCHEMA}.inquiries WHERE inquiry_id = $1
           UNION ALL SELECT xmin::text FROM ${APP_SCHEMA}.routing_decisions WHERE inquiry_id = $1
           UNION ALL SELECT xmin::text FROM ${APP_SCHEMA}.responses WHERE inquiry_id = $1
           UNION ALL SELECT xmin::text FROM ${APP_SCHEMA}.predictions WHERE inquiry_id = $1`,
          [id],
        )
      ).rows.map((r) => r.xmin);
    await deliver(records);
    const before = await versions();
    expect(before).toHaveLength(4);
    await deliver(records);
    expect(await versions()).toEqual(before);
  });

  it("archives production's predictions only: a shadow version's was never routed", async () => {
    const id = newInquiryId();
    const shadow = prediction(id, "intent", { prediction_id: `${id}:intent@shadow`, model: "intent-baseline@4", predicted_label: "cancel_order", stage: "shadow" });
    await deliver([delivery("predictions.feedback", shadow), delivery("predictions.feedback", prediction(id, "intent"))]);
    await deliver([delivery("predictions.feedback", shadow)]);
    expect((await row("predictions", "inquiry_id", id)).map((r) => [r.prediction_id, r.model])).toEqual([[`${id}:intent`, "intent-baseline@3"]]);
  });

  it("keeps the newest state when an older record is replayed after a newer one, in one batch or across two", async () => {
    const versions = (id: string) => ({
      older: [
        delivery("inquiries.cleaned", cleaned(id)),
        delivery("inquiries.routed", routed(id)),
        delivery("inquiries.responses", response(id)),
      ],
      newer: [
        delivery(
          "inquiries.cleaned",
          cleaned(id, { text: "Where is my kettle? Order 48213.", cleaned_at: T0 + 60_000 }),
        ),
        delivery("inquiries.routed", routed(id, { department: "billing", routed_at: T0 + 60_100 })),
        delivery("inquiries.responses", response(id, { strategy: "human", responded_at: T0 + 60_200 })),
      ],
    });
    const ids = [newInquiryId(), newInquiryId(), newInquiryId(), newInquiryId()];
    const [newerFirst, olderFirst, newerFlushedFirst, olderFlushedFirst] = ids as [string, string, string, string];
    await deliver([...versions(newerFirst).newer, ...versions(newerFirst).older]);
    await deliver([...versions(olderFirst).older, ...versions(olderFirst).newer]);
    await deliver([...versions(newerFlushedFirst).newer, ...versions(newerFlushedFirst).older], 3);
    await deliver([...versions(olderFlushedFirst).older, ...versions(olderFlushedFirst).newer], 3);

    for (const id of ids) {
      expect((await row("inquiries", "inquiry_id", id)).map((r) => r.text)).toEqual([
        "Where is my kettle? Order 48213.",
      ]);
      expect((await row("routing_decisions", "inquiry_id", id)).map((r) => r.department)).toEqual(["billing"]);
      expect((await row("responses", "inquiry_id", id)).map((r) => r.strategy)).toEqual(["human"]);
    }
  });

  it("joins labels to their prediction: a label may come first, the newest label and the newest prediction win", async () => {
    const id = newInquiryId();
    const predictionId = `${id}:intent`;
    await deliver([delivery("predictions.feedback", label(id, "intent", "agent", "cancel_order", T0 + 10_000))]);
    expect(await row("predictions", "prediction_id", predictionId)).toMatchObject([
      { predicted_label: "track_order", predicted_at: null, label: "cancel_order", label_source: "agent" },
    ]);

    await deliver([delivery("predictions.feedback", prediction(id, "intent"))]);
    await deliver([delivery("predictions.feedback", label(id, "intent", "outcome", "track_order", T0 + 20_000))]);
    await deliver([delivery("predictions.feedback", label(id, "intent", "agent", "cancel_order", T0 + 10_000))]);
    await deliver([
      delivery(
        "predictions.feedback",
        prediction(id, "intent", { predicted_label: "cancel_order", occurred_at: T0 + 30 }),
      ),
    ]);
    expect(await row("predictions", "prediction_id", predictionId)).toMatchObject([
      {
        model: "intent-baseline@3",
        predicted_label: "track_order",
        predicted_at: new Date(T0 + 60),
        label: "track_order",
        label_source: "outcome",
        labeled_at: new Date(T0 + 20_000),
      },
    ]);

    // The inquiry reprocessed by a newer model: its prediction replaces the old one, the label stays.
    await deliver([
      delivery(
        "predictions.feedback",
        prediction(id, "intent", { model: "intent-baseline@4", confidence: 0.93, occurred_at: T0 + 99_000 }),
      ),
    ]);
    expect(await row("predictions", "prediction_id", predictionId)).toMatchObject([
      {
        model: "intent-baseline@4",
        confidence: 0.93,
        predicted_at: new Date(T0 + 99_000),
        label: "track_order",
        label_source: "outcome",
      },
    ]);
  });

  it("keeps personal data out of the rows and the logs, even when a record still carries it", async () => {
    const id = newInquiryId();
    const personal = [
      "dana.whitfield@example.com",
      "Dana Whitfield",
      "+44 20 7946 0958",
      "4111 1111 1111 1111",
      "DE89 3704 0044 0532 0130 00",
    ];
    logLines.length = 0;
    await deliver([
      delivery(
        "inquiries.cleaned",
        cleaned(id, {
          subject: "Refund to dana.whitfield@example.com",
          text: "Please refund card 4111 1111 1111 1111 or wire it to DE89 3704 0044 0532 0130 00; call me on +44 20 7946 0958.",
          entities: [{ type: "contact", value: "dana.whitfield@example.com" }],
        }),
      ),
      delivery("inquiries.routed", routed(id)),
      delivery(
        "inquiries.responses",
        response(id, { strategy: "llm", text: "We will call you on +44 20 7946 0958 about the refund." }),
      ),
      delivery("predictions.feedback", prediction(id, "intent")),
    ]);

    const stored = JSON.stringify(
      await Promise.all(
        ["inquiries", "routing_decisions", "responses", "predictions"].map((table) => row(table, "inquiry_id", id)),
      ),
    );
    for (const value of personal) expect(stored).not.toContain(value);
    const [inquiry] = await row("inquiries", "inquiry_id", id);
    expect(inquiry.text).toMatch(/^Please refund card .+ or wire it to .+; call me on .+\.$/);
    expect(inquiry.customer_id).toBe(`cust-${id}`);

    const logs = logLines.join("");
    for (const value of personal) expect(logs).not.toContain(value);
    const warnings = logLines
      .map((line) => JSON.parse(line))
      .filter((entry) => entry.inquiryId === id && entry.level === 40);
    expect(warnings.map((w) => w.field).sort()).toEqual(["entities.contact", "response", "subject", "text"]);
  });

  it.each([1, 2, 3, 4])(
    "merges the labels and predictions of one batch as writing them one by one would, whatever their order (seed %i)",
    async (seed) => {
      const id = newInquiryId();
      const records = shuffled(
        [
          label(id, "intent", "agent", "cancel_order", T0 + 10_000),
          prediction(id, "intent"),
          label(id, "intent", "outcome", "track_order", T0 + 20_000),
          label(id, "intent", "customer", "cancel_order", T0 + 20_000),
          prediction(id, "intent", { predicted_label: "cancel_order", occurred_at: T0 + 30 }),
          prediction(id, "intent", { model: "intent-baseline@4", occurred_at: T0 + 99_000 }),
          prediction(id, "intent", { model: "intent-baseline@5", occurred_at: T0 + 99_000 }),
        ],
        seededRandom(seed),
      );
      await deliver(records.map((record) => delivery("predictions.feedback", record)));

      // Of two records with the same time, the first one seen stays: the table's "strictly newer" rule.
      const newestPrediction = records.find((r) => r.label_source === "model" && r.occurred_at === T0 + 99_000)!;
      const newestLabel = records.find((r) => r.label_source !== "model" && r.occurred_at === T0 + 20_000)!;
      expect(await row("predictions", "prediction_id", `${id}:intent`)).toMatchObject([
        {
          model: newestPrediction.model,
          predicted_label: "track_order",
          predicted_at: new Date(T0 + 99_000),
          label: newestLabel.label,
          label_source: newestLabel.label_source,
          labeled_at: new Date(T0 + 20_000),
        },
      ]);
    },
  );

  it("sends a record the archive cannot hold to the DLQ, with the inquiry in the reason, and archives the rest of its batch", async () => {
    const id = newInquiryId();
    const refused: Array<[string, Delivery]> = [
      [
        "a label without a label",
        delivery("predictions.feedback", prediction(id, "intent", { label_source: "agent" })),
      ],
      ["a NUL character", delivery("inquiries.cleaned", cleaned(id, { text: "order 48213\u0000 missing" }))],
      [
        "a NUL character in a jsonb key",
        delivery(
          "predictions.feedback",
          prediction(id, "sentiment", {
            features: { length: 3, language: "en", values: { "ratio\u0000": 1 } },
          }),
        ),
      ],
      ["half a surrogate pair", delivery("inquiries.responses", response(id, { text: "Thanks \ud83d for waiting" }))],
      [
        "a confidence that is not a number",
        delivery("predictions.feedback", prediction(id, "urgency", { confidence: NaN })),
      ],
      ["an infinite priority", delivery("inquiries.routed", routed(id, { priority_score: Infinity }))],
      [
        "a time after the year 9999",
        delivery("inquiries.routed", routed(id, { routed_at: Date.parse("9999-12-31T23:59:59.999Z") + 1 })),
      ],
      [
        "a time before the year 1",
        delivery("inquiries.responses", response(id, { responded_at: Date.parse("0001-01-01T00:00:00Z") - 1 })),
      ],
      [
        "a customer id too long for its index",
        delivery(
          "inquiries.cleaned",
          cleaned(id, {
            envelope: {
              ...cleaned(id).envelope,
              customer: { ...cleaned(id).envelope.customer, id: "é".repeat(1_000) + "x" },
            },
          }),
        ),
      ],
    ];
    for (const [why, record] of refused) {
      const refusal = expect(async () => sink.process(record, { log }), why).rejects;
      await refusal.toBeInstanceOf(InvalidInputError);
      await refusal.toThrow(`archiving ${record.topic} record of inquiry ${id}: `);
    }
    // At each limit, and next to the refused records: stored.
    const atTheLimits = [
      delivery(
        "inquiries.cleaned",
        cleaned(id, {
          text: "Thanks 👋 for the quick reply",
          envelope: { ...cleaned(id).envelope, customer: { ...cleaned(id).envelope.customer, id: "é".repeat(1_000) } },
        }),
      ),
      delivery("inquiries.routed", routed(id, { routed_at: Date.parse("9999-12-31T23:59:59.999Z") })),
      delivery("inquiries.responses", response(id, { responded_at: Date.parse("0001-01-01T00:00:00Z") })),
      delivery("predictions.feedback", prediction(id, "intent", { confidence: Number.MAX_VALUE })),
    ];
    // The refused records were processed in this batch too: the runtime DLQs them and flushes the rest.
    await deliver(atTheLimits);
    expect(await countArchived(db, [id])).toEqual({ inquiries: 1, predictions: 1, routingDecisions: 1, responses: 1 });
    expect((await row("inquiries", "inquiry_id", id))[0]).toMatchObject({
      customer_id: "é".repeat(1_000),
      text: "Thanks 👋 for the quick reply",
    });
    expect((await row("routing_decisions", "inquiry_id", id))[0].routed_at).toEqual(
      new Date("9999-12-31T23:59:59.999Z"),
    );
  });

  it("fails the whole flush when PostgreSQL goes away mid-write; the redelivered batch then archives each record once", async () => {
    const id = newInquiryId();
    const records = [
      delivery("inquiries.cleaned", cleaned(id)),
      ...TASKS.map((task) => delivery("predictions.feedback", prediction(id, task))),
      delivery("inquiries.routed", routed(id)),
      delivery("inquiries.responses", response(id)),
    ];
    // An uncommitted row holds the key of the last table the flush writes: the flush waits on it
    // with its other tables written, and its connection is killed there.
    const blocker = await db.connect();
    try {
      await blocker.query("BEGIN");
      await blocker.query(
        `INSERT INTO ${APP_SCHEMA}.responses (inquiry_id, strategy, text, department, responded_at) VALUES ($1, 'human', 'held', 'shipping', now())`,
        [id],
      );
      const {
        rows: [{ pid: blockerPid }],
      } = await blocker.query("SELECT pg_backend_pid() AS pid");
      for (const record of records) await sink.process(record, { log });
      const flushing = sink.flush!();
      flushing.catch(() => undefined);
      await expect
        .poll(
          async () =>
            (
              await db.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                [blockerPid],
              )
            ).rowCount,
          { timeout: 10_000 },
        )
        .toBe(1);
      await expect(flushing).rejects.toBeInstanceOf(TransientError);
      await expect(flushing).rejects.toThrow(`archiving a batch of ${records.length} records: `);
    } finally {
      await blocker.query("ROLLBACK");
      blocker.release();
    }
    expect(await countArchived(db, [id])).toEqual({ inquiries: 0, predictions: 0, routingDecisions: 0, responses: 0 });

    await deliver(records);
    expect(await countArchived(db, [id])).toEqual({ inquiries: 1, predictions: 3, routingDecisions: 1, responses: 1 });
  });

  it("refuses a declaration with an input topic it has no table for", async () => {
    const endpoints = inject("endpoints");
    await expect(
      archive(
        { ...declaration, inputs: [...declaration.inputs, "inquiries.urgency"] },
        { topology: TRIAGE, config: loadConfig(), endpoints, log, resources: createResources(loadConfig(), endpoints, log, "test") },
      ),
    ).rejects.toThrow(/no archive table for input topic\(s\) inquiries.urgency/);
  });
});
