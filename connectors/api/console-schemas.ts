import { orNull, pick, propertyOf, type JsonSchema } from "../../schemas/json-schema.js";
import { CLEANED_INQUIRY, DRAFTED_RESPONSE, PREDICTION, PRINTABLE, ROUTING_DECISION, complete, contract } from "./schemas.js";

/**
 * The schemas of the agent console's routes (console.ts, review.ts, models.ts), projected from
 * the Avro contracts like the rest of the API's (schemas.ts), so the OpenAPI document stays
 * complete and a response holds exactly what it declares.
 */

const RECEIVED = contract("inquiries.received");
const CLEANED = contract("inquiries.cleaned");
const ROUTED = contract("inquiries.routed");
const RESPONSE = contract("inquiries.responses");
const URGENCY = contract("inquiries.urgency");
const REPLY = contract("inquiries.replies");
const FEEDBACK = contract("predictions.feedback");
const DRIFT = contract("models.drift");
const LIFECYCLE = contract("models.lifecycle");
const ENVELOPE = propertyOf(RECEIVED, "envelope");

const nullable = (schema: JsonSchema, names: readonly string[]) =>
  Object.fromEntries(Object.entries(pick(schema, names)).map(([name, property]) => [name, orNull(property)]));
const TIME = propertyOf(ENVELOPE, "received_at");
const NUMBER_OR_NULL: JsonSchema = { type: ["number", "null"] };
const filterText = (schema: JsonSchema): JsonSchema => ({ ...schema, minLength: 1, maxLength: 200, pattern: PRINTABLE });

// ---------------------------------------------------------------------------------------------
// GET /v1/review-queue

export const MAX_QUEUE_ITEMS = 500;

export const QUEUE_QUERY: JsonSchema = {
  type: "object",
  properties: {
    department: filterText(propertyOf(ROUTED, "department")),
    queue: filterText(propertyOf(ROUTED, "queue")),
    limit: { type: "integer", minimum: 1, maximum: MAX_QUEUE_ITEMS, default: 100 },
  },
  additionalProperties: false,
};

export const QUEUE_ITEM: JsonSchema = complete(
  {
    ...pick(RECEIVED, ["inquiry_id"]),
    received_at: orNull(TIME),
    ...nullable(ENVELOPE, ["channel"]),
    ...nullable(CLEANED, ["subject", "language"]),
    snippet: { type: ["string", "null"], description: "The start of the redacted text." },
    ...pick(ROUTED, ["department", "queue", "priority_score", "escalated", "escalation_reason", "human_review", "review_reasons", "intent", "category", "sentiment", "urgency", "routed_at"]),
    strategy: orNull(propertyOf(RESPONSE, "strategy")),
  },
  { title: "ReviewQueueItem", description: "An inquiry flagged for human review or escalated that no agent has answered yet." },
);

export const CURSOR: JsonSchema = {
  type: "string",
  pattern: "^[0-9]{1,20}$",
  description: "Where the live feed (GET /v1/review-queue/events?cursor=) starts: changes archived after this answer.",
};

export const REVIEW_QUEUE: JsonSchema = complete(
  {
    total: { type: "integer", minimum: 0, description: "Open items that pass the filters (items holds the first `limit` of them)." },
    items: { type: "array", items: QUEUE_ITEM },
    departments: {
      type: "array",
      description: "Every department and queue with open items (whatever the filters), to filter by.",
      items: complete(
        {
          department: propertyOf(ROUTED, "department"),
          open: { type: "integer", minimum: 0 },
          queues: { type: "array", items: complete({ queue: propertyOf(ROUTED, "queue"), open: { type: "integer", minimum: 0 } }, { title: "QueueCount" }) },
        },
        { title: "DepartmentCount" },
      ),
    },
    cursor: CURSOR,
  },
  { title: "ReviewQueue", description: "Open items by priority (highest first, then oldest)." },
);

export const EVENTS_QUERY: JsonSchema = {
  type: "object",
  properties: { cursor: CURSOR },
  additionalProperties: false,
};

// ---------------------------------------------------------------------------------------------
// GET /v1/inquiries/{id}/review

export const URGENCY_EXPLAINED: JsonSchema = complete(
  {
    level: orNull(propertyOf(URGENCY, "level")),
    model_level: { type: ["string", "null"], description: "What the urgency model predicted on its own, before the signals." },
    model: { type: ["string", "null"], description: "The urgency model, name@version." },
    confidence: NUMBER_OR_NULL,
    signals: { ...propertyOf(URGENCY, "signals"), description: "The explicit signals that fired (outage, asap, deadline, legal, safety, fraud, repeat_contact, no_rush, vip)." },
    drivers: propertyOf(ROUTED, "urgency_drivers"),
    explanation: { type: "string", description: "What drove the level routed on: the model's level, the signals, intent and sentiment, with their weights." },
  },
  { title: "UrgencyExplained" },
);

export const GIVEN_LABEL: JsonSchema = complete(
  {
    ...pick(FEEDBACK, ["prediction_id", "task", "label", "label_source"]),
    label: { type: "string" },
    labeled_at: TIME,
    judged_model: { type: "string", description: "The prediction the label judged when given: its model@version…" },
    judged_label: { type: "string", description: "…and its label." },
  },
  { title: "GivenLabel" },
);

export const SENT_REPLY: JsonSchema = complete(pick(REPLY, ["reply_id", "text", "agent", "edited", "sent_at"]), { title: "SentReply" });

