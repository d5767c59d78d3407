import { topicValueSchema } from "../../schemas/catalog.js";
import { avroToJsonSchema, orNull, pick, propertyOf, type JsonSchema } from "../../schemas/json-schema.js";
import { LABEL_TASKS } from "../labels.js";

/**
 * The API's request and response schemas, projected from the Avro contracts (schemas/*.avsc)
 * so that a field is typed once: renaming or retyping a contract field changes the API, its
 * validation and its OpenAPI document together, and a field the API relies on that a contract
 * drops fails at start-up. What the API adds is only HTTP's own: bounds on what a client may
 * send, the status envelope, errors and pages.
 */

/** A topic's value contract as JSON Schema, timestamps as date-time strings. */
export const contract = (topic: string) => avroToJsonSchema(topicValueSchema(topic), { timestamps: "date-time" });
const RECEIVED = contract("inquiries.received");
const CLEANED = contract("inquiries.cleaned");
const CLASSIFIED = contract("inquiries.classified");
const SENTIMENT = contract("inquiries.sentiment");
const URGENCY = contract("inquiries.urgency");
const ROUTED = contract("inquiries.routed");
const RESPONSE = contract("inquiries.responses");
const FEEDBACK = contract("predictions.feedback");
const ENVELOPE = propertyOf(RECEIVED, "envelope");

/**
 * Text a client may send: no control characters but tab and line breaks (binary data). Half a
 * surrogate pair (an escape JSON allows but Unicode text cannot hold) is refused as the body is
 * read (http.ts): a pattern cannot say it in the regex dialects OpenAPI tools use.
 */
export const PRINTABLE = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$";

/** A response object: every property always present (null where unknown). */
export const complete = (properties: Record<string, JsonSchema>, extra: JsonSchema = {}): JsonSchema => ({
  type: "object",
  ...extra,
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
});

/** A contract's string field bounded for input, printable, with `maxLength` characters at most. */
const bounded = (schema: JsonSchema, maxLength: number, extra: JsonSchema = {}): JsonSchema => {
  const { default: _default, ...rest } = schema;
  return { ...rest, maxLength, pattern: PRINTABLE, ...extra, ...(_default === undefined ? {} : { default: _default }) };
};

const CUSTOMER = propertyOf(ENVELOPE, "customer");

// ---------------------------------------------------------------------------------------------
// POST /v1/inquiries

/** What a client sends: InquiryReceived without what the API assigns (id, channel, source id, received time). */
export const NEW_INQUIRY: JsonSchema = {
  type: "object",
  title: "NewInquiry",
  description: "An inquiry to triage. Its id, channel (`api`), source id (the request id) and received time are assigned by the API.",
  properties: {
    subject: bounded(propertyOf(RECEIVED, "subject"), 1_000),
    // Bounded by the request body limit (SWITCHBOARD_API_BODY_LIMIT_BYTES).
    body: { ...propertyOf(RECEIVED, "body"), minLength: 1, pattern: PRINTABLE, description: "The inquiry's text (plain text or HTML, see content_type); not blank." },
    content_type: propertyOf(RECEIVED, "content_type"),
    customer: {
      ...CUSTOMER,
      properties: {
        id: bounded(propertyOf(CUSTOMER, "id"), 200),
        email: bounded(propertyOf(CUSTOMER, "email"), 320, { format: "email" }),
        name: bounded(propertyOf(CUSTOMER, "name"), 200),
        tier: bounded(propertyOf(CUSTOMER, "tier"), 64),
      },
      default: {},
    },
    thread_id: bounded(propertyOf(ENVELOPE, "thread_id"), 200),
    reply_to: bounded(propertyOf(ENVELOPE, "reply_to"), 1_000),
    metadata: {
      ...propertyOf(ENVELOPE, "metadata"),
      description: "Channel metadata of the client's own (e.g. its ticket or session ids), carried through the pipeline.",
      additionalProperties: bounded(propertyOf(ENVELOPE, "metadata").additionalProperties as JsonSchema, 1_000),
      propertyNames: { minLength: 1, maxLength: 64, pattern: PRINTABLE },
      maxProperties: 32,
    },
  },
  required: ["body"],
  additionalProperties: false,
};

const INQUIRY_ID = propertyOf(RECEIVED, "inquiry_id");
const RECEIVED_AT = propertyOf(ENVELOPE, "received_at");

export const ACCEPTED: JsonSchema = complete(
  { inquiry_id: INQUIRY_ID, status: { type: "string", enum: ["received"] }, received_at: RECEIVED_AT },
  { title: "Accepted", description: "Kafka has the inquiry; follow it at /v1/inquiries/{inquiry_id}." },
);

