-- Model registry: every trained version, its stage, metrics, lineage, and every promotion
-- decision. Serving reads `versions` (stage = 'production') and the artifact directory only.
-- Names are unqualified: the migration runs with search_path set to the registry schema.

CREATE TABLE models (
    name        text PRIMARY KEY,
    task        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE versions (
    model                 text NOT NULL REFERENCES models (name),
    version               text NOT NULL,
    family                text NOT NULL,
    stage                 text NOT NULL CHECK (stage IN ('candidate', 'production', 'archived')),
    artifact_path         text NOT NULL,
    model_sha256          text NOT NULL,
    training_data_digest  text NOT NULL,
    test_digest           text NOT NULL,
    manifest              jsonb NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    stage_changed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, version)
);

-- At most one production version per model, enforced by the database itself.
CREATE UNIQUE INDEX versions_one_production ON versions (model) WHERE stage = 'production';

CREATE TABLE metrics (
    model        text NOT NULL,
    version      text NOT NULL,
    split        text NOT NULL,               -- 'test', 'validation'
    metric       text NOT NULL,               -- accuracy, macro_f1, ece, ece_uncalibrated, recall, oos_recall, ...
    class_label  text NOT NULL DEFAULT '',    -- '' for whole-set metrics
    value        double precision NOT NULL,
    PRIMARY KEY (model, version, split, metric, class_label),
    FOREIGN KEY (model, version) REFERENCES versions (model, version)
);

CREATE TABLE lineage (
    model              text NOT NULL,
    version            text NOT NULL,
    dataset            text NOT NULL,
    source_sha256      text NOT NULL,
    seed               integer NOT NULL,
    row_limit          integer,
    train_digest       text NOT NULL,
    validation_digest  text NOT NULL,
    test_digest        text NOT NULL,
    parent_version     text,                  -- production version when this one was trained
    PRIMARY KEY (model, version),
    FOREIGN KEY (model, version) REFERENCES versions (model, version)
);

CREATE TABLE decisions (
    id                  bigserial PRIMARY KEY,
    model               text NOT NULL REFERENCES models (name),
    action              text NOT NULL CHECK (action IN ('promoted', 'rejected', 'rolled_back')),
    candidate_version   text,
    production_version  text,                 -- production before the decision
    reason              text NOT NULL,
    numbers             jsonb NOT NULL,
    decided_at          timestamptz NOT NULL DEFAULT now()
);

-- Which version served when; rollback walks it backwards.
CREATE TABLE production_history (
    id          bigserial PRIMARY KEY,
    model       text NOT NULL,
    version     text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    ended_by    text CHECK (ended_by IN ('promotion', 'rollback')),
    FOREIGN KEY (model, version) REFERENCES versions (model, version)
);
