import pg from "pg";
import { Gauge, type Registry } from "prom-client";
import { APP_SCHEMA } from "../storage/postgres.js";

/**
 * The agents' queues as Prometheus gauges, for the SLA alert (QueueSLABreach): per department and
 * queue, the inquiries waiting for an agent and the age of the oldest. Waiting is what the agent
 * console's review queue lists (connectors/api/review.ts): a routing decision sent to human review
 * or escalated with no agent reply archived yet. Refreshed from PostgreSQL (what the archive sink
 * wrote) by the drift processor on the live-quality schedule (`SWITCHBOARD_QUALITY_REFRESH_MS`).
 */
export type QueueMetrics = ReturnType<typeof createQueueMetrics>;

export function createQueueMetrics(registry: Registry) {
  const labelNames = ["department", "queue"] as const;
  return {
    open: new Gauge({
      name: "switchboard_queue_open_inquiries",
      help: "Inquiries waiting for an agent (sent to review or escalated, no agent reply yet), per department and queue, as of the last refresh",
      labelNames,
      registers: [registry],
    }),
    oldestSeconds: new Gauge({
      name: "switchboard_queue_oldest_open_seconds",
      help: "Age (from its receipt) of the oldest inquiry waiting for an agent, per department and queue, as of the last refresh",
      labelNames,
      registers: [registry],
    }),
  };
}

export interface QueueRow {
  readonly department: string;
  readonly queue: string;
  readonly open: number;
  readonly oldest_seconds: number;
}

/** The queues with an inquiry waiting; a queue emptied since the last refresh loses its series. An age is never negative (a receipt time ahead of the database's clock counts as now). */
export function recordQueues(metrics: QueueMetrics, rows: readonly QueueRow[]): void {
  metrics.open.reset();
  metrics.oldestSeconds.reset();
  for (const row of rows) {
    const labels = { department: row.department, queue: row.queue };
    metrics.open.set(labels, row.open);
    metrics.oldestSeconds.set(labels, row.oldest_seconds);
  }
}

export async function readQueues(pool: pg.Pool, schema = APP_SCHEMA): Promise<QueueRow[]> {
  const s = pg.escapeIdentifier(schema);
  const { rows } = await pool.query<QueueRow>(
    `SELECT d.department, d.queue, count(*)::int AS open,
            greatest(0, extract(epoch FROM clock_timestamp() - min(coalesce(i.received_at, d.routed_at))))::float8 AS oldest_seconds
       FROM ${s}.routing_decisions d
       LEFT JOIN ${s}.inquiries i USING (inquiry_id)
      WHERE (d.human_review OR d.escalated)
        AND NOT EXISTS (SELECT 1 FROM ${s}.agent_replies r WHERE r.inquiry_id = d.inquiry_id)
      GROUP BY d.department, d.queue
      ORDER BY d.department, d.queue`,
  );
  return rows;
}

/** Reads the queues and sets the gauges; a failed read rejects and leaves them as they were. */
export async function refreshQueues(pool: pg.Pool, metrics: QueueMetrics, schema = APP_SCHEMA): Promise<QueueRow[]> {
  const rows = await readQueues(pool, schema);
  recordQueues(metrics, rows);
  return rows;
}
