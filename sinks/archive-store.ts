import type pg from "pg";
import type {
  Channel,
  Entity,
  FeatureSummary,
  LabelSource,
  PredictionFeedback,
  ResponseStrategy,
  UrgencyDriver,
} from "../schemas/types.generated.js";
import { APP_SCHEMA } from "../storage/postgres.js";
import { InvalidInputError } from "../streams/errors.js";
import { utf8Bytes } from "./storable.js";

/**
 * The archive tables (storage/migrations/001_archive.sql) and the one multi-row upsert per table
 * that writes a batch of their rows in one transaction.
 *
 * Each row holds the state of the newest record about it: an incoming row only overwrites a stored
 * one when it is strictly newer (by the time the record states, not by arrival), so a redelivered
 * batch writes nothing and a replayed older record cannot regress what is stored. A batch holds
 * at most one row per key (ON CONFLICT cannot touch a row twice in one statement): see
 * archive-batch.ts for how records about the same row collapse.
 */

export interface InquiryRow {
  readonly inquiry_id: string;
  readonly channel: Channel;
  readonly source_id: string;
  readonly thread_id: string | null;
  readonly customer_id: string | null;
  readonly customer_tier: string | null;
  readonly subject: string | null;
  readonly text: string;
  readonly language: string;
  readonly language_confidence: number;
  readonly redaction_count: number;
  readonly entities: readonly Entity[];
  readonly received_at: string;
  readonly cleaned_at: string;
}

/** What a `predictions.feedback` record says about the prediction it is or judges (archive and feedback sinks alike). */
export interface PredictionFields {
  readonly prediction_id: string;
  readonly inquiry_id: string;
  readonly task: string;
  readonly model: string;
  readonly predicted_label: string;
  readonly confidence: number;
  readonly input_digest: string;
  readonly features: FeatureSummary;
  /** Null while the row holds only a label's copy of the prediction. */
  readonly predicted_at: string | null;
}

export function predictionFields(record: PredictionFeedback, predictedAt: string | null): PredictionFields {
  return {
    prediction_id: record.prediction_id,
    inquiry_id: record.inquiry_id,
    task: record.task,
    model: record.model,
    predicted_label: record.predicted_label,
    confidence: record.confidence,
    input_digest: record.input_digest,
    features: record.features,
    predicted_at: predictedAt,
  };
}

/** The columns of PredictionFields, as both sinks' prediction tables declare them. */
export const PREDICTION_COLUMNS = {
  prediction_id: "text",
  inquiry_id: "text",
  task: "text",
  model: "text",
  predicted_label: "text",
  confidence: "double precision",
  input_digest: "text",
  features: "jsonb",
  predicted_at: "timestamptz",
} as const;

export interface PredictionRow extends PredictionFields {
  readonly label: string | null;
  readonly label_source: LabelSource;
  readonly labeled_at: string | null;
}

export interface RoutingDecisionRow {
  readonly inquiry_id: string;
  readonly department: string;
  readonly queue: string;
  readonly priority_score: number;
  readonly escalated: boolean;
  readonly escalation_reason: string | null;
  readonly human_review: boolean;
  readonly review_reasons: readonly string[];
  readonly missing_parts: readonly string[];
  readonly intent: string | null;
  readonly category: string | null;
  readonly sentiment: string | null;
  readonly urgency: string | null;
  readonly urgency_drivers: readonly UrgencyDriver[];
  readonly routed_at: string;
}

export interface ResponseRow {
  readonly inquiry_id: string;
  readonly strategy: ResponseStrategy;
  readonly text: string;
  readonly sources: readonly string[];
  readonly department: string;
  readonly model: string | null;
  readonly responded_at: string;
}

/** An agent's reply (inquiries.replies): the reply's own fields; the inquiry's envelope is its `inquiries` row. */
export interface AgentReplyRow {
  readonly reply_id: string;
  readonly inquiry_id: string;
  readonly channel: Channel;
  readonly text: string;
  readonly agent: string;
  readonly edited: boolean;
  readonly sent_at: string;
}

