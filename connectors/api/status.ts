import type { FastifyInstance } from "fastify";
import type pg from "pg";
import type { Config } from "../../config/settings.js";
import type { JsonSchema } from "../../schemas/json-schema.js";
import {
  PrometheusUnreachableError,
  SERIES,
  collectStatus,
  registryModels,
  type PrometheusReader,
  type SeriesName,
  type StatusSnapshot,
} from "../../monitoring/status.js";
import { ApiError, UNAVAILABLE_RETRY_AFTER_S } from "./errors.js";
import { ERROR } from "./schemas.js";

/**
 * The status page's data (scope agent), from Prometheus (PROMETHEUS_URL): `GET /v1/status`, the
 * snapshot `switchboard status --json` prints, and `GET /v1/series?names=`, the named range
 * queries of monitoring/status.ts's SERIES over the last minutes, which the status page and the
 * console's model page chart. The API proxies these queries and no other: a page names a series,
 * it never sends PromQL.
 */

/** Pages refresh every few seconds; many agents share one answer. */
const CACHE_MS = 3_000;
/** Points a chart gets at most: the step grows with the range. */
const POINTS = 180;
const MIN_STEP_SECONDS = 2;
export const MAX_MINUTES = 360;

const NAMES = Object.keys(SERIES) as SeriesName[];
const NUMBER_OR_NULL: JsonSchema = { type: ["number", "null"] };
const NULLABLE_STRING: JsonSchema = { type: ["string", "null"] };
const object = (properties: Record<string, JsonSchema>, title?: string): JsonSchema => ({
  type: "object",
  ...(title ? { title } : {}),
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
});
const LABELS: JsonSchema = { type: "object", additionalProperties: { type: "string" }, description: "The series' labels (job, topic, name, label, window, feature, …)." };

const SNAPSHOT: JsonSchema = object(
  {
    prometheus: { type: "string", description: "The Prometheus read." },
    at: { type: "string", format: "date-time" },
    processes: {
      type: "array",
      items: object(
        {
          name: { type: "string" },
          kind: { type: "string", enum: ["chain", "processor", "connector"] },
          state: { type: "string", enum: ["up", "down", "partly down", "not scraped"] },
          instances: { type: "integer" },
          inPerSecond: { ...NUMBER_OR_NULL, description: "Records consumed a second (a connector: requests answered)." },
          outPerSecond: { ...NUMBER_OR_NULL, description: "Records produced a second (a connector: records Kafka acknowledged)." },
          errorsPerSecond: { ...NUMBER_OR_NULL, description: "Processing errors a second (a connector: 5xx answers)." },
          lag: NUMBER_OR_NULL,
          p99Seconds: { ...NUMBER_OR_NULL, description: "p99 of processing a record (a connector: answering a request)." },
          dlq: { type: "number", description: "Records sent to a DLQ since the process started." },
        },
        "ProcessStatus",
      ),
    },
    endToEndP95Seconds: { ...NUMBER_OR_NULL, description: "Received → response p95 over 5 minutes." },
    dlq: { type: "array", items: object({ job: { type: "string" }, processor: { type: "string" }, topic: { type: "string" }, records: { type: "number" } }, "DlqCount") },
    models: {
      oneOf: [
        {
          type: "array",
          items: object(
            { model: { type: "string" }, version: { type: "string" }, family: { type: "string" }, stage: { type: "string", enum: ["production", "shadow"] }, since: { type: "string" } },
            "ModelInProduction",
          ),
        },
        object({ error: { type: "string" } }),
      ],
      description: "The registry's production and shadow versions, or why they could not be read.",
    },
    drift: {
      type: "array",
      items: object({ model: { type: "string" }, feature: { type: "string" }, statistic: NULLABLE_STRING, value: NUMBER_OR_NULL, threshold: NUMBER_OR_NULL, alarm: { type: "boolean" } }, "DriftFeatureState"),
    },
    queues: {
      type: "array",
      items: object(
        { department: { type: "string" }, queue: { type: "string" }, waiting: NUMBER_OR_NULL, oldestSeconds: NUMBER_OR_NULL, overSla: { type: "boolean" } },
        "QueueState",
      ),
    },
    alerts: {
      type: "array",
      items: object({ name: { type: "string" }, severity: { type: "string" }, state: { type: "string" }, summary: { type: "string" }, since: NULLABLE_STRING }, "ActiveAlert"),
    },
  },
  "StatusSnapshot",
);

const SERIES_QUERY: JsonSchema = {
  type: "object",
  properties: {
    names: { type: "string", pattern: "^[a-z0-9_]+(,[a-z0-9_]+)*$", maxLength: 400, description: `Comma-separated series names: ${NAMES.join(", ")}.` },
    minutes: { type: "integer", minimum: 1, maximum: MAX_MINUTES, default: 30, description: "How far back from now." },
  },
  required: ["names"],
  additionalProperties: false,
};

