-- The feedback sink's store (sinks/feedback.ts): the learning loop's data, apart from the archive.
-- It consumes predictions.feedback alone, in its own consumer group, so it can be rebuilt by
-- replaying that topic without touching the archive, and training and live quality read it by
-- task, model and time rather than by inquiry.
-- Unqualified names: migrate() sets the search_path to the application schema.

-- One row per prediction (prediction_id: the inquiry and the task). A label repeats the fields of
-- the prediction it judges, so a label that arrives first makes the row, with predicted_at still
-- unknown; the prediction record then dates it. Only a strictly newer prediction replaces a row's
-- prediction (an inquiry reprocessed by a newer model version), so a replay changes nothing.
CREATE TABLE feedback_predictions (
  prediction_id   text PRIMARY KEY,
  inquiry_id      text NOT NULL,
  task            text NOT NULL,
  model           text NOT NULL,
  predicted_label text NOT NULL,
  confidence      double precision NOT NULL,
  input_digest    text NOT NULL,
  features        jsonb NOT NULL,
  predicted_at    timestamptz
);
CREATE INDEX feedback_predictions_inquiry ON feedback_predictions (inquiry_id);
CREATE INDEX feedback_predictions_model ON feedback_predictions (task, model, predicted_at);

-- Every label ever given, never updated: label_id is a digest of what the record says (prediction,
-- source, label, time), so a redelivered or replayed record is the same row and writes nothing.
-- judged_model and judged_label are the prediction the label judged when it was given, which may
-- differ from the row's current one once the inquiry is reprocessed.
CREATE TABLE labels (
  label_id      text PRIMARY KEY,
  prediction_id text NOT NULL,
  inquiry_id    text NOT NULL,
  task          text NOT NULL,
  label         text NOT NULL,
  label_source  text NOT NULL CHECK (label_source IN ('agent', 'outcome', 'customer')),
  labeled_at    timestamptz NOT NULL,
  judged_model  text NOT NULL,
  judged_label  text NOT NULL,
  recorded_at   timestamptz NOT NULL DEFAULT now(),
  -- The conflict rule's first key: an agent's label outranks a help-desk outcome, which outranks
  -- a customer's rating (see resolved_labels).
  precedence    smallint NOT NULL GENERATED ALWAYS AS (
    CASE label_source WHEN 'agent' THEN 3 WHEN 'outcome' THEN 2 ELSE 1 END
  ) STORED
);
CREATE INDEX labels_resolution ON labels (prediction_id, precedence DESC, labeled_at DESC, label_id);
CREATE INDEX labels_task_labeled_at ON labels (task, labeled_at);
CREATE INDEX labels_recorded_at ON labels (recorded_at);

-- The conflict rule: one label per prediction, the one of the highest precedence (agent, then
-- outcome, then customer), of those the latest given (labeled_at), ties broken by label_id so
-- the answer never depends on arrival order. So the latest agent label wins over every customer
-- and outcome label, whenever either came; without an agent label the latest outcome wins, and
-- a customer's rating counts only alone. disputed: the labels of the prediction do not all agree.
CREATE VIEW resolved_labels AS
SELECT DISTINCT ON (prediction_id)
  prediction_id,
  inquiry_id,
  task,
  label,
  label_source,
  labeled_at,
  judged_model,
  judged_label,
  label_id,
  count(*) OVER same_prediction AS label_count,
  min(label) OVER same_prediction IS DISTINCT FROM max(label) OVER same_prediction AS disputed
FROM labels
WINDOW same_prediction AS (PARTITION BY prediction_id)
ORDER BY prediction_id, precedence DESC, labeled_at DESC, label_id;

-- What training and live quality read: each labelled prediction with its resolved label.
-- correct compares the resolved label with the prediction it judged (model@version at the time).
CREATE VIEW labelled_predictions AS
SELECT
  p.prediction_id,
  p.inquiry_id,
  p.task,
  p.model,
  p.predicted_label,
  p.confidence,
  p.input_digest,
  p.features,
  p.predicted_at,
  r.label,
  r.label_source,
  r.labeled_at,
  r.judged_model,
  r.judged_label,
  r.judged_label = r.label AS correct,
  r.label_count,
  r.disputed
FROM feedback_predictions p
JOIN resolved_labels r USING (prediction_id);