type Column<Row> = keyof Row & string;

export interface ArchiveTable<Row> {
  readonly name: string;
  readonly key: Column<Row>;
  /** Every column with its SQL type: the shape a batch is read with (jsonb_to_recordset). */
  readonly columns: { readonly [C in Column<Row>]: string };
  /** Text columns a B-tree index holds (001_archive.sql). */
  readonly indexed: ReadonlyArray<Column<Row>>;
  /** The ON CONFLICT action: which stored rows an incoming row replaces, and which columns it sets. */
  readonly onConflict: string;
  /** The statement writing a batch of rows, given as one JSON array. */
  readonly upsert: string;
}

export function archiveTable<Row>(table: Omit<ArchiveTable<Row>, "upsert">): ArchiveTable<Row> {
  const columns = Object.keys(table.columns);
  const shape = Object.entries<string>(table.columns).map(([column, type]) => `${column} ${type}`);
  const upsert = `INSERT INTO ${APP_SCHEMA}.${table.name} AS stored (${columns.join(", ")})
    SELECT ${columns.join(", ")} FROM jsonb_to_recordset($1::jsonb) AS incoming(${shape.join(", ")})
    ON CONFLICT (${table.key}) ${table.onConflict}`;
  return { ...table, upsert };
}

/** The stored row takes every column of an incoming row whose `time` is strictly later. */
function replacedWhenNewer<Row>(columns: ArchiveTable<Row>["columns"], key: Column<Row>, time: Column<Row>): string {
  const set = Object.keys(columns)
    .filter((column) => column !== key)
    .map((column) => `${column} = excluded.${column}`);
  return `DO UPDATE SET ${set.join(", ")} WHERE excluded.${time} > stored.${time}`;
}

const INQUIRY_COLUMNS = {
  inquiry_id: "text",
  channel: "text",
  source_id: "text",
  thread_id: "text",
  customer_id: "text",
  customer_tier: "text",
  subject: "text",
  text: "text",
  language: "text",
  language_confidence: "double precision",
  redaction_count: "integer",
  entities: "jsonb",
  received_at: "timestamptz",
  cleaned_at: "timestamptz",
} as const satisfies ArchiveTable<InquiryRow>["columns"];

export const INQUIRIES = archiveTable<InquiryRow>({
  name: "inquiries",
  key: "inquiry_id",
  columns: INQUIRY_COLUMNS,
  indexed: ["inquiry_id", "customer_id"],
  onConflict: replacedWhenNewer<InquiryRow>(INQUIRY_COLUMNS, "inquiry_id", "cleaned_at"),
});

// A row holds a prediction and the label that joins it later; each part is replaced only by a
// strictly newer one of its kind. The newest prediction wins (a reprocessed inquiry's newer
// prediction replaces an older one), and so does the newest label. A row that starts from a label
// (it may arrive first) has the prediction's fields, which every label record repeats, but no
// predicted_at until its prediction dates it.
const PREDICTION_PART = ["model", "predicted_label", "confidence", "input_digest", "features", "predicted_at"];
const LABEL_PART = ["label", "label_source", "labeled_at"];
const newer = (time: string) =>
  `(excluded.${time} IS NOT NULL AND (stored.${time} IS NULL OR excluded.${time} > stored.${time}))`;
const takenWhen = (condition: string, columns: readonly string[]) =>
  columns.map((column) => `${column} = CASE WHEN ${condition} THEN excluded.${column} ELSE stored.${column} END`);

