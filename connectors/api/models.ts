import type { FastifyInstance } from "fastify";
import pg from "pg";
import { liveQuality, type QualityReport } from "../../quality/live.js";
import { parseWindow } from "../../quality/window.js";
import { APP_SCHEMA } from "../../storage/postgres.js";
import { MODELS } from "./console-schemas.js";
import { calling } from "./errors.js";
import { ERROR } from "./schemas.js";

/**
 * The model page's data (`GET /v1/models`, scope agent): per registry model its production (and
 * shadow) version with the held-out metrics the registry keeps, live and estimated quality over
 * the last hour and day (quality/, what `switchboard models --live` prints), the drift
 * processor's alarm state of the production version and its latest drift records
 * (drift/store.ts), and the latest registry decisions, which the lifecycle relay turns into
 * models.lifecycle records (retrain/relay.ts).
 */

const WINDOWS = ["1h", "1d"].map(parseWindow);
/** The page refreshes every few seconds; live quality costs a query per version and window. */
const CACHE_MS = 5_000;
const LIFECYCLE_EVENTS = 10;
const DRIFT_EVENTS = 5;

interface VersionRow {
  model: string;
  task: string;
  version: string | null;
  family: string | null;
  stage: "production" | "shadow" | null;
  since: Date | null;
  accuracy: number | null;
  macro_f1: number | null;
  ece: number | null;
}

interface AlarmRow {
  model: string;
  state: { alarms?: Record<string, { status?: string }> };
  updated_at: Date;
}

interface DecisionRow {
  id: string;
  model: string;
  action: string;
  candidate_version: string | null;
  production_version: string | null;
  reason: string;
  numbers: Record<string, unknown>;
  decided_at: Date;
}

const finite = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);

function qualityRow(report: QualityReport) {
  return {
    stage: report.version.stage,
    model: report.version.model,
    window: report.window.name,
    predictions: report.predictions,
    labelled: report.labelled,
    accuracy: finite(report.measured?.accuracy),
    accuracy_low: finite(report.measured?.interval.low),
    accuracy_high: finite(report.measured?.interval.high),
    macro_f1: finite(report.measured?.macroF1),
    estimated_accuracy: finite(report.estimated?.estimate),
    estimated_low: finite(report.estimated?.interval.low),
    estimated_high: finite(report.estimated?.interval.high),
    estimate_trusted: report.calibration.trusted,
    estimate_reason: report.calibration.reason,
  };
}

