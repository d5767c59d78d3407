-- The drift processor's durable state (processors/drift.ts, drift/store.ts). Written in one
-- PostgreSQL transaction per Kafka transaction, before it commits, so a restart resumes every
-- open window and alarm instead of starting them again.
-- Unqualified names: migrate() sets the search_path to the application schema.

-- One DriftMonitor per model version: its open window and its alarms (drift/monitor.ts toJSON).
CREATE TABLE drift_monitors (
  model       text PRIMARY KEY,          -- name@version
  task        text NOT NULL,
  state       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The last input offset whose effect the monitors hold, per partition. A record at or below it,
-- redelivered because its Kafka transaction aborted after this one committed, is not counted twice.
CREATE TABLE drift_offsets (
  topic        text NOT NULL,
  partition    integer NOT NULL,
  last_offset  bigint NOT NULL,
  PRIMARY KEY (topic, partition)
);

-- The drift records each input record caused, kept so that the redelivery of that record
-- produces them again (the first try's were in the aborted transaction). Old rows are deleted.
CREATE TABLE drift_outbox (
  topic          text NOT NULL,
  partition      integer NOT NULL,
  record_offset  bigint NOT NULL,
  seq            integer NOT NULL,
  record         jsonb NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition, record_offset, seq)
);
CREATE INDEX drift_outbox_created_at ON drift_outbox (created_at);
