import type { Kafka, Producer } from "kafkajs";
import pg from "pg";
import type { Logger } from "pino";
import type { LifecycleEvent, ModelLifecycle } from "../schemas/types.generated.js";
import { LifecycleEventValues } from "../schemas/types.generated.js";
import { APP_SCHEMA } from "../storage/postgres.js";
import type { TopicCodec } from "../streams/codec.js";
import type { RetrainMetrics } from "./metrics.js";

/** The stage a version is in right after each event (the registry's stage may have moved on since). */
const STAGE_AFTER: { readonly [E in LifecycleEvent]: string } = {
  trained: "candidate",
  evaluated: "candidate",
  shadow_started: "shadow",
  promoted: "production",
  rejected: "archived",
  rolled_back: "production",
};

/** Decisions produced per pass. */
const BATCH = 500;

/**
 * A gap in the decision ids younger than this is a transaction still committing (ids are taken
 * in order, commits land in any order): the pass stops before it. An older gap is an id of a
 * transaction that rolled back, and is passed over.
 */
const GAP_SETTLE_MS = 10_000;

interface DecisionRow {
  id: string;
  model: string;
  task: string;
  action: string;
  candidate_version: string | null;
  reason: string;
  numbers: Record<string, unknown>;
  lineage: Record<string, unknown>;
  decided_at: Date;
  artifact_path: string | null;
}

export interface LifecycleRelay {
  /** One pass: relays the decisions after the stored position; resolves to how many it produced. */
  run(): Promise<number>;
  close(): Promise<void>;
}

export interface RelayOptions {
  readonly pool: pg.Pool;
  readonly registrySchema: string;
  readonly kafka: Kafka;
  readonly codec: TopicCodec;
  readonly topic: string;
  readonly metrics: RetrainMetrics;
  readonly log: Logger;
}

/** A decision row as its models.lifecycle record (the contract: /tmp/loop-contract.md, issue 11). */
export function lifecycleRecord(row: DecisionRow): ModelLifecycle {
  const event = row.action as LifecycleEvent;
  const metrics: Record<string, number> = {};
  for (const [key, value] of Object.entries(row.numbers ?? {})) if (typeof value === "number" && Number.isFinite(value)) metrics[key] = value;
  const lineage: Record<string, string> = {};
  for (const [key, value] of Object.entries(row.lineage ?? {})) lineage[key] = typeof value === "string" ? value : JSON.stringify(value);
  return {
    task: row.task,
    model: `${row.model}@${row.candidate_version ?? ""}`,
    event,
    stage: STAGE_AFTER[event],
    metrics,
    artifact_uri: row.artifact_path ?? "",
    reason: row.reason,
    occurred_at: row.decided_at.getTime(),
    lineage,
  };
}

/**
 * The registry's outbox to models.lifecycle: the decisions with id past the stored position, in
 * id order, one record each (key: the task), acknowledged by every in-sync replica before the
 * position moves. At least once: a crash between the two relays a batch again. The position's
 * row is locked for the pass, so a second instance skips the pass instead of relaying twice.
 */
