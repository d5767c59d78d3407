-- The learning loop (issue 11): a version can score live traffic beside production (stage
-- `shadow`, at most one per model), and every step of a version's life is a decision row, which
-- the lifecycle relay (processors/retrain) turns into a models.lifecycle record in id order:
-- trained (registered), evaluated (the gate's numbers), then promoted, rejected or shadow_started.
-- lineage: what the version came from, string values only (trigger, drift record, base dataset,
-- team data file, feedback rows' count, digest and newest label time).

ALTER TABLE versions DROP CONSTRAINT versions_stage_check;
ALTER TABLE versions ADD CONSTRAINT versions_stage_check
    CHECK (stage IN ('candidate', 'shadow', 'production', 'archived'));
CREATE UNIQUE INDEX versions_one_shadow ON versions (model) WHERE stage = 'shadow';

ALTER TABLE decisions DROP CONSTRAINT decisions_action_check;
ALTER TABLE decisions ADD CONSTRAINT decisions_action_check
    CHECK (action IN ('trained', 'evaluated', 'shadow_started', 'promoted', 'rejected', 'rolled_back'));
ALTER TABLE decisions ADD COLUMN lineage jsonb NOT NULL DEFAULT '{}';
