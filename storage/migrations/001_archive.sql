-- The sinks' archive of the pipeline: each table holds the latest state of one kind of record,
-- keyed as the topics are, so a redelivered record finds its row and writes nothing twice.
-- Only redacted text is stored; a customer appears by id and tier, never by email or name.
-- No foreign keys between the tables: the archive consumes its four topics independently, so a
-- routing decision or a prediction may be written before the inquiry it belongs to.
-- Unqualified names: migrate() sets the search_path to the application schema.

CREATE TABLE inquiries (
  inquiry_id          text PRIMARY KEY,
  channel             text NOT NULL,
  source_id           text NOT NULL,
  thread_id           text,
  customer_id         text,
  customer_tier       text,
  subject             text,
  text                text NOT NULL,
  language            text NOT NULL,
  language_confidence double precision NOT NULL,
  redaction_count     integer NOT NULL,
  entities            jsonb NOT NULL DEFAULT '[]',
  received_at         timestamptz NOT NULL,
  cleaned_at          timestamptz NOT NULL
);
CREATE INDEX inquiries_received_at ON inquiries (received_at);
CREATE INDEX inquiries_customer ON inquiries (customer_id, received_at) WHERE customer_id IS NOT NULL;

-- One row per prediction; the labels that join it later (same prediction_id) fill label,
-- label_source and labeled_at. A label can arrive before its prediction: the row then starts from
-- the label record (which repeats the prediction's fields) with predicted_at still unknown.
CREATE TABLE predictions (
  prediction_id   text PRIMARY KEY,
  inquiry_id      text NOT NULL,
  task            text NOT NULL,
  model           text NOT NULL,
  predicted_label text NOT NULL,
  confidence      double precision NOT NULL,
  input_digest    text NOT NULL,
  features        jsonb NOT NULL,
  predicted_at    timestamptz,
  label           text,
  label_source    text NOT NULL DEFAULT 'model',
  labeled_at      timestamptz,
  CONSTRAINT predictions_label_has_source CHECK ((label IS NULL) = (label_source = 'model')),
  CONSTRAINT predictions_label_has_time CHECK ((label IS NULL) = (labeled_at IS NULL))
);
CREATE INDEX predictions_inquiry ON predictions (inquiry_id);
CREATE INDEX predictions_task_predicted_at ON predictions (task, predicted_at);
CREATE INDEX predictions_task_labeled_at ON predictions (task, labeled_at) WHERE label IS NOT NULL;

CREATE TABLE routing_decisions (
  inquiry_id        text PRIMARY KEY,
  department        text NOT NULL,
  queue             text NOT NULL,
  priority_score    double precision NOT NULL,
  escalated         boolean NOT NULL,
  escalation_reason text,
  human_review      boolean NOT NULL,
  review_reasons    text[] NOT NULL DEFAULT '{}',
  missing_parts     text[] NOT NULL DEFAULT '{}',
  intent            text,
  category          text,
  sentiment         text,
  urgency           text,
  routed_at         timestamptz NOT NULL
);
CREATE INDEX routing_decisions_department ON routing_decisions (department, routed_at);
-- The human-review queue: a small fraction of decisions, hence a partial index.
CREATE INDEX routing_decisions_human_review ON routing_decisions (routed_at) WHERE human_review;

CREATE TABLE responses (
  inquiry_id   text PRIMARY KEY,
  strategy     text NOT NULL,
  text         text NOT NULL,
  sources      text[] NOT NULL DEFAULT '{}',
  department   text NOT NULL,
  model        text,
  responded_at timestamptz NOT NULL
);
CREATE INDEX responses_strategy ON responses (strategy, responded_at);
