import type pg from "pg";
import type { ModelDrift } from "../schemas/types.generated.js";

/**
 * The drift processor's state in PostgreSQL (storage/migrations/008_drift.sql): each model
 * version's monitor, the input offsets those monitors have counted, and the drift records each
 * counted input caused. `save` writes all three in one PostgreSQL transaction, before the Kafka
 * transaction of the same records commits. If that Kafka transaction then aborts, its records
 * come again: those at or below the saved offsets are not counted twice, and the drift records
 * they caused are produced again from the outbox, so every drift record is committed once.
 */

/** Where one input record sits. */
export interface RecordPosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
}

export interface SavedMonitor {
  readonly model: string;
  readonly task: string;
  readonly state: unknown;
}

export interface DriftState {
  readonly monitors: readonly SavedMonitor[];
  /** `topic:partition` → last counted offset. */
  readonly offsets: ReadonlyMap<string, bigint>;
}

/** What one checkpoint saves: the monitors changed, the last offset per partition, the records caused. */
export interface DriftChanges {
  readonly monitors: readonly SavedMonitor[];
  readonly offsets: ReadonlyMap<string, RecordPosition>;
  readonly outbox: readonly { readonly position: RecordPosition; readonly records: readonly ModelDrift[] }[];
}

/** Outbox rows older than this are deleted: their Kafka transaction committed long ago or never will. */
const OUTBOX_RETENTION = "7 days";

export const partitionKey = (topic: string, partition: number) => `${topic}:${partition}`;

export class DriftStore {
  constructor(private readonly pool: pg.Pool) {}

  async load(): Promise<DriftState> {
    const monitors = await this.pool.query<{ model: string; task: string; state: unknown }>(
      "SELECT model, task, state FROM switchboard.drift_monitors",
    );
    const offsets = await this.pool.query<{ topic: string; partition: number; last_offset: string }>(
      "SELECT topic, partition, last_offset FROM switchboard.drift_offsets",
    );
    return {
      monitors: monitors.rows,
      offsets: new Map(offsets.rows.map((r) => [partitionKey(r.topic, r.partition), BigInt(r.last_offset)])),
    };
  }

  /** The drift records a counted input caused, for its redelivery. */
  async outboxOf(position: RecordPosition): Promise<ModelDrift[]> {
    const { rows } = await this.pool.query<{ record: ModelDrift }>(
      `SELECT record FROM switchboard.drift_outbox
        WHERE topic = $1 AND partition = $2 AND record_offset = $3 ORDER BY seq`,
      [position.topic, position.partition, position.offset.toString()],
    );
    return rows.map((r) => r.record);
  }

  async save(changes: DriftChanges): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      for (const monitor of changes.monitors) {
        await client.query(
          `INSERT INTO switchboard.drift_monitors (model, task, state, updated_at) VALUES ($1, $2, $3, now())
           ON CONFLICT (model) DO UPDATE SET state = EXCLUDED.state, updated_at = now()`,
          [monitor.model, monitor.task, JSON.stringify(monitor.state)],
        );
      }
      for (const position of changes.offsets.values()) {
        await client.query(
          `INSERT INTO switchboard.drift_offsets (topic, partition, last_offset) VALUES ($1, $2, $3)
           ON CONFLICT (topic, partition) DO UPDATE SET last_offset = GREATEST(drift_offsets.last_offset, EXCLUDED.last_offset)`,
          [position.topic, position.partition, position.offset.toString()],
        );
      }
      for (const { position, records } of changes.outbox) {
        for (const [seq, record] of records.entries()) {
          await client.query(
            `INSERT INTO switchboard.drift_outbox (topic, partition, record_offset, seq, record) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING`,
            [position.topic, position.partition, position.offset.toString(), seq, JSON.stringify(record)],
          );
        }
      }
      if (changes.outbox.length > 0) {
        await client.query(`DELETE FROM switchboard.drift_outbox WHERE created_at < now() - interval '${OUTBOX_RETENTION}'`);
      }
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw new Error(`cannot save the drift state: ${(error as Error).message}`, { cause: error });
    } finally {
      client.release();
    }
  }
}
