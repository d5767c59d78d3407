-- The agent console (connectors/api/console.ts, web/console/): agents' replies archived, the
-- review queue's index and change feed, and the `agent` scope of API keys.
-- Unqualified names: migrate() sets the search_path to the application schema.

-- Every reply an agent sent from the console (inquiries.replies), once: reply_id is unique per
-- reply, so a redelivered record writes nothing. An inquiry may get several replies. Only the
-- reply's own fields: the inquiry's envelope is in `inquiries`, and the text went to the customer
-- as the agent wrote it (it is not redacted: it says what the customer read).
CREATE TABLE agent_replies (
  reply_id     text PRIMARY KEY,
  inquiry_id   text NOT NULL,
  channel      text NOT NULL,
  text         text NOT NULL,
  agent        text NOT NULL,
  edited       boolean NOT NULL,
  sent_at      timestamptz NOT NULL,
  archived_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX agent_replies_inquiry ON agent_replies (inquiry_id, sent_at);
-- The console's live feed reads replies archived since its cursor.
CREATE INDEX agent_replies_archived_at ON agent_replies (archived_at);

-- When the archive last wrote each routing decision (not the decision's own time, which a late
-- record can carry from long ago): the console's live feed polls by it. Set by a trigger, so the
-- archive's upsert (sinks/archive-store.ts) needs no change; clock_timestamp(), not now(), so a
-- long transaction's rows are not dated at its start. Existing rows take the migration's time.
ALTER TABLE routing_decisions ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION routing_decisions_archived_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.archived_at := clock_timestamp();
  RETURN NEW;
END
$$;
CREATE TRIGGER routing_decisions_archived_at BEFORE INSERT OR UPDATE ON routing_decisions
  FOR EACH ROW EXECUTE FUNCTION routing_decisions_archived_at();

-- The review queue: decisions flagged for human review or escalated (a small fraction), by
-- priority; and its change feed.
CREATE INDEX routing_decisions_review_queue ON routing_decisions (priority_score DESC, routed_at)
  WHERE human_review OR escalated;
CREATE INDEX routing_decisions_review_changes ON routing_decisions (archived_at)
  WHERE human_review OR escalated;

-- Keys for the console: the review queue, agents' replies, the model page.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
  CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'label', 'agent']);
