import { createHash } from "node:crypto";
import { Counter, Registry } from "prom-client";
import type { PredictionFeedback } from "../schemas/types.generated.js";
import { InvalidInputError } from "../streams/errors.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../streams/processor.js";
import { sinkProcessor } from "../streams/sink.js";
import { findTopic, type ProcessorDeclaration } from "../streams/topology.js";
import { checkRow, predictionFields } from "./archive-store.js";
import {
  FEEDBACK_PREDICTIONS,
  LABELS,
  writeFeedback,
  type FeedbackPredictionRow,
  type FeedbackRows,
  type LabelRow,
} from "./feedback-store.js";
import { storedTime } from "./storable.js";

/**
 * What one predictions.feedback record becomes: always its prediction (a label repeats the
 * prediction it judges, so a label that comes first still makes the prediction's row), and for a
 * label record the label too.
 */
export interface FeedbackItem {
  readonly prediction: FeedbackPredictionRow;
  /** The record's time when it is the prediction itself; null for a label's copy. */
  readonly predictedAt: number | null;
  readonly label: LabelRow | null;
}

/**
 * A label's identity is what it says, so that the same record delivered again, or re-published
 * by a DLQ replay, is the same row: the same source giving the same label to the same
 * prediction in the same millisecond is one label.
 */
export function labelId(record: Pick<PredictionFeedback, "prediction_id" | "label_source" | "label" | "occurred_at">): string {
  return createHash("sha256")
    .update([record.prediction_id, record.label_source, record.label ?? "", String(record.occurred_at)].join("\u0000"))
    .digest("hex")
    .slice(0, 32);
}

/** Checks one record as the tables will, so that a record they cannot hold goes to the DLQ alone. */
export function feedbackItem(record: PredictionFeedback): FeedbackItem {
  for (const field of ["prediction_id", "inquiry_id", "task", "model"] as const) {
    if (record[field].trim() === "") throw new InvalidInputError(`${field} is empty`);
  }
  const isPrediction = record.label_source === "model";
  if (isPrediction && record.label !== null) {
    throw new InvalidInputError(`a model prediction that carries a label ("${record.label}"): a label needs its source`);
  }
  if (!isPrediction && (record.label === null || record.label.trim() === "")) {
    throw new InvalidInputError(`a label record (source ${record.label_source}) without a label`);
  }
  const at = storedTime(record.occurred_at, "occurred_at");
  const prediction: FeedbackPredictionRow = { ...predictionFields(record, isPrediction ? at : null), stage: record.stage };
  checkRow(FEEDBACK_PREDICTIONS, prediction);
  if (record.label_source !== "model" && record.label !== null) {
    const label: LabelRow = {
      label_id: labelId(record),
      prediction_id: record.prediction_id,
      inquiry_id: record.inquiry_id,
      task: record.task,
      label: record.label,
      label_source: record.label_source,
      labeled_at: at,
      judged_model: record.model,
      judged_label: record.predicted_label,
    };
    checkRow(LABELS, label);
    return { prediction, predictedAt: null, label };
  }
  return { prediction, predictedAt: record.occurred_at, label: null };
}

/**
 * A batch's items as rows, one per key (ON CONFLICT cannot touch a row twice in one statement),
 * collapsed as writing them one by one would leave the tables: a prediction is replaced only by a
 * strictly newer prediction record (a label's copy never replaces one), the first seen on a tie;
 * a label seen twice is one label.
 */
export function feedbackRows(items: readonly FeedbackItem[]): FeedbackRows {
  const predictions = new Map<string, FeedbackItem>();
  const labels = new Map<string, LabelRow>();
  for (const item of items) {
    const id = item.prediction.prediction_id;
    const held = predictions.get(id);
    const newer = held === undefined || (item.predictedAt !== null && (held.predictedAt === null || item.predictedAt > held.predictedAt));
    if (newer) predictions.set(id, item);
    if (item.label !== null && !labels.has(item.label.label_id)) labels.set(item.label.label_id, item.label);
  }
  return { predictions: [...predictions.values()].map((item) => item.prediction), labels: [...labels.values()] };
}

/**
 * The feedback sink, a batching sink (streams/sink.ts) of the learning loop: every prediction and
 * every label of predictions.feedback into PostgreSQL, in the transaction that commits their
 * offsets, whatever order they arrive in. Labels are joined to their prediction by prediction_id
 * and resolved by the `resolved_labels` view (005_feedback.sql); none is ever overwritten.
 */
export async function feedback(declaration: ProcessorDeclaration, deps: ProcessorDependencies): Promise<ProcessorImplementation> {
  // Topic names may differ (a test's own topics): what a record is comes from its topic's schema.
  const wrong = declaration.inputs.filter((topic) => findTopic(deps.topology, topic).valueSchema !== "predictions.feedback");
  if (wrong.length > 0) throw new Error(`${declaration.name}: reads only predictions.feedback records, not input topic(s) ${wrong.join(", ")}`);
  const db = await deps.resources.postgres();
  const registry = new Registry();
  const labelsStored = new Counter({
    name: "switchboard_feedback_labels_total",
    help: "Labels the feedback sink stored for the first time (a replayed label is not counted), by task and source",
    labelNames: ["task", "source"],
    registers: [registry],
  });

  // No batch key: one record may give two rows, so the batch collapses per table when written.
  const implementation = sinkProcessor<FeedbackItem>(
    declaration.name,
    {
      add(input) {
        const record = input.value as PredictionFeedback;
        try {
          return feedbackItem(record);
        } catch (error) {
          if (!(error instanceof InvalidInputError)) throw error;
          throw new InvalidInputError(
            `feedback: ${record.label_source} record of prediction ${record.prediction_id} (inquiry ${record.inquiry_id}): ${error.message}`,
            { cause: error },
          );
        }
      },
      write: async (items) => {
        const written = await writeFeedback(db, feedbackRows(items));
        // Counted once PostgreSQL has them: a batch redelivered after this finds them stored and counts none.
        for (const { task, label_source: source } of written.labels) labelsStored.inc({ task, source });
        return { predictions: written.predictions, labels: written.labels.length };
      },
      describe: (batch) => `feedback: storing a batch of ${batch.records} predictions and labels`,
    },
    { log: deps.log },
  );
  return { ...implementation, metrics: Registry.merge([implementation.metrics!, registry]) };
}
