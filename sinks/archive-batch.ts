import type { AgentReply, InquiryCleaned, InquiryResponse, InquiryRouted, PredictionFeedback } from "../schemas/types.generated.js";
import { InvalidInputError } from "../streams/errors.js";
import {
  AGENT_REPLIES,
  INQUIRIES,
  PREDICTIONS,
  RESPONSES,
  ROUTING_DECISIONS,
  checkRow,
  predictionFields,
  type AgentReplyRow,
  type ArchiveRows,
  type InquiryRow,
  type PredictionRow,
  type ResponseRow,
  type RoutingDecisionRow,
} from "./archive-store.js";
import type { RedactionGuard } from "./redaction-guard.js";
import { storedTime } from "./storable.js";

/** A row and the time its record states, which decides whether it replaces another. */
interface Dated<Table extends "inquiries" | "routingDecisions" | "responses" | "agentReplies"> {
  readonly table: Table;
  readonly key: string;
  readonly row: NonNullable<ArchiveRows[Table]>[number];
  readonly at: number;
}

/** A prediction row holds two parts, each dated by its own record: the prediction and its label. */
interface PendingPrediction {
  readonly table: "predictions";
  readonly key: string;
  readonly row: PredictionRow;
  readonly predictedAt: number | null;
  readonly labeledAt: number | null;
}

/**
 * One record as an archive row, checked as its table will check it, so that a record the table
 * cannot hold is refused on its own (for the DLQ).
 */
export type ArchiveItem = Dated<"inquiries"> | Dated<"routingDecisions"> | Dated<"responses"> | Dated<"agentReplies"> | PendingPrediction;

/** A batch holds one row per table and key: ON CONFLICT cannot touch a row twice in one statement. */
export const archiveKey = (item: ArchiveItem): string => `${item.table}:${item.key}`;

/**
 * Collapses two items of one row the way upserting them one by one would have left it: the
 * strictly newer record wins, and on a tie the first one seen, as the table's own "strictly
 * newer" rule decides; a prediction's two parts are dated apart.
 */
export function newerItem(held: ArchiveItem, incoming: ArchiveItem): ArchiveItem {
  if (held.table === "predictions" && incoming.table === "predictions") return mergedPrediction(held, incoming);
  if (held.table === "predictions" || incoming.table === "predictions") {
    throw new Error(`archive item ${archiveKey(held)}: a prediction merged with a row of another table`);
  }
  return incoming.at > held.at ? incoming : held;
}

/** A batch's items, one per key, as the rows of each table. */
export function archiveRows(items: readonly ArchiveItem[]): ArchiveRows {
  const rows = {
    inquiries: [] as InquiryRow[],
    predictions: [] as PredictionRow[],
    routingDecisions: [] as RoutingDecisionRow[],
    responses: [] as ResponseRow[],
    agentReplies: [] as AgentReplyRow[],
  };
  for (const item of items) {
    switch (item.table) {
      case "inquiries":
        rows.inquiries.push(item.row);
        break;
      case "predictions":
        rows.predictions.push(item.row);
        break;
      case "routingDecisions":
        rows.routingDecisions.push(item.row);
        break;
      case "responses":
        rows.responses.push(item.row);
        break;
      case "agentReplies":
        rows.agentReplies.push(item.row);
        break;
    }
  }
  return rows;
}

export function inquiryItem(record: InquiryCleaned, guard: RedactionGuard): ArchiveItem {
  const { envelope, inquiry_id: inquiryId } = record;
  const row: InquiryRow = {
    inquiry_id: inquiryId,
    channel: envelope.channel,
    source_id: envelope.source_id,
    thread_id: envelope.thread_id,
    customer_id: envelope.customer.id,
    customer_tier: envelope.customer.tier,
    subject: record.subject === null ? null : guard(inquiryId, "subject", record.subject),
    text: guard(inquiryId, "text", record.text),
    language: record.language,
    language_confidence: record.language_confidence,
    redaction_count: record.redaction_count,
    entities: record.entities.map((e) => ({ type: e.type, value: guard(inquiryId, `entities.${e.type}`, e.value) })),
    received_at: storedTime(envelope.received_at, "envelope.received_at"),
    cleaned_at: storedTime(record.cleaned_at, "cleaned_at"),
  };
  checkRow(INQUIRIES, row);
  return { table: "inquiries", key: inquiryId, row, at: record.cleaned_at };
}

