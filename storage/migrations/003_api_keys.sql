-- API keys of the REST API (connectors/api/keys.ts). Only a SHA-256 digest of each secret is
-- stored: the secret is shown once, when the key is created, and cannot be recovered from here.
-- A revoked key stays listed (who had it, when it went) and never authenticates again.
-- Unqualified names: migrate() sets the search_path to the application schema.

CREATE TABLE api_keys (
  id            text PRIMARY KEY,
  name          text NOT NULL,
  secret_sha256 bytea NOT NULL,
  scopes        text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'label']),
  created_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz,
  last_used_at  timestamptz
);
CREATE INDEX api_keys_name ON api_keys (name);
