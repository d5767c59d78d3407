import type pg from "pg";
import type { PredictionFeedback } from "../../schemas/types.generated.js";
import { APP_SCHEMA } from "../../storage/postgres.js";
import { UnlabelableError, labelRecord, type LabelTask } from "../labels.js";
import type { LabelValue, TicketUpdate } from "./events.js";
import { ticketThread } from "./inquiry.js";
import { FIELD_TASK, type TicketLabelMap } from "./label-map.js";
import { bounded, type Ledger } from "./ledger.js";
import type { Desk } from "./signatures.js";

/**
 * A failure of PostgreSQL itself rather than of the statement: no connection, or SQLSTATE class
 * 08 (connection), 53 (resources) or 57 (shutdown, starting up). A statement's own error (and a
 * label that cannot be recorded yet) is not.
 */
function isOutage(error: unknown): boolean {
  if (error instanceof UnlabelableError) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? /^(08|53|57)/.test(code) : true;
}

export interface PlannedLabel {
  readonly task: LabelTask;
  readonly label: string;
  readonly source: LabelValue["source"];
}

/** The labels an update gives through the label map, and the values the map has no entry for. */
export function planLabels(desk: Desk, update: TicketUpdate, map: TicketLabelMap): { labels: PlannedLabel[]; unmapped: LabelValue[] } {
  const labels: PlannedLabel[] = [];
  const unmapped: LabelValue[] = [];
  for (const value of update.values) {
    const label = map.label(desk, value.field, value.value);
    if (label === undefined) unmapped.push(value);
    else labels.push({ task: FIELD_TASK[value.field], label, source: value.source });
  }
  return { labels, unmapped };
}

export type LabelRecords =
  | { readonly state: "ready"; readonly inquiryId: string; readonly records: PredictionFeedback[]; /** Tasks the inquiry will never have a prediction for. */ readonly skipped: LabelTask[] }
  | { readonly state: "not_ready"; readonly inquiryId: string; readonly message: string }
  | { readonly state: "unknown_ticket" };

/**
 * The `predictions.feedback` records of an update's labels, each joined to the prediction it
 * judges. A ticket's labels judge its first inquiry: the one Switchboard classified and routed
 * when the ticket arrived, which is what the agent corrects or the resolution confirms.
 *
 * Not ready (the caller answers 409 and the desk retries) while that inquiry is not yet archived
 * or routed; once routed, a task without a prediction (its model's output never arrived) is skipped.
 */
export async function labelRecords(
  pool: pg.Pool,
  ledger: Ledger,
  desk: Desk,
  update: TicketUpdate,
  labels: readonly PlannedLabel[],
  timeoutMs: number,
): Promise<LabelRecords> {
  const query = <R extends pg.QueryResultRow>(text: string, values: unknown[]) =>
    bounded("postgres", timeoutMs, () => pool.query<R>(text, values), isOutage);
  const published = await ledger.ticketInquiry(desk, update.ticketId);
  const archived = published
    ? undefined
    : (
        await query<{ inquiry_id: string }>(
          `SELECT inquiry_id FROM ${APP_SCHEMA}.inquiries WHERE thread_id = $1 ORDER BY received_at LIMIT 1`,
          [ticketThread(desk, update.ticketId)],
        )
      ).rows[0]?.inquiry_id;
  const inquiryId = published ?? archived;
  if (inquiryId === undefined) return { state: "unknown_ticket" };

  const records: PredictionFeedback[] = [];
  const missing: LabelTask[] = [];
  for (const { task, label, source } of labels) {
    try {
      const record = () => labelRecord(pool, { inquiryId, task, label, source, at: update.occurredAt });
      records.push(await bounded("postgres", timeoutMs, record, isOutage));
    } catch (error) {
      if (!(error instanceof UnlabelableError)) throw error;
      if (error.reason === "unknown_inquiry") {
        return { state: "not_ready", inquiryId, message: `inquiry ${inquiryId} of ticket ${update.ticketId} is not archived yet; retry shortly` };
      }
      missing.push(task);
    }
  }
  if (missing.length > 0) {
    const routed = await query(`SELECT 1 FROM ${APP_SCHEMA}.routing_decisions WHERE inquiry_id = $1`, [inquiryId]);
    if (!routed.rowCount) {
      return { state: "not_ready", inquiryId, message: `inquiry ${inquiryId} has no ${missing.join(", ")} prediction yet; retry shortly` };
    }
  }
  return { state: "ready", inquiryId, records, skipped: missing };
}