export const PREDICTIONS = archiveTable<PredictionRow>({
  name: "predictions",
  key: "prediction_id",
  columns: {
    ...PREDICTION_COLUMNS,
    label: "text",
    label_source: "text",
    labeled_at: "timestamptz",
  },
  indexed: ["prediction_id", "inquiry_id", "task"],
  onConflict: `DO UPDATE SET ${[
    ...takenWhen(newer("predicted_at"), PREDICTION_PART),
    ...takenWhen(newer("labeled_at"), LABEL_PART),
  ].join(", ")} WHERE ${newer("predicted_at")} OR ${newer("labeled_at")}`,
});

const ROUTING_DECISION_COLUMNS = {
  inquiry_id: "text",
  department: "text",
  queue: "text",
  priority_score: "double precision",
  escalated: "boolean",
  escalation_reason: "text",
  human_review: "boolean",
  review_reasons: "text[]",
  missing_parts: "text[]",
  intent: "text",
  category: "text",
  sentiment: "text",
  urgency: "text",
  urgency_drivers: "jsonb",
  routed_at: "timestamptz",
} as const satisfies ArchiveTable<RoutingDecisionRow>["columns"];

export const ROUTING_DECISIONS = archiveTable<RoutingDecisionRow>({
  name: "routing_decisions",
  key: "inquiry_id",
  columns: ROUTING_DECISION_COLUMNS,
  indexed: ["inquiry_id", "department"],
  onConflict: replacedWhenNewer<RoutingDecisionRow>(ROUTING_DECISION_COLUMNS, "inquiry_id", "routed_at"),
});

const RESPONSE_COLUMNS = {
  inquiry_id: "text",
  strategy: "text",
  text: "text",
  sources: "text[]",
  department: "text",
  model: "text",
  responded_at: "timestamptz",
} as const satisfies ArchiveTable<ResponseRow>["columns"];

export const RESPONSES = archiveTable<ResponseRow>({
  name: "responses",
  key: "inquiry_id",
  columns: RESPONSE_COLUMNS,
  indexed: ["inquiry_id", "strategy"],
  onConflict: replacedWhenNewer<ResponseRow>(RESPONSE_COLUMNS, "inquiry_id", "responded_at"),
});

// A reply is sent once and never changes: a redelivered record (same reply_id) writes nothing.
export const AGENT_REPLIES = archiveTable<AgentReplyRow>({
  name: "agent_replies",
  key: "reply_id",
  columns: {
    reply_id: "text",
    inquiry_id: "text",
    channel: "text",
    text: "text",
    agent: "text",
    edited: "boolean",
    sent_at: "timestamptz",
  },
  indexed: ["reply_id", "inquiry_id"],
  onConflict: "DO NOTHING",
});

/** A B-tree entry must fit in a third of an 8 kB page (2704 bytes), beside the index's other columns. */
const MAX_INDEXED_TEXT_BYTES = 2_000;
// Outside a surrogate pair; the `u` flag makes a well-formed pair one code point, not two.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Refuses (InvalidInputError) a row the table cannot hold, so that a batch of checked rows fails
 * to write only for reasons worth retrying: a number that is not finite, an indexed text too long
 * for its index, text PostgreSQL cannot hold (a NUL character, half a surrogate pair).
 */
export function checkRow<Row extends object>(table: ArchiveTable<Row>, row: Row): void {
  for (const [column, type] of Object.entries<string>(table.columns)) {
    const value: unknown = row[column as Column<Row>];
    if (type === "double precision" && !Number.isFinite(value)) {
      throw new InvalidInputError(`${column}: ${String(value)} is not a finite number`);
    }
  }
  for (const column of table.indexed) {
    const value: unknown = row[column];
    if (typeof value === "string" && utf8Bytes(value) > MAX_INDEXED_TEXT_BYTES) {
      throw new InvalidInputError(`${column}: longer than the ${MAX_INDEXED_TEXT_BYTES} bytes its index can hold`);
    }
  }
  checkText(row, "");
}

