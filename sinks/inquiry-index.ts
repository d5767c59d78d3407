import type { Client, estypes } from "@elastic/elasticsearch";
import type { Logger } from "pino";
import type { InquiryCleaned, InquiryRouted } from "../schemas/types.generated.js";
import { InvalidInputError } from "../streams/errors.js";
import type { RedactionGuard } from "./redaction-guard.js";
import { storedTime, utf8Bytes } from "./storable.js";

/**
 * The inquiry search index: one document per inquiry (id = inquiry_id), built from two records.
 * The cleaned inquiry and its routing decision each fill their own fields, by partial update, so
 * the document ends up the same whichever arrives first and however often each is redelivered.
 */

const keyword = { type: "keyword" } as const;
const date = { type: "date" } as const;
// This Elasticsearch has no language analyzers; the standard analyzer suits every language we see.
const fullText = { type: "text", analyzer: "standard" } as const;

const MAPPINGS: estypes.MappingTypeMapping = {
  // A field missing here is a bug to hear about, not a guess for dynamic mapping to make.
  dynamic: "strict",
  properties: {
    inquiry_id: keyword,
    // From inquiries.cleaned:
    channel: keyword,
    source_id: keyword,
    thread_id: keyword,
    customer_id: keyword,
    customer_tier: keyword,
    subject: fullText,
    text: fullText,
    language: keyword,
    redaction_count: { type: "integer" },
    entities: { type: "nested", properties: { type: keyword, value: keyword } },
    received_at: date,
    cleaned_at: date,
    // From inquiries.routed:
    department: keyword,
    queue: keyword,
    priority_score: { type: "float" },
    escalated: { type: "boolean" },
    human_review: { type: "boolean" },
    review_reasons: keyword,
    intent: keyword,
    category: keyword,
    sentiment: keyword,
    urgency: keyword,
    routed_at: date,
  },
};

/**
 * Creates the index with its mapping when missing; otherwise adds any field this version maps
 * that the index lacks (a changed field type fails here, at start-up, naming the index).
 */
export async function ensureInquiryIndex(client: Client, index: string, log: Logger): Promise<void> {
  if (await client.indices.exists({ index })) {
    await client.indices.putMapping({ index, ...MAPPINGS });
    return;
  }
  try {
    // One shard is plenty for inquiry search; no replicas because the local stack is a single node.
    await client.indices.create({
      index,
      mappings: MAPPINGS,
      settings: { number_of_shards: 1, number_of_replicas: 0 },
    });
    log.info({ index }, "inquiry index created");
  } catch (error) {
    // Another instance created it between our check and our create.
    if (errorType(error) !== "resource_already_exists_exception") throw error;
  }
}

export function errorType(error: unknown): string | undefined {
  const body = (error as { meta?: { body?: { error?: { type?: unknown } } } }).meta?.body;
  const type = body?.error?.type;
  return typeof type === "string" ? type : undefined;
}

export interface InquiryDocument {
  readonly inquiry_id: string;
  readonly channel?: string;
  readonly source_id?: string;
  readonly thread_id?: string | null;
  readonly customer_id?: string | null;
  readonly customer_tier?: string | null;
  readonly subject?: string | null;
  readonly text?: string;
  readonly language?: string;
  readonly redaction_count?: number;
  readonly entities?: ReadonlyArray<{ readonly type: string; readonly value: string }>;
  readonly received_at?: string;
  readonly cleaned_at?: string;
  readonly department?: string;
  readonly queue?: string;
  readonly priority_score?: number;
  readonly escalated?: boolean;
  readonly human_review?: boolean;
  readonly review_reasons?: ReadonlyArray<string>;
  readonly intent?: string | null;
  readonly category?: string | null;
  readonly sentiment?: string | null;
  readonly urgency?: string | null;
  readonly routed_at?: string;
}

/** The cleaned inquiry's fields. A customer appears by id and tier only, never by email or name. */
export function cleanedFields(record: InquiryCleaned, guard: RedactionGuard): InquiryDocument {
  const { envelope, inquiry_id: inquiryId } = record;
  return {
    inquiry_id: inquiryId,
    channel: envelope.channel,
    source_id: envelope.source_id,
    thread_id: envelope.thread_id,
    customer_id: envelope.customer.id,
    customer_tier: envelope.customer.tier,
    subject: record.subject === null ? null : guard(inquiryId, "subject", record.subject),
    text: guard(inquiryId, "text", record.text),
    language: record.language,
    redaction_count: record.redaction_count,
    entities: record.entities.map((e) => ({ type: e.type, value: guard(inquiryId, `entities.${e.type}`, e.value) })),
    received_at: storedTime(envelope.received_at, "envelope.received_at"),
    cleaned_at: storedTime(record.cleaned_at, "cleaned_at"),
  };
}

