-- The retrain processor's durable state (processors/retrain.ts, retrain/). Unqualified names:
-- migrate() sets the search_path to the application schema.
-- `registry` is the registry schema a row acts on (SWITCHBOARD_REGISTRY_SCHEMA, `model_registry`),
-- so that a test's own registry has its own jobs and relay position.

-- One row per retraining job. process() only records a request; the job runner (one job per
-- model at a time, enforced below) takes queued rows in order. A request that comes while a job
-- of its model is open joins that job, so a drift storm makes one job, not many.
CREATE TABLE retrain_jobs (
  id                 bigserial PRIMARY KEY,
  registry           text NOT NULL,
  model              text NOT NULL,
  -- queued -> training -> shadow -> done | failed (done: promoted or rejected, see outcome)
  state              text NOT NULL CHECK (state IN ('queued', 'training', 'shadow', 'done', 'failed')),
  outcome            text CHECK (outcome IN ('promoted', 'rejected', 'failed')),
  -- What opened the job: a drift record, enough new labels, a command, or a shadow version found
  -- in the registry that no job watched (started by hand, or by a job whose process died).
  trig               text NOT NULL CHECK (trig IN ('drift', 'labels', 'command', 'shadow')),
  -- The training CLI's --trigger (string values), recorded in the version's lineage.
  lineage            jsonb NOT NULL DEFAULT '{}',
  -- Earliest start: the cooldown after the model's previous job (drift and label triggers).
  not_before         timestamptz NOT NULL DEFAULT now(),
  version            text,
  reason             text,
  numbers            jsonb NOT NULL DEFAULT '{}',
  -- The process running the job and when it last said so: a job whose owner went quiet is resumed.
  owner              text,
  heartbeat_at       timestamptz,
  requested_at       timestamptz NOT NULL DEFAULT now(),
  started_at         timestamptz,
  shadow_started_at  timestamptz,
  finished_at        timestamptz
);
CREATE UNIQUE INDEX retrain_jobs_one_open ON retrain_jobs (registry, model) WHERE state IN ('queued', 'training', 'shadow');
CREATE INDEX retrain_jobs_model ON retrain_jobs (registry, model, id);

-- Every request, once: request_id names its source (a Kafka record's topic, partition, offset and
-- time), so a record redelivered after an aborted transaction joins nothing twice.
CREATE TABLE retrain_requests (
  request_id    text PRIMARY KEY,
  job_id        bigint NOT NULL REFERENCES retrain_jobs (id),
  trig          text NOT NULL,
  reason        text NOT NULL,
  requested_by  text NOT NULL,
  requested_at  timestamptz NOT NULL,
  recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retrain_requests_job ON retrain_requests (job_id);

-- The lifecycle relay's position in model_registry.decisions: the last id produced to
-- models.lifecycle. The row is locked while a batch is produced, so two instances never relay at once.
CREATE TABLE lifecycle_relay (
  registry     text PRIMARY KEY,
  position     bigint NOT NULL DEFAULT 0,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
