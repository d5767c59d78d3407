import type pg from "pg";
import { APP_SCHEMA } from "../storage/postgres.js";

/** storage/migrations/007_retrain.sql. */
export type JobState = "queued" | "training" | "shadow" | "done" | "failed";
export type JobOutcome = "promoted" | "rejected" | "failed";
export type Trigger = "drift" | "labels" | "command" | "shadow";

export interface Job {
  readonly id: string;
  readonly model: string;
  readonly state: JobState;
  readonly outcome: JobOutcome | null;
  readonly trig: Trigger;
  readonly lineage: Readonly<Record<string, string>>;
  readonly version: string | null;
  readonly reason: string | null;
  readonly numbers: Readonly<Record<string, number>>;
  readonly owner: string | null;
  readonly not_before: Date;
  readonly requested_at: Date;
  readonly started_at: Date | null;
  readonly shadow_started_at: Date | null;
  readonly finished_at: Date | null;
}

export interface Request {
  /** Names the request's source, so that a redelivered one is recorded once. */
  readonly id: string;
  readonly model: string;
  readonly trigger: Exclude<Trigger, "shadow">;
  readonly reason: string;
  readonly requestedBy: string;
  readonly requestedAt: number;
  /** What the training CLI records in the new version's lineage (--trigger). */
  readonly lineage: Readonly<Record<string, string>>;
}

export type RequestResult = { readonly outcome: "queued" | "joined"; readonly job: Job } | { readonly outcome: "duplicate" };

const JOBS = `${APP_SCHEMA}.retrain_jobs`;
const REQUESTS = `${APP_SCHEMA}.retrain_requests`;
const OPEN = "('queued', 'training', 'shadow')";

/**
 * The jobs table of one registry: what `process` records and the job runner works from. Every
 * change is one statement or one transaction, so any instance may die between two of them.
 */
export class JobStore {
  constructor(
    private readonly pool: pg.Pool,
    /** The registry schema the jobs act on. */
    readonly registry: string,
  ) {}