/** The routing decision's fields; the routed record's copy of the text is left to the cleaned one. */
export function routedFields(record: InquiryRouted): InquiryDocument {
  return {
    inquiry_id: record.inquiry_id,
    department: record.department,
    queue: record.queue,
    priority_score: record.priority_score,
    escalated: record.escalated,
    human_review: record.human_review,
    review_reasons: record.review_reasons,
    intent: record.intent,
    category: record.category,
    sentiment: record.sentiment,
    urgency: record.urgency,
    routed_at: storedTime(record.routed_at, "routed_at"),
  };
}

// Elasticsearch's limits (8.x defaults) that a document of this mapping can run into.
const MAX_ID_BYTES = 512;
/** Lucene's longest term: a longer keyword fails the document ("immense term"). */
const MAX_KEYWORD_BYTES = 32_766;
/** index.mapping.nested_objects.limit. */
const MAX_NESTED_OBJECTS = 10_000;
const MAX_FLOAT = 3.4028234663852886e38;
const INTEGER_RANGE = [-(2 ** 31), 2 ** 31 - 1] as const;

/**
 * Refuses (InvalidInputError) fields the index would reject, checked against its mapping, so that a
 * bulk request of checked documents fails only for reasons worth retrying. A document id over the
 * limit would even fail the whole bulk request, not just its own item.
 */
export function checkDocument(document: InquiryDocument): void {
  const id = document.inquiry_id;
  if (id === "" || utf8Bytes(id) > MAX_ID_BYTES) {
    throw new InvalidInputError(`inquiry_id: a document id must be 1 to ${MAX_ID_BYTES} bytes long`);
  }
  const nested = { objects: 0 };
  checkFields(document, MAPPINGS.properties ?? {}, "", nested);
  if (nested.objects > MAX_NESTED_OBJECTS) {
    throw new InvalidInputError(
      `${nested.objects} nested objects (entities), more than the index's limit of ${MAX_NESTED_OBJECTS}`,
    );
  }
}

function checkFields(
  values: object,
  properties: Record<string, estypes.MappingProperty>,
  prefix: string,
  nested: { objects: number },
): void {
  for (const [name, value] of Object.entries(values)) {
    const field = `${prefix}${name}`;
    const mapping = properties[name];
    if (mapping === undefined) throw new InvalidInputError(`${field}: not a field of the index mapping`);
    for (const item of Array.isArray(value) ? (value as unknown[]) : [value]) {
      if (item !== null && item !== undefined) checkValue(field, mapping, item, nested);
    }
  }
}

function checkValue(
  field: string,
  mapping: estypes.MappingProperty,
  value: unknown,
  nested: { objects: number },
): void {
  const refuse = (why: string) => new InvalidInputError(`${field}: ${why}`);
  switch (mapping.type) {
    case "keyword":
      if (typeof value !== "string") throw refuse("not a string");
      if (utf8Bytes(value) > MAX_KEYWORD_BYTES)
        throw refuse(`longer than the ${MAX_KEYWORD_BYTES} bytes a keyword can hold`);
      return;
    case "text":
    case "date":
      if (typeof value !== "string") throw refuse("not a string");
      return;
    case "boolean":
      if (typeof value !== "boolean") throw refuse("not a boolean");
      return;
    case "float":
      if (typeof value !== "number" || !(Math.abs(value) <= MAX_FLOAT))
        throw refuse(`${String(value)} is not a finite float`);
      return;
    case "integer":
      if (!Number.isInteger(value) || (value as number) < INTEGER_RANGE[0] || (value as number) > INTEGER_RANGE[1]) {
        throw refuse(`${String(value)} is not a 32-bit integer`);
      }
      return;
    case "nested":
      if (typeof value !== "object" || value === null) throw refuse("not an object");
      nested.objects++;
      checkFields(value, mapping.properties ?? {}, `${field}.`, nested);
      return;
    default:
      // A type added to MAPPINGS needs its limits here.
      throw new Error(`${field}: no check for mapping type ${String(mapping.type)}`);
  }
}
