-- The durable state of route's join (processors/route/join.ts explains the rule).
-- Unqualified names: migrate() sets the search_path to the application schema.

-- One row per inquiry route has seen a part of: what the sweeper and the garbage collector scan.
CREATE TABLE route_joins (
  inquiry_id text PRIMARY KEY,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  -- Set when the sweeper produced a route.timeouts record for the join.
  timeout_requested_at timestamptz,
  -- Set when the trigger part was processed; the row is collected a day later.
  decided_at timestamptz
);

-- Only undecided joins are swept (for timeouts and abandonment); they are few at any moment.
CREATE INDEX route_joins_undecided ON route_joins (first_seen_at) WHERE decided_at IS NULL;
CREATE INDEX route_joins_decided ON route_joins (decided_at) WHERE decided_at IS NOT NULL;

-- Each part of an inquiry once; `arrival` orders them, and a redelivered part keeps its first arrival.
CREATE TABLE route_parts (
  inquiry_id text NOT NULL REFERENCES route_joins (inquiry_id) ON DELETE CASCADE,
  part text NOT NULL CHECK (part IN ('cleaned', 'classified', 'sentiment', 'urgency', 'timeout')),
  arrival bigint GENERATED ALWAYS AS IDENTITY,
  payload jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (inquiry_id, part)
);

-- Stores one part and returns the parts of its inquiry in arrival order, in one round trip.
-- The advisory lock serializes the parts of one inquiry across route instances (records of one
-- inquiry from different topics may be consumed by different instances), so arrivals of one
-- inquiry are numbered in the order their writers committed and every reader sees all earlier
-- parts. Each statement of this VOLATILE function takes a fresh snapshot, so the SELECT sees
-- what a concurrent writer committed while this call waited for the lock.
CREATE FUNCTION route_add_part(p_inquiry_id text, p_part text, p_payload jsonb)
RETURNS TABLE (part text)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('switchboard.route_join'), hashtext(p_inquiry_id));
  INSERT INTO route_joins (inquiry_id) VALUES (p_inquiry_id) ON CONFLICT DO NOTHING;
  INSERT INTO route_parts (inquiry_id, part, payload) VALUES (p_inquiry_id, p_part, p_payload) ON CONFLICT DO NOTHING;
  RETURN QUERY SELECT rp.part FROM route_parts rp WHERE rp.inquiry_id = p_inquiry_id ORDER BY rp.arrival;
END
$$;