export async function modelStatus(pool: pg.Pool, registrySchema: string) {
  const registry = pg.escapeIdentifier(registrySchema);
  const { rows: versions } = await pool.query<VersionRow>(
    `SELECT m.name AS model, m.task, v.version, v.family, v.stage, v.stage_changed_at AS since,
            max(x.value) FILTER (WHERE x.metric = 'accuracy' AND x.class_label = '') AS accuracy,
            max(x.value) FILTER (WHERE x.metric = 'macro_f1' AND x.class_label = '') AS macro_f1,
            max(x.value) FILTER (WHERE x.metric = 'ece' AND x.class_label = '') AS ece
       FROM ${registry}.models m
       LEFT JOIN ${registry}.versions v ON v.model = m.name AND v.stage IN ('production', 'shadow')
       LEFT JOIN ${registry}.metrics x ON x.model = v.model AND x.version = v.version AND x.split = 'test'
      GROUP BY m.name, m.task, v.version, v.family, v.stage, v.stage_changed_at
      ORDER BY m.name, v.stage`,
  );
  const served = (name: string, stage: "production" | "shadow") => {
    const row = versions.find((v) => v.model === name && v.stage === stage);
    if (!row || row.version === null) return null;
    return {
      version: row.version,
      model: `${name}@${row.version}`,
      family: row.family ?? "",
      since: row.since!,
      held_out: { accuracy: finite(row.accuracy), macro_f1: finite(row.macro_f1), ece: finite(row.ece) },
    };
  };
  const names = [...new Set(versions.map((v) => v.model))];
  const productions = names.flatMap((name) => served(name, "production")?.model ?? []);

  const [reports, alarms, drifts, decisions] = await Promise.all([
    liveQuality(pool, { windows: WINDOWS, registrySchema }),
    pool.query<AlarmRow>(`SELECT model, state, updated_at FROM ${APP_SCHEMA}.drift_monitors WHERE model = ANY($1)`, [productions]),
    // The outbox keeps every drift record of the last 7 days (drift/store.ts).
    pool.query<{ record: Record<string, unknown> }>(
      `SELECT record FROM (
         SELECT record, row_number() OVER (PARTITION BY record->>'model' ORDER BY created_at DESC, seq) AS n
           FROM ${APP_SCHEMA}.drift_outbox WHERE record->>'model' = ANY($1)
       ) r WHERE n <= ${DRIFT_EVENTS}`,
      [productions],
    ),
    pool.query<DecisionRow>(
      `SELECT id, model, action, candidate_version, production_version, reason, numbers, decided_at FROM (
         SELECT d.*, row_number() OVER (PARTITION BY model ORDER BY id DESC) AS n FROM ${registry}.decisions d
       ) d WHERE n <= ${LIFECYCLE_EVENTS} ORDER BY model, id DESC`,
    ),
  ]);

  return {
    generated_at: new Date(),
    models: names.map((name) => {
      const production = served(name, "production");
      const alarm = production ? alarms.rows.find((a) => a.model === production.model) : undefined;
      const inAlarm = Object.entries(alarm?.state.alarms ?? {})
        .filter(([, state]) => state.status === "alarm")
        .map(([feature]) => feature)
        .sort();
      return {
        name,
        task: versions.find((v) => v.model === name)!.task,
        production,
        shadow: served(name, "shadow"),
        quality: reports.filter((r) => r.version.name === name).map(qualityRow),
        drift: {
          state: alarm ? (inAlarm.length > 0 ? "alarm" : "normal") : "unwatched",
          features_in_alarm: inAlarm,
          updated_at: alarm?.updated_at ?? null,
          recent: drifts.rows
            .map((r) => r.record)
            .filter((record) => record.model === production?.model)
            .sort((a, b) => Number(b.detected_at) - Number(a.detected_at))
            .map((record) => ({
              model: record.model,
              feature: record.feature,
              statistic: record.statistic,
              value: finite(record.value) ?? 0,
              threshold: finite(record.threshold) ?? 0,
              severity: record.severity,
              sample_size: record.sample_size,
              detected_at: new Date(Number(record.detected_at)),
            })),
        },
        lifecycle: decisions.rows
          .filter((d) => d.model === name)
          .map((d) => ({
            id: Number(d.id),
            event: d.action,
            version: d.candidate_version,
            production_version: d.production_version,
            reason: d.reason,
            numbers: Object.fromEntries(Object.entries(d.numbers ?? {}).filter(([, value]) => finite(value) !== null)),
            decided_at: d.decided_at,
          })),
      };
    }),
  };
}

export function modelRoutes(app: FastifyInstance, pool: pg.Pool, registrySchema: string): void {
  let cached: { until: number; value: Promise<Awaited<ReturnType<typeof modelStatus>>> } | undefined;
  app.get(
    "/v1/models",
    {
      config: { scope: "agent" },
      schema: {
        summary: "The models: production versions, live quality, drift, lifecycle",
        description:
          "Per registry model: the production (and shadow) version with its held-out metrics, live quality measured on labels and estimated without them over the last hour and day, the drift state of the production version with its latest drift records, and the latest lifecycle events (registry decisions). Recomputed at most every 5 s.",
        tags: ["console"],
        response: { 200: MODELS, ...Object.fromEntries([401, 403, 429, 503].map((s) => [s, ERROR])) },
      },
    },
    async () => {
      if (!cached || cached.until < Date.now()) {
        const value = modelStatus(pool, registrySchema);
        cached = { until: Date.now() + CACHE_MS, value };
        // A failure is not remembered: the next request asks again.
        value.catch(() => (cached = undefined));
      }
      return calling("postgres", () => cached!.value);
    },
  );
}