export const IDEMPOTENCY_HEADERS: JsonSchema = {
  type: "object",
  properties: {
    "idempotency-key": {
      type: "string",
      minLength: 1,
      maxLength: 255,
      pattern: "^[\\x21-\\x7E]+$",
      description: "Makes a retry safe: the same key and body answer with the same inquiry and write nothing twice (kept 24 h by default); the same key with another body is refused (409).",
    },
  },
};

// ---------------------------------------------------------------------------------------------
// GET /v1/inquiries/{id}

export const STATUSES = ["received", "cleaned", "routed", "responded"] as const;
export type InquiryStatus = (typeof STATUSES)[number];

export const INQUIRY_PARAMS: JsonSchema = {
  type: "object",
  properties: { id: { ...INQUIRY_ID, minLength: 1, maxLength: 200, pattern: PRINTABLE } },
  required: ["id"],
};

const orNullTime = orNull(RECEIVED_AT);

export const CLEANED_INQUIRY: JsonSchema = complete(
  {
    ...pick(ENVELOPE, ["channel", "source_id", "thread_id"]),
    customer: complete(pick(CUSTOMER, ["id", "tier"])),
    ...pick(CLEANED, ["subject", "text", "language", "language_confidence", "redaction_count", "entities"]),
    received_at: RECEIVED_AT,
    cleaned_at: propertyOf(CLEANED, "cleaned_at"),
  },
  { title: "CleanedInquiry", description: "The inquiry as stored: cleaned text with personal data redacted; the customer by id and tier only." },
);

export const PREDICTION: JsonSchema = complete(
  {
    ...pick(FEEDBACK, ["prediction_id", "task", "model", "predicted_label", "confidence", "label", "label_source"]),
    predicted_at: orNull(propertyOf(FEEDBACK, "occurred_at")),
    labeled_at: orNull(propertyOf(FEEDBACK, "occurred_at")),
  },
  { title: "Prediction", description: "A model's prediction (model is name@version) and the label that judges it: of its labels, the one the conflict rule chooses (the latest agent label, else the latest help-desk outcome, else the latest customer rating)." },
);

export const ROUTING_DECISION: JsonSchema = complete(
  pick(ROUTED, [
    "department",
    "queue",
    "priority_score",
    "escalated",
    "escalation_reason",
    "human_review",
    "review_reasons",
    "missing_parts",
    "intent",
    "category",
    "sentiment",
    "urgency",
    "routed_at",
  ]),
  { title: "RoutingDecision" },
);

export const DRAFTED_RESPONSE: JsonSchema = complete(pick(RESPONSE, ["strategy", "text", "sources", "department", "model", "responded_at"]), {
  title: "DraftedResponse",
  description: "The drafted reply, or the holding message when a human takes over (strategy human).",
});

export const INQUIRY_STATE: JsonSchema = complete(
  {
    inquiry_id: INQUIRY_ID,
    status: {
      type: "string",
      enum: [...STATUSES],
      description: "How far the inquiry got: received (Kafka has it), cleaned, routed, responded (a reply or hand-off is drafted).",
    },
    received_at: orNullTime,
    inquiry: orNull(CLEANED_INQUIRY),
    predictions: { type: "array", items: PREDICTION },
    routing: orNull(ROUTING_DECISION),
    response: orNull(DRAFTED_RESPONSE),
  },
  { title: "InquiryState" },
);

/** The properties of an object schema taken from a row: exactly what the response declares, whatever else the row holds. */
export function shaped(schema: JsonSchema, row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(schema.properties as object).map((name) => [name, row[name] ?? null]));
}

// ---------------------------------------------------------------------------------------------
// GET /v1/inquiries?q=...

export const MAX_PAGE_SIZE = 100;
/** Elasticsearch's index.max_result_window: how deep pages may go. */
export const MAX_RESULT_WINDOW = 10_000;

const DEPARTMENT = propertyOf(ROUTED, "department");

export const SEARCH_QUERY: JsonSchema = {
  type: "object",
  properties: {
    q: { type: "string", minLength: 1, maxLength: 500, pattern: PRINTABLE, description: "Full-text query over subject and text (simple query syntax: words, \"phrases\", -exclusions)." },
    department: { ...DEPARTMENT, minLength: 1, maxLength: 200, pattern: PRINTABLE },
    queue: { ...propertyOf(ROUTED, "queue"), minLength: 1, maxLength: 200, pattern: PRINTABLE },
    review: { ...propertyOf(ROUTED, "human_review"), description: "Only inquiries flagged (true) or not flagged (false) for human review." },
    from: { ...RECEIVED_AT, description: "Received at or after this time." },
    to: { ...RECEIVED_AT, description: "Received at or before this time." },
    page: { type: "integer", minimum: 1, maximum: MAX_RESULT_WINDOW, default: 1 },
    size: { type: "integer", minimum: 1, maximum: MAX_PAGE_SIZE, default: 20 },
  },
  additionalProperties: false,
};