const SERIES_RESPONSE: JsonSchema = object(
  {
    from: { type: "number", description: "Unix seconds of the first point." },
    to: { type: "number", description: "Unix seconds of the last point." },
    step_seconds: { type: "number" },
    series: {
      type: "object",
      additionalProperties: object(
        {
          title: { type: "string" },
          unit: { type: "string", enum: ["per_second", "seconds", "records", "fraction", "ratio"], description: "per_second, seconds, records (a count), fraction (0–1), ratio." },
          series: {
            type: "array",
            items: object({ labels: LABELS, points: { type: "array", items: { type: "array", items: NUMBER_OR_NULL, minItems: 2, maxItems: 2 }, description: "[unix seconds, value] pairs; null: no value (a quantile of no observations)." } }),
          },
        },
        "NamedSeries",
      ),
    },
  },
  "Series",
);

/** undefined → null, as the CLI's --json does: a figure Prometheus has no series for is null, not left out. */
const withNulls = (snapshot: StatusSnapshot): unknown => JSON.parse(JSON.stringify(snapshot, (_key, value: unknown) => (value === undefined ? null : value)));
const finiteOrNull = (value: number) => (Number.isFinite(value) ? value : null);

/** Prometheus down or refusing: 503, as for the API's other services. */
function unavailable(error: unknown): never {
  const message = error instanceof PrometheusUnreachableError ? error.message : `Prometheus could not answer: ${(error as Error).message}`;
  const refusal = new ApiError(503, "unavailable_prometheus", message, { headers: { "retry-after": String(UNAVAILABLE_RETRY_AFTER_S) } });
  refusal.cause = error;
  throw refusal;
}

/** A promise remembered for CACHE_MS, forgotten at once if it fails. */
function cached<T>(): (key: string, make: () => Promise<T>) => Promise<T> {
  const entries = new Map<string, { until: number; value: Promise<T> }>();
  return (key, make) => {
    const now = Date.now();
    for (const [k, entry] of entries) if (entry.until < now) entries.delete(k);
    const hit = entries.get(key);
    if (hit) return hit.value;
    const value = make();
    entries.set(key, { until: now + CACHE_MS, value });
    value.catch(() => entries.delete(key));
    return value;
  };
}

export interface StatusRouteOptions {
  readonly reader: PrometheusReader;
  readonly pool: pg.Pool;
  readonly config: Pick<Config, "modelsDir" | "registrySchema">;
}

export function statusRoutes(app: FastifyInstance, { reader, pool, config }: StatusRouteOptions): void {
  const snapshots = cached<unknown>();
  const ranges = cached<{ labels: Record<string, string>; points: (number | null)[][] }[]>();
  const errors = Object.fromEntries([401, 403, 422, 429, 503].map((s) => [s, ERROR]));

  app.get(
    "/v1/status",
    {
      config: { scope: "agent" },
      schema: {
        summary: "The deployment's status from Prometheus",
        description:
          "What `switchboard status --json` prints: every process of the topology up or down with its rates, errors, lag, p99 and DLQ counts, received → response p95, the models in production and shadow, the drift state, the agents' queues and the active alerts. Recomputed at most every 3 s.",
        tags: ["console"],
        response: { 200: SNAPSHOT, ...errors },
      },
    },
    async () => snapshots("snapshot", () => collectStatus(reader, () => registryModels(pool, config)).then(withNulls, unavailable)),
  );

  app.get(
    "/v1/series",
    {
      config: { scope: "agent" },
      schema: {
        summary: "Named series from Prometheus over the last minutes",
        description: `Range queries the status page and the model page chart, by name (${NAMES.join(", ")}); no other query runs. Up to ${POINTS} points a series.`,
        tags: ["console"],
        querystring: SERIES_QUERY,
        response: { 200: SERIES_RESPONSE, ...errors },
      },
    },
    async (request) => {
      const { names, minutes } = request.query as { names: string; minutes: number };
      const asked = [...new Set(names.split(","))];
      const unknown = asked.filter((name) => !Object.hasOwn(SERIES, name));
      if (unknown.length > 0) throw new ApiError(422, "unknown_series", `no series named ${unknown.join(", ")} (known: ${NAMES.join(", ")})`, { field: "names" });
      const stepSeconds = Math.max(MIN_STEP_SECONDS, Math.ceil((minutes * 60) / POINTS));
      // Aligned to the step, so that every page asking within one step shares the answer.
      const end = Math.floor(Date.now() / 1000 / stepSeconds) * stepSeconds;
      const start = end - minutes * 60;
      const results = await Promise.all(
        (asked as SeriesName[]).map(async (name) => {
          const series = await ranges(`${name}:${start}:${end}:${stepSeconds}`, async () =>
            (await reader.range(SERIES[name].expr, { start, end, stepSeconds })).map((s) => ({ labels: { ...s.metric }, points: s.points.map(([t, v]) => [t, finiteOrNull(v)]) })),
          ).catch(unavailable);
          return [name, { title: SERIES[name].title, unit: SERIES[name].unit, series }] as const;
        }),
      );
      return { from: start, to: end, step_seconds: stepSeconds, series: Object.fromEntries(results) };
    },
  );
}