export function createLifecycleRelay(options: RelayOptions): LifecycleRelay {
  const { pool, kafka, codec, topic, metrics, log } = options;
  const registry = options.registrySchema;
  const schema = pg.escapeIdentifier(registry);
  let producer: Producer | undefined;
  const connected = async (): Promise<Producer> => {
    if (!producer) {
      const created = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 } });
      await created.connect();
      producer = created;
    }
    return producer;
  };
  // A send that failed may still have been written; a fresh producer (new id) keeps the next from being taken for its duplicate.
  const retire = async () => {
    const failed = producer;
    producer = undefined;
    await failed?.disconnect().catch(() => undefined);
  };
  let missingRegistryLogged = false;

  const lag = async () => {
    const { rows } = await pool.query<{ pending: number; oldest: Date | null }>(
      `SELECT count(*)::int AS pending, min(d.decided_at) AS oldest FROM ${schema}.decisions d
        WHERE d.id > coalesce((SELECT position FROM ${APP_SCHEMA}.lifecycle_relay WHERE registry = $1), 0)`,
      [registry],
    );
    const { pending, oldest } = rows[0]!;
    metrics.relayPending.set(pending);
    metrics.relayLagSeconds.set(oldest ? Math.max(0, (Date.now() - oldest.getTime()) / 1000) : 0);
  };

  return {
    async run() {
      const client = await pool.connect();
      let produced = 0;
      try {
        await client.query("BEGIN");
        await client.query(`INSERT INTO ${APP_SCHEMA}.lifecycle_relay (registry) VALUES ($1) ON CONFLICT DO NOTHING`, [registry]);
        const held = await client.query<{ position: string }>(
          `SELECT position FROM ${APP_SCHEMA}.lifecycle_relay WHERE registry = $1 FOR UPDATE SKIP LOCKED`,
          [registry],
        );
        if (!held.rows[0]) {
          await client.query("ROLLBACK");
          return 0;
        }
        let position = BigInt(held.rows[0].position);
        let rows: DecisionRow[];
        try {
          ({ rows } = await client.query<DecisionRow>(
            `SELECT d.id, d.model, m.task, d.action, d.candidate_version, d.reason, d.numbers, d.lineage, d.decided_at, v.artifact_path
               FROM ${schema}.decisions d
               JOIN ${schema}.models m ON m.name = d.model
               LEFT JOIN ${schema}.versions v ON v.model = d.model AND v.version = d.candidate_version
              WHERE d.id > $1 ORDER BY d.id LIMIT ${BATCH}`,
            [position.toString()],
          ));
        } catch (error) {
          // 42P01 undefined table, 42703 undefined column, 3F000 undefined schema: the registry is not (fully) migrated yet.
          const code = (error as { code?: string }).code;
          if (code === "42P01" || code === "42703" || code === "3F000") {
            if (!missingRegistryLogged) log.warn({ registry, error: (error as Error).message }, "lifecycle relay: the registry has no decisions table to relay yet; run `python -m training migrate`");
            missingRegistryLogged = true;
            await client.query("ROLLBACK");
            return 0;
          }
          throw error;
        }
        missingRegistryLogged = false;
        const ready: DecisionRow[] = [];
        for (const row of rows) {
          const id = BigInt(row.id);
          if (id !== position + 1n && Date.now() - row.decided_at.getTime() < GAP_SETTLE_MS) break;
          if (!(LifecycleEventValues as readonly string[]).includes(row.action)) {
            throw new Error(`registry decision ${row.id} of ${row.model} has action ${row.action}, which models.lifecycle has no event for`);
          }
          ready.push(row);
          position = id;
        }
        if (ready.length > 0) {
          const messages = ready.map((row) => {
            const record = lifecycleRecord(row);
            return { key: record.task, value: codec.encode(topic, record), headers: { "decision-id": row.id, registry } };
          });
          try {
            await (await connected()).send({ topic, acks: -1, messages });
          } catch (error) {
            await retire();
            throw new Error(`lifecycle relay: producing ${messages.length} record(s) to ${topic} failed: ${(error as Error).message}`, { cause: error });
          }
          await client.query(`UPDATE ${APP_SCHEMA}.lifecycle_relay SET position = $2, updated_at = now() WHERE registry = $1`, [registry, position.toString()]);
          produced = ready.length;
          for (const row of ready) metrics.relayed.inc({ event: row.action });
          log.info(
            { registry, records: produced, last: position.toString(), events: ready.map((r) => `${r.model}@${r.candidate_version ?? ""} ${r.action}`) },
            "relayed registry decisions to models.lifecycle",
          );
        }
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
      await lag().catch(() => undefined);
      return produced;
    },

    async close() {
      await retire();
    },
  };
}