  /**
   * Records a request: it joins the model's open job, or opens one. A drift or label request
   * waits out the cooldown after the model's last job; a command does not (and, joining a job
   * still waiting, lets it start).
   */
  async request(request: Request, cooldownMs: number): Promise<RequestResult> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      // One request at a time per model, so that two never both open a job (the unique index would refuse the second).
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`switchboard.retrain.${this.registry}.${request.model}`]);
      const seen = await client.query(`SELECT 1 FROM ${REQUESTS} WHERE request_id = $1`, [request.id]);
      if (seen.rowCount) {
        await client.query("ROLLBACK");
        return { outcome: "duplicate" };
      }
      const command = request.trigger === "command";
      let { rows } = await client.query<Job>(
        `UPDATE ${JOBS} SET not_before = CASE WHEN $3 AND state = 'queued' THEN least(not_before, now()) ELSE not_before END
          WHERE registry = $1 AND model = $2 AND state IN ${OPEN} RETURNING *`,
        [this.registry, request.model, command],
      );
      const outcome = rows.length > 0 ? "joined" : "queued";
      if (rows.length === 0) {
        ({ rows } = await client.query<Job>(
          `INSERT INTO ${JOBS} (registry, model, state, trig, lineage, not_before, requested_at)
           SELECT $1, $2, 'queued', $3, $4, CASE WHEN $5 THEN now() ELSE greatest(now(), max(finished_at) + $6 * interval '1 millisecond') END, to_timestamp($7 / 1000.0)
             FROM ${JOBS} WHERE registry = $1 AND model = $2
           RETURNING *`,
          [this.registry, request.model, request.trigger, request.lineage, command, cooldownMs, request.requestedAt],
        ));
      }
      const job = rows[0]!;
      await client.query(
        `INSERT INTO ${REQUESTS} (request_id, job_id, trig, reason, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, to_timestamp($6 / 1000.0))`,
        [request.id, job.id, request.trigger, request.reason, request.requestedBy, request.requestedAt],
      );
      await client.query("COMMIT");
      return { outcome, job };
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** The oldest queued job whose time has come, now `training` under `owner`; none if there is none. */
  async claim(owner: string): Promise<Job | undefined> {
    const { rows } = await this.pool.query<Job>(
      `UPDATE ${JOBS} SET state = 'training', owner = $2, heartbeat_at = now(), started_at = now()
        WHERE id = (SELECT id FROM ${JOBS} WHERE registry = $1 AND state = 'queued' AND not_before <= now()
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING *`,
      [this.registry, owner],
    );
    return rows[0];
  }

  /** Running jobs (training or shadow) whose owner has not marked them alive within `staleAfterMs`, now owned by `owner`. */
  async takeOverStale(owner: string, staleAfterMs: number): Promise<{ job: Job; previousOwner: string | null }[]> {
    const { rows } = await this.pool.query<Job & { previous_owner: string | null }>(
      `UPDATE ${JOBS} j SET owner = $2, heartbeat_at = now()
         FROM (SELECT id, owner AS previous_owner FROM ${JOBS}
                WHERE registry = $1 AND state IN ('training', 'shadow') AND owner IS DISTINCT FROM $2
                  AND (heartbeat_at IS NULL OR heartbeat_at < now() - $3 * interval '1 millisecond')
                FOR UPDATE SKIP LOCKED) stale
        WHERE j.id = stale.id
        RETURNING j.*, stale.previous_owner`,
      [this.registry, owner, staleAfterMs],
    );
    return rows.map(({ previous_owner, ...job }) => ({ job, previousOwner: previous_owner }));
  }

  /** Opens a job that watches a shadow version no open job watches (started by hand, or by a job that died). */
  async adoptShadow(owner: string, model: string, version: string, since: Date): Promise<Job | undefined> {
    const { rows } = await this.pool.query<Job>(
      `INSERT INTO ${JOBS} (registry, model, state, trig, lineage, version, owner, heartbeat_at, started_at, shadow_started_at)
       VALUES ($1, $2, 'shadow', 'shadow', '{}', $3, $4, now(), now(), $5)
       ON CONFLICT (registry, model) WHERE state IN ${OPEN} DO NOTHING RETURNING *`,
      [this.registry, model, version, owner, since],
    );
    return rows[0];
  }

  /** Marks the jobs `owner` runs alive. */
  async heartbeat(owner: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query(`UPDATE ${JOBS} SET heartbeat_at = now() WHERE id = ANY($1::bigint[]) AND owner = $2`, [ids, owner]);
  }

  async update(id: string, fields: { version?: string; reason?: string; numbers?: Readonly<Record<string, number>> }): Promise<void> {
    await this.pool.query(
      `UPDATE ${JOBS} SET version = coalesce($2, version), reason = coalesce($3, reason), numbers = coalesce($4, numbers) WHERE id = $1`,
      [id, fields.version ?? null, fields.reason ?? null, fields.numbers ?? null],
    );
  }

  async toShadow(id: string, version: string, reason: string): Promise<Job> {
    const { rows } = await this.pool.query<Job>(
      `UPDATE ${JOBS} SET state = 'shadow', version = $2, reason = $3, shadow_started_at = coalesce(shadow_started_at, now()) WHERE id = $1 RETURNING *`,
      [id, version, reason],
    );
    return rows[0]!;
  }

  /** Back to the queue (this process stops while training): the next start runs it again. */
  async requeue(id: string): Promise<void> {
    await this.pool.query(`UPDATE ${JOBS} SET state = 'queued', owner = NULL, heartbeat_at = NULL, started_at = NULL WHERE id = $1`, [id]);
  }

  async finish(id: string, outcome: JobOutcome, reason: string, numbers?: Readonly<Record<string, number>>): Promise<Job> {
    const { rows } = await this.pool.query<Job>(
      `UPDATE ${JOBS} SET state = $2, outcome = $3, reason = $4, numbers = coalesce($5, numbers), finished_at = now() WHERE id = $1 RETURNING *`,
      [id, outcome === "failed" ? "failed" : "done", outcome, reason, numbers ?? null],
    );
    return rows[0]!;
  }

  /** The model's open job, if any. */
  async open(model: string): Promise<Job | undefined> {
    const { rows } = await this.pool.query<Job>(`SELECT * FROM ${JOBS} WHERE registry = $1 AND model = $2 AND state IN ${OPEN}`, [this.registry, model]);
    return rows[0];
  }

  /** When the model's last job was requested: labels given before it were counted by that job's trigger already. */
  async lastRequestedAt(model: string): Promise<Date | undefined> {
    const { rows } = await this.pool.query<{ at: Date | null }>(`SELECT max(requested_at) AS at FROM ${JOBS} WHERE registry = $1 AND model = $2`, [
      this.registry,
      model,
    ]);
    return rows[0]?.at ?? undefined;
  }
}
