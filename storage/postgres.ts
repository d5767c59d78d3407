import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { Logger } from "pino";
import { postgresOptions, type ClientSecurity } from "../config/security.js";

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");

/** The application's tables live in one schema; the model registry has its own (`model_registry`). */
export const APP_SCHEMA = "switchboard";

export interface PoolOptions {
  /**
   * Commit without waiting for the disk; whoever sets this must call `syncToDisk` before it acts
   * on those commits being durable (e.g. before a Kafka transaction commits their offsets).
   */
  readonly deferDurability?: boolean;
}

/** Where PostgreSQL is, and its TLS: the endpoints' `databaseUrl` and `security`. */
export interface PostgresEndpoint {
  readonly databaseUrl: string;
  readonly security: ClientSecurity;
}

export function createPool(endpoint: PostgresEndpoint, applicationName: string, { deferDurability = false }: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    ...postgresOptions(endpoint),
    application_name: applicationName,
    max: 4,
    ...(deferDurability ? { options: "-c synchronous_commit=off" } : {}),
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", () => undefined);
  // Nor may a checked-out one (the pool listens on idle clients only): PostgreSQL restarting
  // under a client held between queries killed the retrain process with an unhandled 'error'.
  // The query under way rejects by itself, and a broken client is not returned to the pool.
  pool.on("connect", (client) => client.on("error", () => undefined));
  return pool;
}

/**
 * Makes every commit so far durable, in one disk sync: PostgreSQL's log is written in order, so a
 * synchronous commit (it needs a transaction id to write a commit record) flushes all before it.
 */
export async function syncToDisk(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SET LOCAL synchronous_commit = on");
    await client.query("SELECT pg_current_xact_id()");
    await client.query("COMMIT");
  } finally {
    client.release();
  }
}

/**
 * Applies `storage/migrations/*.sql` not applied yet, in name order, each in its own transaction
 * and under an advisory lock, so several processes starting at once migrate once.
 */
export async function migrate(pool: pg.Pool, log: Logger): Promise<string[]> {
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith(".sql")).sort();
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock(hashtext('switchboard.migrations'))");
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${APP_SCHEMA}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${APP_SCHEMA}.schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const applied = new Set((await client.query<{ name: string }>(`SELECT name FROM ${APP_SCHEMA}.schema_migrations`)).rows.map((r) => r.name));
    const pending = files.filter((f) => !applied.has(f));
    for (const file of pending) {
      try {
        await client.query("BEGIN");
        await client.query(`SET LOCAL search_path TO ${APP_SCHEMA}`);
        await client.query(readFileSync(path.join(MIGRATIONS_DIR, file), "utf8"));
        await client.query(`INSERT INTO ${APP_SCHEMA}.schema_migrations (name) VALUES ($1)`, [file]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK");
        throw new Error(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
      }
      log.info({ migration: file }, "migration applied");
    }
    return pending;
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext('switchboard.migrations'))").catch(() => undefined);
    client.release();
  }
}