/**
 * A prediction (label_source "model") dates the prediction part; a label (agent, customer,
 * outcome) the label part. Both kinds carry the prediction's fields, so a label that comes first
 * makes a complete row, which its prediction then dates.
 */
export function predictionItem(record: PredictionFeedback): ArchiveItem {
  const isPrediction = record.label_source === "model";
  if (!isPrediction && record.label === null) {
    throw new InvalidInputError(
      `prediction ${record.prediction_id}: a ${record.label_source} label record without a label`,
    );
  }
  const at = storedTime(record.occurred_at, "occurred_at");
  const row: PredictionRow = {
    ...predictionFields(record, isPrediction ? at : null),
    label: isPrediction ? null : record.label,
    label_source: record.label_source,
    labeled_at: isPrediction ? null : at,
  };
  checkRow(PREDICTIONS, row);
  return {
    table: "predictions",
    key: record.prediction_id,
    row,
    predictedAt: isPrediction ? record.occurred_at : null,
    labeledAt: isPrediction ? null : record.occurred_at,
  };
}

export function routingDecisionItem(record: InquiryRouted): ArchiveItem {
  const row: RoutingDecisionRow = {
    inquiry_id: record.inquiry_id,
    department: record.department,
    queue: record.queue,
    priority_score: record.priority_score,
    escalated: record.escalated,
    escalation_reason: record.escalation_reason,
    human_review: record.human_review,
    review_reasons: record.review_reasons,
    missing_parts: record.missing_parts,
    intent: record.intent,
    category: record.category,
    sentiment: record.sentiment,
    urgency: record.urgency,
    urgency_drivers: record.urgency_drivers,
    routed_at: storedTime(record.routed_at, "routed_at"),
  };
  checkRow(ROUTING_DECISIONS, row);
  return { table: "routingDecisions", key: record.inquiry_id, row, at: record.routed_at };
}

export function responseItem(record: InquiryResponse, guard: RedactionGuard): ArchiveItem {
  const row: ResponseRow = {
    inquiry_id: record.inquiry_id,
    strategy: record.strategy,
    text: guard(record.inquiry_id, "response", record.text),
    sources: record.sources,
    department: record.department,
    model: record.model,
    responded_at: storedTime(record.responded_at, "responded_at"),
  };
  checkRow(RESPONSES, row);
  return { table: "responses", key: record.inquiry_id, row, at: record.responded_at };
}

/** An agent's reply; two records with one reply_id are the same reply (a redelivery), so either will do. */
export function agentReplyItem(record: AgentReply): ArchiveItem {
  const row: AgentReplyRow = {
    reply_id: record.reply_id,
    inquiry_id: record.inquiry_id,
    channel: record.envelope.channel,
    text: record.text,
    agent: record.agent,
    edited: record.edited,
    sent_at: storedTime(record.sent_at, "sent_at"),
  };
  checkRow(AGENT_REPLIES, row);
  return { table: "agentReplies", key: record.reply_id, row, at: record.sent_at };
}

/** Each part from whichever record dates it later; the table's ON CONFLICT rule does the same against the stored row. */
function mergedPrediction(held: PendingPrediction, incoming: PendingPrediction): PendingPrediction {
  const laterThan = (time: number | null, than: number | null) => time !== null && (than === null || time > than);
  const prediction = laterThan(incoming.predictedAt, held.predictedAt) ? incoming : held;
  const label = laterThan(incoming.labeledAt, held.labeledAt) ? incoming : held;
  return {
    table: "predictions",
    key: held.key,
    row: {
      ...prediction.row,
      label: label.row.label,
      label_source: label.row.label_source,
      labeled_at: label.row.labeled_at,
    },
    predictedAt: prediction.predictedAt,
    labeledAt: label.labeledAt,
  };
}