/** Every string of a row, object keys within jsonb columns included. */
function checkText(value: unknown, path: string): void {
  if (typeof value === "string") {
    if (value.includes("\u0000"))
      throw new InvalidInputError(`${path}: contains a NUL character, which PostgreSQL text cannot hold`);
    if (LONE_SURROGATE.test(value)) throw new InvalidInputError(`${path}: contains half a UTF-16 surrogate pair`);
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => checkText(item, `${path}[${i}]`));
  } else if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const field = path === "" ? key : `${path}.${key}`;
      checkText(key, field);
      checkText(item, field);
    }
  }
}

/** One batch's rows per table, at most one per key, each passed by `checkRow`. */
export interface ArchiveRows {
  readonly inquiries: readonly InquiryRow[];
  readonly predictions: readonly PredictionRow[];
  readonly routingDecisions: readonly RoutingDecisionRow[];
  readonly responses: readonly ResponseRow[];
  /** Optional: most writers (the tests' fixtures among them) have none. */
  readonly agentReplies?: readonly AgentReplyRow[];
}

export interface ArchivedCounts {
  readonly inquiries: number;
  readonly predictions: number;
  readonly routingDecisions: number;
  readonly responses: number;
}

/** Rows in key order, so concurrent batches lock shared rows in the same order and cannot deadlock. */
export async function upsert<Row>(client: pg.PoolClient, table: ArchiveTable<Row>, rows: readonly Row[]): Promise<number> {
  if (rows.length === 0) return 0;
  const keyOf = (row: Row) => String(row[table.key]);
  const ordered = [...rows].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  const result = await client.query({
    // Named: each connection plans the statement once.
    name: `archive-upsert-${table.name}`,
    text: table.upsert,
    values: [JSON.stringify(ordered)],
  });
  return result.rowCount ?? 0;
}

/** Writes a batch in one transaction; returns how many rows of each table it wrote (0 for a row already as new). */
export async function writeArchive(db: pg.Pool, rows: ArchiveRows): Promise<ArchivedCounts & { readonly agentReplies: number }> {
  return inTransaction(db, async (client) => ({
    inquiries: await upsert(client, INQUIRIES, rows.inquiries),
    predictions: await upsert(client, PREDICTIONS, rows.predictions),
    routingDecisions: await upsert(client, ROUTING_DECISIONS, rows.routingDecisions),
    responses: await upsert(client, RESPONSES, rows.responses),
    agentReplies: await upsert(client, AGENT_REPLIES, rows.agentReplies ?? []),
  }));
}

/** Runs `work` in one PostgreSQL transaction on a pooled connection: committed, or rolled back and thrown. */
export async function inTransaction<T>(db: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  let failed = false;
  // A connection lost mid-transaction fails the statement in flight, which is the error reported;
  // the client's own "error" event must not also go unhandled (it would crash the process).
  const lost = () => (failed = true);
  client.on("error", lost);
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    failed = true;
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.off("error", lost);
    // A connection that failed mid-transaction may be gone: the pool replaces it rather than reuse it.
    client.release(failed);
  }
}

/** How many rows of each table belong to these inquiries: what end-to-end checks compare against. */
export async function countArchived(db: pg.Pool, inquiryIds: readonly string[]): Promise<ArchivedCounts> {
  const { rows } = await db.query<{ [K in keyof ArchivedCounts]: number }>(
    `SELECT
       (SELECT count(*) FROM ${APP_SCHEMA}.inquiries WHERE inquiry_id = ANY($1))::int AS "inquiries",
       (SELECT count(*) FROM ${APP_SCHEMA}.predictions WHERE inquiry_id = ANY($1))::int AS "predictions",
       (SELECT count(*) FROM ${APP_SCHEMA}.routing_decisions WHERE inquiry_id = ANY($1))::int AS "routingDecisions",
       (SELECT count(*) FROM ${APP_SCHEMA}.responses WHERE inquiry_id = ANY($1))::int AS "responses"`,
    [inquiryIds],
  );
  return rows[0]!;
}
