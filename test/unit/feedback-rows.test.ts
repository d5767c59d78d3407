import { describe, expect, it } from "vitest";
import type { PredictionFeedback } from "../../schemas/types.generated.js";
import { feedbackItem, feedbackRows, labelId } from "../../sinks/feedback.js";

const T0 = Date.UTC(2025, 4, 12, 9, 30);

const prediction = (overrides: Partial<PredictionFeedback> = {}): PredictionFeedback => ({
  prediction_id: "p-1",
  inquiry_id: "inq-1",
  task: "intent",
  model: "intent-linear@3",
  input_digest: "ab12",
  features: { length: 40, language: "en", values: {} },
  predicted_label: "track_order",
  confidence: 0.8,
  label: null,
  label_source: "model",
  occurred_at: T0,
  stage: "production",
  ...overrides,
});
const label = (source: "agent" | "customer" | "outcome", value: string, at: number, overrides: Partial<PredictionFeedback> = {}) =>
  prediction({ label: value, label_source: source, occurred_at: at, ...overrides });

/** The batch collapse of the feedback sink: what one flush writes, for records in the order added. */
const rows = (records: readonly PredictionFeedback[]) => feedbackRows(records.map(feedbackItem));

describe("feedback sink batch", () => {
  it("a label's copy of its prediction makes the row until the prediction itself comes, whichever is first in the batch", () => {
    for (const order of [
      [label("agent", "cancel_order", T0 + 5), prediction()],
      [prediction(), label("agent", "cancel_order", T0 + 5)],
    ]) {
      const { predictions, labels } = rows(order);
      expect(predictions).toEqual([expect.objectContaining({ prediction_id: "p-1", predicted_at: new Date(T0).toISOString() })]);
      expect(labels.map((l) => [l.label_source, l.label, l.judged_label])).toEqual([["agent", "cancel_order", "track_order"]]);
    }
    expect(rows([label("outcome", "track_order", T0 + 5)]).predictions).toEqual([expect.objectContaining({ predicted_at: null })]);
  });

  it("keeps the strictly newer prediction, the first on a tie, and never a label's copy over a prediction", () => {
    const newer = prediction({ model: "intent-linear@4", occurred_at: T0 + 100 });
    const tie = prediction({ model: "intent-linear@5", occurred_at: T0 + 100 });
    const copy = label("customer", "track_order", T0 + 200, { model: "intent-linear@9" });
    expect(rows([prediction(), newer, tie, copy]).predictions.map((p) => p.model)).toEqual(["intent-linear@4"]);
    expect(rows([copy, tie, newer, prediction()]).predictions.map((p) => p.model)).toEqual(["intent-linear@5"]);
  });

  it("keeps every distinct label and each label once, however often it is added", () => {
    const agent = label("agent", "cancel_order", T0 + 5);
    const later = label("agent", "change_order", T0 + 6);
    const customer = label("customer", "cancel_order", T0 + 5);
    const { labels } = rows([agent, customer, agent, later, customer]);
    expect(labels.map((l) => [l.label_source, l.label])).toEqual([
      ["agent", "cancel_order"],
      ["customer", "cancel_order"],
      ["agent", "change_order"],
    ]);
  });

  it("names a label by what it says: the same record is the same label; another source, label or time is another", () => {
    const base = label("agent", "cancel_order", T0);
    const otherPrediction: PredictionFeedback = { ...base, model: "intent-linear@4", confidence: 0.1 };
    expect(labelId(base)).toBe(labelId(otherPrediction));
    for (const other of [{ label_source: "outcome" as const }, { label: "change_order" }, { occurred_at: T0 + 1 }, { prediction_id: "p-2" }]) {
      expect(labelId({ ...base, ...other })).not.toBe(labelId(base));
    }
  });
});