export const REVIEW_DETAIL: JsonSchema = complete(
  {
    inquiry_id: propertyOf(RECEIVED, "inquiry_id"),
    open: { type: "boolean", description: "In the review queue: flagged or escalated, and no agent reply yet." },
    inquiry: orNull(CLEANED_INQUIRY),
    predictions: { type: "array", items: PREDICTION },
    urgency: orNull(URGENCY_EXPLAINED),
    routing: orNull(ROUTING_DECISION),
    response: orNull(DRAFTED_RESPONSE),
    labels: { type: "array", items: GIVEN_LABEL, description: "Every label given for the inquiry, newest first (the feedback sink's labels)." },
    replies: { type: "array", items: SENT_REPLY, description: "Replies agents sent, oldest first." },
  },
  { title: "ReviewDetail", description: "Everything an agent reviewing the inquiry needs." },
);

// ---------------------------------------------------------------------------------------------
// POST /v1/inquiries/{id}/replies

export const NEW_REPLY: JsonSchema = {
  type: "object",
  title: "NewReply",
  properties: {
    text: { ...propertyOf(REPLY, "text"), minLength: 1, maxLength: 20_000, pattern: PRINTABLE, description: "What the customer reads: the drafted reply as it was, or edited." },
    reply_id: {
      type: "string",
      format: "uuid",
      description: "Optional, chosen by the client: a retry with the same id is the same reply (the archive and the chat gateway keep it once).",
    },
  },
  required: ["text"],
  additionalProperties: false,
};

export const REPLY_ACCEPTED: JsonSchema = complete(
  { ...pick(REPLY, ["reply_id", "inquiry_id", "edited", "sent_at"]) },
  { title: "ReplyAccepted", description: "Kafka has the reply (inquiries.replies); the chat gateway delivers it on the customer's session." },
);

// ---------------------------------------------------------------------------------------------
// GET /v1/label-classes

const CLASS_LIST: JsonSchema = { type: "array", items: { type: "string" } };
export const LABEL_CLASSES: JsonSchema = complete(
  { intent: CLASS_LIST, category: CLASS_LIST, sentiment: CLASS_LIST, urgency: CLASS_LIST, department: CLASS_LIST },
  { title: "LabelClasses", description: "The classes an agent may give per task: the production models' labels, the contracts' sentiments and urgency levels, the routing rules' departments." },
);

// ---------------------------------------------------------------------------------------------
// GET /v1/models

const QUALITY: JsonSchema = complete(
  {
    stage: { type: "string", enum: ["production", "shadow"] },
    model: { type: "string", description: "name@version" },
    window: { type: "string", description: "1h, 1d: the last that long; a number: the last that many predictions." },
    predictions: { type: "integer", minimum: 0 },
    labelled: { type: "integer", minimum: 0 },
    accuracy: { ...NUMBER_OR_NULL, description: "Measured on the labelled predictions (null without any)." },
    accuracy_low: NUMBER_OR_NULL,
    accuracy_high: NUMBER_OR_NULL,
    macro_f1: NUMBER_OR_NULL,
    estimated_accuracy: { ...NUMBER_OR_NULL, description: "Without labels: the mean calibrated confidence (null for an empty window)." },
    estimated_low: NUMBER_OR_NULL,
    estimated_high: NUMBER_OR_NULL,
    estimate_trusted: { type: "boolean" },
    estimate_reason: { type: "string", description: "Why the estimate is trusted or not." },
  },
  { title: "LiveQuality" },
);

const DRIFT_EVENT: JsonSchema = complete(pick(DRIFT, ["model", "feature", "statistic", "value", "threshold", "severity", "sample_size", "detected_at"]), { title: "DriftEvent" });

const LIFECYCLE_EVENT: JsonSchema = complete(
  {
    id: { type: "integer" },
    event: propertyOf(LIFECYCLE, "event"),
    version: { type: ["string", "null"], description: "The version the event is about." },
    production_version: { type: ["string", "null"], description: "Production before the event." },
    reason: { type: "string" },
    numbers: { type: "object", additionalProperties: { type: "number" }, description: "The deciding figures (gate metrics, shadow accuracy, …)." },
    decided_at: TIME,
  },
  { title: "LifecycleEvent" },
);

const HELD_OUT: JsonSchema = complete(
  { accuracy: NUMBER_OR_NULL, macro_f1: NUMBER_OR_NULL, ece: NUMBER_OR_NULL },
  { title: "HeldOutMetrics", description: "On the held-out test split, from the registry." },
);

const SERVED_VERSION: JsonSchema = complete(
  {
    version: { type: "string" },
    model: { type: "string", description: "name@version, as predictions carry it." },
    family: { type: "string" },
    since: { ...TIME, description: "When it reached this stage." },
    held_out: HELD_OUT,
  },
  { title: "ServedVersion" },
);

export const MODELS: JsonSchema = complete(
  {
    models: {
      type: "array",
      items: complete(
        {
          name: { type: "string" },
          task: { type: "string" },
          production: orNull(SERVED_VERSION),
          shadow: orNull(SERVED_VERSION),
          quality: { type: "array", items: QUALITY, description: "Live quality of the production and shadow versions over the last hour and day." },
          drift: complete(
            {
              state: { type: "string", enum: ["alarm", "normal", "unwatched"], description: "alarm: some watched statistic of the production version drifted; unwatched: the drift processor holds no window of it yet." },
              features_in_alarm: { type: "array", items: { type: "string" } },
              updated_at: orNull(TIME),
              recent: { type: "array", items: DRIFT_EVENT, description: "The production version's latest drift records (the last 7 days)." },
            },
            { title: "DriftState" },
          ),
          lifecycle: { type: "array", items: LIFECYCLE_EVENT, description: "The latest registry decisions (models.lifecycle's source), newest first." },
        },
        { title: "ModelStatus" },
      ),
    },
    generated_at: TIME,
  },
  { title: "Models" },
);
