import type pg from "pg";
import { TransientError, errorMessage } from "../../streams/errors.js";
import type { PartName } from "./join.js";

/** The join's durable state in PostgreSQL (storage/migrations/002_route_join.sql). */
export interface JoinStore {
  /** Stores a part (once: a redelivered part keeps its first arrival) and returns its inquiry's parts in arrival order. */
  addPart(inquiryId: string, part: PartName, payload: unknown): Promise<PartName[]>;
  /** Marks the join decided and returns the stored payloads of `parts`. */
  decide(inquiryId: string, parts: readonly PartName[]): Promise<Map<PartName, unknown>>;
  /**
   * Claims undecided joins first seen more than `timeoutMs` ago whose timeout was not requested
   * yet (at most `limit`), and hands them to `send`; the claim commits only if `send` succeeds,
   * so a failed send is retried by the next sweep. Instances sweeping at once claim disjoint joins.
   */
  requestTimeouts(
    timeoutMs: number,
    limit: number,
    send: (joins: readonly OverdueJoin[]) => Promise<void>,
  ): Promise<number>;
  /** Deletes joins decided more than `decidedMs` ago (at most `limit`); returns how many. */
  collectDecided(decidedMs: number, limit: number): Promise<number>;
  /** Deletes joins still undecided `abandonedMs` after they were first seen; returns their inquiry ids. */
  collectAbandoned(abandonedMs: number, limit: number): Promise<string[]>;
  countUndecided(): Promise<number>;
}

export interface OverdueJoin {
  readonly inquiryId: string;
  readonly firstSeenAt: number;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** `schema` is where migrate() created the tables (the application schema; tests use their own). */
export function createJoinStore(pool: pg.Pool, schema: string): JoinStore {
  if (!IDENTIFIER.test(schema)) throw new Error(`"${schema}" is not a plain PostgreSQL schema name`);
  const joins = `${schema}.route_joins`;
  const parts = `${schema}.route_parts`;

  const query = async <Row extends pg.QueryResultRow>(
    what: string,
    text: string,
    values: unknown[],
  ): Promise<Row[]> => {
    try {
      return (await pool.query<Row>(text, values)).rows;
    } catch (error) {
      throw new TransientError(`route join store: ${what} failed: ${errorMessage(error)}`, { cause: error });
    }
  };

  return {
    async addPart(inquiryId, part, payload) {
      const rows = await query<{ part: PartName }>(
        `storing part ${part} of inquiry ${inquiryId}`,
        `SELECT part FROM ${schema}.route_add_part($1, $2, $3::jsonb)`,
        [inquiryId, part, JSON.stringify(payload)],
      );
      return rows.map((r) => r.part);
    },

    async decide(inquiryId, wanted) {
      const rows = await query<{ part: PartName; payload: unknown }>(
        `reading the parts of inquiry ${inquiryId}`,
        `WITH decided AS (UPDATE ${joins} SET decided_at = now() WHERE inquiry_id = $1 AND decided_at IS NULL)
         SELECT part, payload FROM ${parts} WHERE inquiry_id = $1 AND part = ANY($2::text[])`,
        [inquiryId, wanted],
      );
      return new Map(rows.map((r) => [r.part, r.payload]));
    },

    async requestTimeouts(timeoutMs, limit, send) {
      const client = await pool.connect().catch((error: unknown) => {
        throw new TransientError(`route join store: connecting failed: ${errorMessage(error)}`, { cause: error });
      });
      try {
        await client.query("BEGIN");
        const { rows } = await client.query<{ inquiry_id: string; first_seen_at: Date }>(
          `UPDATE ${joins} SET timeout_requested_at = now()
           WHERE inquiry_id IN (
             SELECT inquiry_id FROM ${joins}
             WHERE decided_at IS NULL AND timeout_requested_at IS NULL AND first_seen_at < now() - make_interval(secs => $1)
             ORDER BY first_seen_at LIMIT $2
             FOR UPDATE SKIP LOCKED)
           RETURNING inquiry_id, first_seen_at`,
          [timeoutMs / 1000, limit],
        );
        if (rows.length > 0)
          await send(rows.map((r) => ({ inquiryId: r.inquiry_id, firstSeenAt: r.first_seen_at.getTime() })));
        await client.query("COMMIT");
        return rows.length;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    async collectDecided(decidedMs, limit) {
      const rows = await query(
        "collecting decided joins",
        `DELETE FROM ${joins} WHERE inquiry_id IN (
           SELECT inquiry_id FROM ${joins} WHERE decided_at < now() - make_interval(secs => $1) LIMIT $2)
         RETURNING 1`,
        [decidedMs / 1000, limit],
      );
      return rows.length;
    },

    async collectAbandoned(abandonedMs, limit) {
      const rows = await query<{ inquiry_id: string }>(
        "collecting abandoned joins",
        `DELETE FROM ${joins} WHERE inquiry_id IN (
           SELECT inquiry_id FROM ${joins} WHERE decided_at IS NULL AND first_seen_at < now() - make_interval(secs => $1) LIMIT $2)
         RETURNING inquiry_id`,
        [abandonedMs / 1000, limit],
      );
      return rows.map((r) => r.inquiry_id);
    },

    async countUndecided() {
      const [row] = await query<{ open: string }>(
        "counting open joins",
        `SELECT count(*) AS open FROM ${joins} WHERE decided_at IS NULL`,
        [],
      );
      return Number(row?.open ?? 0);
    },
  };
}
