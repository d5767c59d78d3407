import pg from "pg";

/**
 * What `retrain` reads of the model registry (training/migrations): Python is its only writer,
 * so everything here only reads.
 */
export interface RegistryVersion {
  readonly model: string;
  readonly version: string;
  readonly stage: string;
  /** linear, encoder, ensemble, head: a retraining trains the production version's family. */
  readonly family: string;
  readonly created_at: Date;
  readonly stage_changed_at: Date;
}

export class RegistryReader {
  private readonly schema: string;

  constructor(
    private readonly pool: pg.Pool,
    schema: string,
  ) {
    this.schema = pg.escapeIdentifier(schema);
  }

  /** The model's version in `stage` (production and shadow are unique per model). */
  async inStage(model: string, stage: "production" | "shadow"): Promise<RegistryVersion | undefined> {
    const { rows } = await this.pool.query<RegistryVersion>(
      `SELECT model, version, stage, family, created_at, stage_changed_at FROM ${this.schema}.versions WHERE model = $1 AND stage = $2`,
      [model, stage],
    );
    return rows[0];
  }

  async version(model: string, version: string): Promise<RegistryVersion | undefined> {
    const { rows } = await this.pool.query<RegistryVersion>(
      `SELECT model, version, stage, family, created_at, stage_changed_at FROM ${this.schema}.versions WHERE model = $1 AND version = $2`,
      [model, version],
    );
    return rows[0];
  }

  /** Whether the registry knows the model (it has registered a version of it). */
  async known(model: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(`SELECT 1 FROM ${this.schema}.models WHERE name = $1`, [model]);
    return (rowCount ?? 0) > 0;
  }

  /** Every model's production version. */
  async productions(): Promise<RegistryVersion[]> {
    const { rows } = await this.pool.query<RegistryVersion>(
      `SELECT model, version, stage, family, created_at, stage_changed_at FROM ${this.schema}.versions WHERE stage = 'production' ORDER BY model`,
    );
    return rows;
  }

  async shadows(): Promise<RegistryVersion[]> {
    const { rows } = await this.pool.query<RegistryVersion>(
      `SELECT model, version, stage, family, created_at, stage_changed_at FROM ${this.schema}.versions WHERE stage = 'shadow' ORDER BY model`,
    );
    return rows;
  }

  /** The last decision about a version trained by job `jobId` (its lineage names the job), to learn where a dead job got to. */
  async lastDecisionOfJob(model: string, jobId: string): Promise<{ action: string; version: string; reason: string } | undefined> {
    const { rows } = await this.pool.query<{ action: string; version: string; reason: string }>(
      `SELECT action, candidate_version AS version, reason FROM ${this.schema}.decisions
        WHERE model = $1 AND lineage->>'job' = $2 ORDER BY id DESC LIMIT 1`,
      [model, jobId],
    );
    return rows[0];
  }
}

/** `name@version` as predictions and drift records name a model version. */
export function parseModelVersion(value: string): { model: string; version: string } | undefined {
  const at = value.indexOf("@");
  return at > 0 && at < value.length - 1 ? { model: value.slice(0, at), version: value.slice(at + 1) } : undefined;
}
