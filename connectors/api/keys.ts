import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type pg from "pg";
import { APP_SCHEMA } from "../../storage/postgres.js";

/**
 * API keys (storage/migrations/003_api_keys.sql). A key is `sb_<id>_<secret>`: the id finds the
 * row, the secret (256 random bits) is checked against its stored SHA-256 digest in constant
 * time. A slow password hash buys nothing for a secret that cannot be guessed, and would cost
 * every request.
 */

/**
 * What a key may do: send inquiries, read them back (status, search), give human labels, work
 * the agent console (review queue, replies to customers, the model page).
 */
export const SCOPES = ["ingest", "read", "label", "agent"] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

const TOKEN = /^sb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const digest = (secret: string) => createHash("sha256").update(secret).digest();

interface KeyRow {
  id: string;
  name: string;
  scopes: Scope[];
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const toKey = (row: KeyRow): ApiKey => ({
  id: row.id,
  name: row.name,
  scopes: row.scopes,
  createdAt: row.created_at,
  revokedAt: row.revoked_at,
  lastUsedAt: row.last_used_at,
});

export function parseScopes(text: string): Scope[] {
  const scopes = [...new Set(text.split(",").map((s) => s.trim()).filter(Boolean))];
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || unknown.length > 0) {
    throw new Error(`scopes must be a comma-separated list of ${SCOPES.join(", ")}${unknown.length ? `; unknown: ${unknown.join(", ")}` : ""}`);
  }
  return scopes as Scope[];
}

/** Creates a key; the returned `token` is the only time its secret exists outside the caller. */
export async function createApiKey(pool: pg.Pool, name: string, scopes: readonly Scope[]): Promise<{ key: ApiKey; token: string }> {
  if (name.trim() === "") throw new Error("an API key needs a name (who or what uses it)");
  const id = randomBytes(6).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  const { rows } = await pool.query<KeyRow>(
    `INSERT INTO ${APP_SCHEMA}.api_keys (id, name, secret_sha256, scopes) VALUES ($1, $2, $3, $4)
     RETURNING id, name, scopes, created_at, revoked_at, last_used_at`,
    [id, name.trim(), digest(secret), scopes],
  );
  return { key: toKey(rows[0]!), token: `sb_${id}_${secret}` };
}

export async function listApiKeys(pool: pg.Pool): Promise<ApiKey[]> {
  const { rows } = await pool.query<KeyRow>(
    `SELECT id, name, scopes, created_at, revoked_at, last_used_at FROM ${APP_SCHEMA}.api_keys ORDER BY created_at, id`,
  );
  return rows.map(toKey);
}

/** Revokes a key; false when there is no such key or it was revoked already. */
export async function revokeApiKey(pool: pg.Pool, id: string): Promise<boolean> {
  const { rowCount } = await pool.query(`UPDATE ${APP_SCHEMA}.api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, [id]);
  return rowCount === 1;
}

/** The live key a token names, or undefined for a malformed, unknown, wrong or revoked one. */
export async function lookUpApiKey(pool: pg.Pool, token: string): Promise<ApiKey | undefined> {
  const match = TOKEN.exec(token);
  if (!match) return undefined;
  const { rows } = await pool.query<KeyRow & { secret_sha256: Buffer }>(
    `SELECT id, name, scopes, created_at, revoked_at, last_used_at, secret_sha256 FROM ${APP_SCHEMA}.api_keys WHERE id = $1`,
    [match[1]],
  );
  const row = rows[0];
  if (!row || row.revoked_at !== null || !timingSafeEqual(row.secret_sha256, digest(match[2]!))) return undefined;
  return toKey(row);
}

/** The live key with this id (a console session names its key by id), or undefined for an unknown or revoked one. */
export async function lookUpApiKeyById(pool: pg.Pool, id: string): Promise<ApiKey | undefined> {
  const { rows } = await pool.query<KeyRow>(
    `SELECT id, name, scopes, created_at, revoked_at, last_used_at FROM ${APP_SCHEMA}.api_keys WHERE id = $1 AND revoked_at IS NULL`,
    [id],
  );
  return rows[0] && toKey(rows[0]);
}

export interface KeyVerifier {
  /** The key a request's token names, from a cache of at most `cacheMs` age; throws when PostgreSQL cannot answer. */
  verify(token: string): Promise<ApiKey | undefined>;
  /** The live key with this id (a console session's), cached the same way: a revocation ends its sessions within `cacheMs`. */
  byId(id: string): Promise<ApiKey | undefined>;
  /** Waits for the last-use stamps still being written, so the pool can be closed after. */
  settle(): Promise<void>;
}

const MAX_CACHED = 10_000;

/**
 * Verifies tokens against PostgreSQL and remembers the answer (valid or not) for `cacheMs`, so a
 * request costs no database round trip and a flood of bad tokens no more than one per token and
 * period. A revocation therefore takes effect within `cacheMs`. Each verification that reaches
 * the database also stamps the key's last use.
 */
export function createKeyVerifier(pool: pg.Pool, cacheMs: number, onStampFailure: (error: unknown) => void): KeyVerifier {
  const cache = new Map<string, { key: ApiKey | undefined; until: number }>();
  const stamping = new Set<Promise<void>>();
  const cached = async (entry: string, lookUp: () => Promise<ApiKey | undefined>) => {
    const now = Date.now();
    const hit = cache.get(entry);
    if (hit && hit.until > now) return { key: hit.key, fresh: false };
    const key = await lookUp();
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(entry, { key, until: now + cacheMs });
    return { key, fresh: true };
  };
  return {
    // Ids are 12 hex digits and tokens start with sb_: the two kinds of entry never collide.
    byId: async (id) => (await cached(`id:${id}`, () => lookUpApiKeyById(pool, id))).key,
    async verify(token) {
      const { key, fresh } = await cached(token, () => lookUpApiKey(pool, token));
      if (key && fresh) {
        // Off the request's path: the answer does not wait for the stamp.
        const stamp: Promise<void> = pool
          .query(`UPDATE ${APP_SCHEMA}.api_keys SET last_used_at = now() WHERE id = $1`, [key.id])
          .then(() => undefined, onStampFailure)
          .finally(() => stamping.delete(stamp));
        stamping.add(stamp);
      }
      return key;
    },
    async settle() {
      await Promise.all(stamping);
    },
  };
}

/**
 * A key with every scope for the person running the local stack, kept in `file` (mode 600) so
 * that `switchboard up` can show it on every start: the one in the file while it still works
 * (given the scopes added since it was made, e.g. `agent` for the console), else a new one.
 * Returns the token and whether it was created now.
 */
export async function ensureDemoApiKey(pool: pg.Pool, file: string): Promise<{ token: string; created: boolean }> {
  const existing = await readFile(file, "utf8").then(
    (text) => text.trim(),
    () => undefined,
  );
  const key = existing ? await lookUpApiKey(pool, existing) : undefined;
  if (existing && key) {
    if (SCOPES.some((scope) => !key.scopes.includes(scope))) {
      await pool.query(`UPDATE ${APP_SCHEMA}.api_keys SET scopes = $2 WHERE id = $1`, [key.id, [...SCOPES]]);
    }
    return { token: existing, created: false };
  }
  const { token } = await createApiKey(pool, "local demo", SCOPES);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return { token, created: true };
}
