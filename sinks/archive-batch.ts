import type { InquiryCleaned, InquiryResponse, InquiryRouted, PredictionFeedback } from "../schemas/types.generated.js";
import { InvalidInputError } from "../streams/errors.js";
import {
  INQUIRIES,
  PREDICTIONS,
  RESPONSES,
  ROUTING_DECISIONS,
  checkRow,
  type ArchiveRows,
  type InquiryRow,
  type PredictionRow,
  type ResponseRow,
  type RoutingDecisionRow,
} from "./archive-store.js";
import type { RedactionGuard } from "./redaction-guard.js";
import { storedTime } from "./storable.js";

/** A row and the time its record states, which decides whether it replaces another. */
interface Dated<Row> {
  readonly row: Row;
  readonly at: number;
}

/** A prediction row holds two parts, each dated by its own record: the prediction and its label. */
interface PendingPrediction {
  readonly row: PredictionRow;
  readonly predictedAt: number | null;
  readonly labeledAt: number | null;
}

/**
 * The records of one transaction, turned into archive rows as they arrive (where a record a table
 * cannot hold is refused on its own, for the DLQ) and collapsed to one row per key the way
 * upserting them one by one would have left it: the strictly newer record wins, and on a tie the
 * first one seen, as the table's own "strictly newer" rule decides.
 */
export class ArchiveBatch {
  readonly #inquiries = new Map<string, Dated<InquiryRow>>();
  readonly #predictions = new Map<string, PendingPrediction>();
  readonly #routingDecisions = new Map<string, Dated<RoutingDecisionRow>>();
  readonly #responses = new Map<string, Dated<ResponseRow>>();
  #records = 0;

  /** Records added, duplicates included. */
  get records(): number {
    return this.#records;
  }

  addInquiry(record: InquiryCleaned, guard: RedactionGuard): void {
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
    this.#keepNewer(this.#inquiries, inquiryId, { row, at: record.cleaned_at });
  }

  /**
   * A prediction (label_source "model") dates the prediction part; a label (agent, customer,
   * outcome) the label part. Both kinds carry the prediction's fields, so a label that comes first
   * makes a complete row, which its prediction then dates.
   */
  addPrediction(record: PredictionFeedback): void {
    const isPrediction = record.label_source === "model";
    if (!isPrediction && record.label === null) {
      throw new InvalidInputError(
        `prediction ${record.prediction_id}: a ${record.label_source} label record without a label`,
      );
    }
    const at = storedTime(record.occurred_at, "occurred_at");
    const row: PredictionRow = {
      prediction_id: record.prediction_id,
      inquiry_id: record.inquiry_id,
      task: record.task,
      model: record.model,
      predicted_label: record.predicted_label,
      confidence: record.confidence,
      input_digest: record.input_digest,
      features: record.features,
      predicted_at: isPrediction ? at : null,
      label: isPrediction ? null : record.label,
      label_source: record.label_source,
      labeled_at: isPrediction ? null : at,
    };
    checkRow(PREDICTIONS, row);
    this.#records++;
    const incoming: PendingPrediction = {
      row,
      predictedAt: isPrediction ? record.occurred_at : null,
      labeledAt: isPrediction ? null : record.occurred_at,
    };
    const held = this.#predictions.get(record.prediction_id);
    this.#predictions.set(record.prediction_id, held === undefined ? incoming : mergedPrediction(held, incoming));
  }

  addRoutingDecision(record: InquiryRouted): void {
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
      routed_at: storedTime(record.routed_at, "routed_at"),
    };
    checkRow(ROUTING_DECISIONS, row);
    this.#keepNewer(this.#routingDecisions, record.inquiry_id, { row, at: record.routed_at });
  }

  addResponse(record: InquiryResponse, guard: RedactionGuard): void {
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
    this.#keepNewer(this.#responses, record.inquiry_id, { row, at: record.responded_at });
  }

  rows(): ArchiveRows {
    const rowsOf = <Row>(pending: Map<string, { readonly row: Row }>) => [...pending.values()].map((p) => p.row);
    return {
      inquiries: rowsOf(this.#inquiries),
      predictions: rowsOf(this.#predictions),
      routingDecisions: rowsOf(this.#routingDecisions),
      responses: rowsOf(this.#responses),
    };
  }

  #keepNewer<Row>(pending: Map<string, Dated<Row>>, key: string, incoming: Dated<Row>): void {
    this.#records++;
    const held = pending.get(key);
    if (held === undefined || incoming.at > held.at) pending.set(key, incoming);
  }
}

/** Each part from whichever record dates it later; the table's ON CONFLICT rule does the same against the stored row. */
function mergedPrediction(held: PendingPrediction, incoming: PendingPrediction): PendingPrediction {
  const laterThan = (time: number | null, than: number | null) => time !== null && (than === null || time > than);
  const prediction = laterThan(incoming.predictedAt, held.predictedAt) ? incoming : held;
  const label = laterThan(incoming.labeledAt, held.labeledAt) ? incoming : held;
  return {
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