const nullables = (schema: JsonSchema, names: readonly string[]) =>
  Object.fromEntries(Object.entries(pick(schema, names)).map(([name, property]) => [name, orNull(property)]));

export const SEARCH_RESULTS: JsonSchema = complete(
  {
    total: { type: "integer", minimum: 0, description: "Inquiries that match (counted exactly up to 10,000)." },
    page: { type: "integer", minimum: 1 },
    size: { type: "integer", minimum: 1 },
    results: {
      type: "array",
      items: complete(
        {
          inquiry_id: INQUIRY_ID,
          score: { type: ["number", "null"], description: "Relevance to q; null without q (newest first)." },
          received_at: orNullTime,
          ...nullables(ENVELOPE, ["channel"]),
          ...nullables(CLEANED, ["subject", "language"]),
          ...nullables(ROUTED, ["department", "queue", "priority_score", "escalated", "human_review", "intent", "category", "sentiment", "urgency"]),
          highlights: { type: "array", items: { type: "string" }, description: "Passages of the redacted text that match q." },
        },
        { title: "SearchHit", description: "A matching inquiry; fields the pipeline has not filled yet are null." },
      ),
    },
  },
  { title: "SearchResults" },
);

// ---------------------------------------------------------------------------------------------
// POST /v1/inquiries/{id}/labels

const labelField = (schema: JsonSchema, description: string): JsonSchema => ({ ...schema, minLength: 1, maxLength: 200, pattern: PRINTABLE, description });

/** A person's labels for some of an inquiry's tasks, each a class the task knows. */
export const NEW_LABELS: JsonSchema = {
  type: "object",
  title: "Labels",
  description: "The true labels a person gives, one per task (at least one): each joins the prediction it corrects on predictions.feedback.",
  properties: {
    intent: labelField(propertyOf(CLASSIFIED, "intent"), "An intent of the production intent model."),
    category: labelField(propertyOf(CLASSIFIED, "category"), "A category of the production category model."),
    sentiment: propertyOf(SENTIMENT, "label"),
    urgency: propertyOf(URGENCY, "level"),
    department: labelField(DEPARTMENT, "A department of the routing rules."),
  } satisfies Record<(typeof LABEL_TASKS)[number], JsonSchema>,
  minProperties: 1,
  additionalProperties: false,
};

export const LABELS_ACCEPTED: JsonSchema = complete(
  {
    inquiry_id: INQUIRY_ID,
    labels: {
      type: "array",
      items: complete(pick(FEEDBACK, ["prediction_id", "task", "model", "predicted_label", "label"]), { title: "RecordedLabel" }),
    },
  },
  { title: "LabelsAccepted", description: "Kafka has a predictions.feedback record (label_source agent) for each label." },
);

// ---------------------------------------------------------------------------------------------
// POST /v1/inquiries/{id}/reply-rating

export const REPLY_RATING: JsonSchema = {
  type: "object",
  title: "ReplyRating",
  description: "A customer's thumbs up or down on the reply drafted for the inquiry.",
  properties: {
    rating: { type: "string", enum: ["up", "down"], description: "up: the reply helped; down: it did not." },
  },
  required: ["rating"],
  additionalProperties: false,
};

export const RATING_ACCEPTED: JsonSchema = complete(
  {
    inquiry_id: INQUIRY_ID,
    labels: {
      type: "array",
      items: complete(pick(FEEDBACK, ["prediction_id", "task", "model", "predicted_label", "label"]), { title: "RecordedRating" }),
    },
  },
  {
    title: "RatingAccepted",
    description:
      "Kafka has a predictions.feedback record (label_source customer) for each label the rating gives: always task response (helpful / unhelpful), and for a template reply rated up the intent it confirms.",
  },
);

// ---------------------------------------------------------------------------------------------

export const ERROR: JsonSchema = {
  type: "object",
  title: "Error",
  properties: {
    error: { type: "string", description: "Machine-readable reason, e.g. validation_failed, too_large, unsupported_media_type, rate_limited, unavailable_kafka." },
    message: { type: "string" },
    field: { type: "string", description: "The offending field (dotted path), header or parameter." },
    reason: { type: "string", description: "What is wrong with it." },
  },
  required: ["error", "message"],
  additionalProperties: false,
};
