import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type pg from "pg";
import { predictionId } from "../../processors/feedback.js";
import { URGENCY_SIGNALS } from "../../processors/urgency/signals.js";
import type { AgentReply, InquiryEnvelope, UrgencyDriver } from "../../schemas/types.generated.js";
import { SentimentValues, UrgencyLevelValues } from "../../schemas/types.generated.js";
import { APP_SCHEMA } from "../../storage/postgres.js";
import { errorMessage } from "../../streams/errors.js";
import type { ConnectorDependencies } from "../connector.js";
import { IntakeUnavailableError } from "../intake.js";
import { LABEL_TASKS, type LabelTask } from "../labels.js";
import { apiKeyOf } from "./auth.js";
import {
  EVENTS_QUERY,
  LABEL_CLASSES,
  NEW_REPLY,
  QUEUE_ITEM,
  QUEUE_QUERY,
  REPLY_ACCEPTED,
  REVIEW_DETAIL,
  REVIEW_QUEUE,
  SENT_REPLY,
  URGENCY_EXPLAINED,
} from "./console-schemas.js";
import { ApiError, UnavailableError, calling } from "./errors.js";
import type { ClassesOf } from "./labeling.js";
import { CLEANED_INQUIRY, DRAFTED_RESPONSE, ERROR, INQUIRY_PARAMS, PREDICTION, ROUTING_DECISION, shaped } from "./schemas.js";

/**
 * The agent console's data (scope `agent`): the review queue — inquiries flagged for human review
 * or escalated that no agent has answered yet, by priority — and its live feed (Server-Sent
 * Events), an inquiry as an agent reviews it, the classes a label may take, and agents' replies,
 * published on inquiries.replies for the chat gateway to deliver and the archive to keep.
 */

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((status) => [status, ERROR]));

/** How often the live feed asks the archive what changed. */
const POLL_MS = 1_000;
/** A comment line this often keeps proxies and the browser from timing the stream out. */
const HEARTBEAT_MS = 15_000;
/**
 * Each poll reads back this far before its cursor: a row is dated when its statement runs, but
 * is seen only once its transaction commits, which can be after a poll passed that time. The
 * archive's transactions take milliseconds; what a poll saw already is not sent twice.
 */
const OVERLAP_US = 10_000_000n;
/** The console sends at most this many changes per event; a burst beyond it arrives in the next polls. */
const MAX_CHANGES = 500;

/** The order the urgency processor finds signals in (processors/urgency): jsonb keeps a features object's keys in an order of its own. */
const SIGNAL_ORDER: readonly string[] = URGENCY_SIGNALS;
const bySignalOrder = (a: string, b: string) => (SIGNAL_ORDER.indexOf(a) + 1 || 99) - (SIGNAL_ORDER.indexOf(b) + 1 || 99) || (a < b ? -1 : a > b ? 1 : 0);

const OPEN = `(d.human_review OR d.escalated) AND NOT EXISTS (SELECT 1 FROM ${APP_SCHEMA}.agent_replies r WHERE r.inquiry_id = d.inquiry_id)`;
const NOW_US = `(extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text`;

/**
 * What drove the routed urgency level: route's drivers (processors/urgency/combination.ts: the
 * model, the signals, intent and sentiment, each a weight in log-odds), largest first.
 */
function explainUrgency(
  modelLevel: string | null,
  signals: readonly string[],
  level: string | null,
  drivers: readonly UrgencyDriver[],
): string {
  if (modelLevel === null) return level === null ? "no urgency prediction yet" : `routed at ${level} (the urgency prediction is not archived yet)`;
  if (level === null) return `the model said ${modelLevel}; not routed yet`;
  const said = `the model said ${modelLevel}${signals.length > 0 ? `, signals ${signals.join(", ")}` : ""}`;
  if (drivers.length === 0) return `${level}: ${said} (routed before urgency's drivers were recorded)`;
  const moved = drivers.map((d) => `${d.name} ${d.weight >= 0 ? "+" : ""}${d.weight.toFixed(2)}`).join(", ");
  return `${level}: ${said}; what moved it (log-odds, largest first): ${moved}`;
}

/** The envelope the reply travels with, rebuilt from the archive (which keeps no personal data): see README "Agent console". */
function replyEnvelope(inquiry: Record<string, unknown>): InquiryEnvelope {
  const channel = inquiry.channel as InquiryEnvelope["channel"];
  const threadId = (inquiry.thread_id as string | null) ?? null;
  return {
    channel,
    source_id: inquiry.source_id as string,
    thread_id: threadId,
    customer: { id: (inquiry.customer_id as string | null) ?? null, email: null, name: null, tier: (inquiry.customer_tier as string | null) ?? null },
    received_at: (inquiry.received_at as Date).getTime(),
    // A chat inquiry's session is both its thread and where replies go (connectors/chat); other
    // channels' reply addresses are personal data the archive does not keep.
    reply_to: channel === "chat" ? threadId : null,
    metadata: {},
  };
}

export function reviewRoutes(app: FastifyInstance, deps: ConnectorDependencies, pool: pg.Pool, classesOf: ClassesOf): void {
  const { intake, metrics, declaration, log } = deps;

  app.get(
    "/v1/review-queue",
    {
      config: { scope: "agent" },
      schema: {
        summary: "The review queue",
        description:
          "Inquiries flagged for human review or escalated that no agent has replied to yet, highest priority first (then oldest), optionally of one department and queue; with the open count of every department and queue, and a cursor for the live feed.",
        tags: ["console"],
        querystring: QUEUE_QUERY,
        response: { 200: REVIEW_QUEUE, ...errors(401, 403, 422, 429, 503) },
      },
    },
    async (request) => {
      const { department, queue, limit } = request.query as { department?: string; queue?: string; limit: number };
      const { rows } = await calling("postgres", () =>
        pool.query<{ items: Record<string, unknown>[]; total: number; facets: { department: string; queue: string; open: number }[]; cursor: string }>({
          name: "console-review-queue",
          text: `WITH open AS (
              SELECT d.* FROM ${APP_SCHEMA}.routing_decisions d WHERE ${OPEN}
            ), chosen AS (
              SELECT * FROM open WHERE ($1::text IS NULL OR department = $1) AND ($2::text IS NULL OR queue = $2)
            ), page AS (
              SELECT c.*, i.received_at, i.channel, i.subject, i.language, left(i.text, 240) AS snippet, s.strategy
                FROM chosen c
                LEFT JOIN ${APP_SCHEMA}.inquiries i USING (inquiry_id)
                LEFT JOIN ${APP_SCHEMA}.responses s USING (inquiry_id)
               ORDER BY c.priority_score DESC, c.routed_at, c.inquiry_id
               LIMIT $3
            )
            SELECT ${NOW_US} AS cursor,
              (SELECT count(*)::int FROM chosen) AS total,
              (SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.priority_score DESC, p.routed_at, p.inquiry_id), '[]') FROM page p) AS items,
              (SELECT coalesce(jsonb_agg(jsonb_build_object('department', department, 'queue', queue, 'open', n) ORDER BY department, queue), '[]')
                 FROM (SELECT department, queue, count(*)::int AS n FROM open GROUP BY department, queue) f) AS facets`,
          values: [department ?? null, queue ?? null, limit],
        }),
      );
      const { items, total, facets, cursor } = rows[0]!;
      const departments = new Map<string, { department: string; open: number; queues: { queue: string; open: number }[] }>();
      for (const facet of facets) {
        const entry = departments.get(facet.department) ?? { department: facet.department, open: 0, queues: [] };
        entry.open += facet.open;
        entry.queues.push({ queue: facet.queue, open: facet.open });
        departments.set(facet.department, entry);
      }
      return { total, items: items.map((item) => shaped(QUEUE_ITEM, item)), departments: [...departments.values()], cursor };
    },
  );

  // Open live feeds, ended when the server closes (a stream never ends by itself).
  const feeds = new Set<() => void>();
  app.addHook("preClose", async () => {
    for (const end of feeds) end();
  });

  app.get(
    "/v1/review-queue/events",
    {
      config: { scope: "agent" },
      schema: {
        summary: "Live updates of the review queue (Server-Sent Events)",
        description:
          "A text/event-stream: an `changed` event `{inquiry_ids, cursor}` whenever inquiries enter the queue (a flagged or escalated decision archived) or leave it (an agent's reply archived), with the cursor as its id; a comment every 15 s. Starts after ?cursor= (from GET /v1/review-queue) or the Last-Event-ID a reconnecting EventSource sends, else now.",
        tags: ["console"],
        querystring: EVENTS_QUERY,
        produces: ["text/event-stream"],
        response: { 200: { type: "string", description: "text/event-stream" }, ...errors(401, 403, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const query = request.query as { cursor?: string };
      const lastEventId = request.headers["last-event-id"];
      const given = typeof lastEventId === "string" && /^[0-9]{1,20}$/.test(lastEventId) ? lastEventId : query.cursor;
      let cursor = BigInt(given ?? (await calling("postgres", () => pool.query<{ now: string }>(`SELECT ${NOW_US} AS now`))).rows[0]!.now);

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        connection: "keep-alive",
        // Proxies such as nginx would otherwise hold events back in their buffers.
        "x-accel-buffering": "no",
      });
      raw.write(`retry: 2000\n: review queue changes after ${cursor}\n\n`);

      // What the overlap would show again: change keys seen, with the time they were archived.
      const seen = new Map<string, bigint>();
      let ended = false;
      let timer: NodeJS.Timeout | undefined;
      let polling = false;
      const heartbeat = setInterval(() => raw.write(": heartbeat\n\n"), HEARTBEAT_MS);
      const end = () => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        clearInterval(heartbeat);
        feeds.delete(end);
        raw.end();
      };
      feeds.add(end);
      // The response's close, not the request's: a GET's request is complete (and closed) as soon as it is read.
      raw.on("close", end);
      raw.on("error", end);

      const poll = async () => {
        if (ended || polling) return;
        polling = true;
        try {
          const since = (cursor - OVERLAP_US).toString();
          const { rows } = await pool.query<{ inquiry_id: string; kind: string; at: string }>({
            name: "console-review-changes",
            text: `SELECT inquiry_id, kind, at FROM (
                SELECT d.inquiry_id, 'decision' AS kind, (extract(epoch FROM d.archived_at) * 1000000)::bigint AS at
                  FROM ${APP_SCHEMA}.routing_decisions d
                 WHERE (d.human_review OR d.escalated) AND d.archived_at > to_timestamp($1::bigint / 1000000.0)
                UNION ALL
                SELECT r.inquiry_id, 'reply', (extract(epoch FROM r.archived_at) * 1000000)::bigint
                  FROM ${APP_SCHEMA}.agent_replies r
                 WHERE r.archived_at > to_timestamp($1::bigint / 1000000.0)
              ) c ORDER BY at LIMIT $2`,
            values: [since, MAX_CHANGES],
          });
          const fresh = new Set<string>();
          for (const row of rows) {
            const key = `${row.kind}:${row.inquiry_id}:${row.at}`;
            const at = BigInt(row.at);
            if (seen.has(key)) continue;
            seen.set(key, at);
            fresh.add(row.inquiry_id);
            if (at > cursor) cursor = at;
          }
          for (const [key, at] of seen) if (at < cursor - OVERLAP_US) seen.delete(key);
          if (fresh.size > 0 && !ended) {
            raw.write(`id: ${cursor}\nevent: changed\ndata: ${JSON.stringify({ inquiry_ids: [...fresh], cursor: cursor.toString() })}\n\n`);
          }
        } catch (error) {
          // PostgreSQL away: the stream stays open and says so; the next poll tries again.
          log.warn({ err: errorMessage(error) }, "review queue feed: poll failed");
          if (!ended) raw.write(`event: unavailable\ndata: ${JSON.stringify({ service: "postgres" })}\n\n`);
        } finally {
          polling = false;
          if (!ended) timer = setTimeout(() => void poll(), POLL_MS);
        }
      };
      void poll();
    },
  );

  app.get(
    "/v1/inquiries/:id/review",
    {
      config: { scope: "agent" },
      schema: {
        summary: "An inquiry as an agent reviews it",
        description:
          "From the archive: the redacted text, every prediction with its confidence and model@version, the urgency level with the signals and model level that drove it, the routing decision and its reasons, the drafted reply, every label given and the replies agents sent.",
        tags: ["console"],
        params: INQUIRY_PARAMS,
        response: { 200: REVIEW_DETAIL, ...errors(401, 403, 404, 422, 429, 503) },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const predictionIds = LABEL_TASKS.map((task) => predictionId(id, task));
      const { rows } = await calling("postgres", () =>
        pool.query<{
          inquiry: Record<string, unknown> | null;
          predictions: Record<string, unknown>[];
          routing: Record<string, unknown> | null;
          response: Record<string, unknown> | null;
          labels: Record<string, unknown>[];
          replies: Record<string, unknown>[];
        }>({
          name: "console-review-detail",
          text: `SELECT
            (SELECT to_jsonb(i) FROM ${APP_SCHEMA}.inquiries i WHERE inquiry_id = $1) AS inquiry,
            (SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.task), '[]') FROM ${APP_SCHEMA}.predictions p WHERE p.inquiry_id = $1 AND p.predicted_at IS NOT NULL) AS predictions,
            (SELECT to_jsonb(d) FROM ${APP_SCHEMA}.routing_decisions d WHERE inquiry_id = $1) AS routing,
            (SELECT to_jsonb(r) FROM ${APP_SCHEMA}.responses r WHERE inquiry_id = $1) AS response,
            (SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.labeled_at DESC, l.label_id), '[]') FROM ${APP_SCHEMA}.labels l WHERE l.prediction_id = ANY($2)) AS labels,
            (SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.sent_at, a.reply_id), '[]') FROM ${APP_SCHEMA}.agent_replies a WHERE a.inquiry_id = $1) AS replies`,
          values: [id, predictionIds],
        }),
      );
      const { inquiry, predictions, routing, response, labels, replies } = rows[0]!;
      if (!inquiry && predictions.length === 0 && !routing) throw new ApiError(404, "not_found", `no inquiry ${id} in the archive (yet)`);
      const urgencyPrediction = predictions.find((p) => p.task === "urgency");
      const values = ((urgencyPrediction?.features as { values?: Record<string, number> } | undefined)?.values ?? {}) as Record<string, number>;
      const signals = Object.keys(values)
        .filter((name) => name.startsWith("signal_") && values[name])
        .map((name) => name.slice("signal_".length))
        .sort(bySignalOrder);
      const level = (routing?.urgency as string | null | undefined) ?? null;
      const drivers = (routing?.urgency_drivers as UrgencyDriver[] | undefined) ?? [];
      const modelLevel = (urgencyPrediction?.predicted_label as string | undefined) ?? null;
      const urgency =
        urgencyPrediction || level
          ? shaped(URGENCY_EXPLAINED, {
              level,
              model_level: modelLevel,
              model: urgencyPrediction?.model ?? null,
              confidence: urgencyPrediction?.confidence ?? null,
              signals,
              drivers,
              explanation: explainUrgency(modelLevel, signals, level, drivers),
            })
          : null;
      return {
        inquiry_id: id,
        open: Boolean(routing && (routing.human_review || routing.escalated) && replies.length === 0),
        inquiry: inquiry && shaped(CLEANED_INQUIRY, { ...inquiry, customer: { id: inquiry.customer_id, tier: inquiry.customer_tier } }),
        predictions: predictions.map((row) => shaped(PREDICTION, row)),
        urgency,
        routing: routing && shaped(ROUTING_DECISION, routing),
        response: response && shaped(DRAFTED_RESPONSE, response),
        labels: labels.map((row) => ({
          prediction_id: row.prediction_id,
          task: row.task,
          label: row.label,
          label_source: row.label_source,
          labeled_at: row.labeled_at,
          judged_model: row.judged_model,
          judged_label: row.judged_label,
        })),
        replies: replies.map((row) => shaped(SENT_REPLY, row)),
      };
    },
  );

  app.get(
    "/v1/label-classes",
    {
      config: { scope: "agent" },
      schema: {
        summary: "The classes a label may take, per task",
        description: "What POST /v1/inquiries/{id}/labels accepts: the production intent and category models' labels, the sentiments and urgency levels, the routing rules' departments.",
        tags: ["console"],
        response: { 200: LABEL_CLASSES, ...errors(401, 403, 429, 503) },
      },
    },
    async () => {
      const free = async (task: LabelTask) => [...((await classesOf(task)) ?? [])].sort();
      const [intent, category, department] = await Promise.all([free("intent"), free("category"), free("department")]);
      return { intent, category, sentiment: [...SentimentValues], urgency: [...UrgencyLevelValues], department };
    },
  );

  app.post(
    "/v1/inquiries/:id/replies",
    {
      config: { scope: "agent" },
      schema: {
        summary: "Send an agent's reply to the customer",
        description:
          "Publishes an AgentReply on inquiries.replies (202 once Kafka has it): the chat gateway delivers it on the customer's session, the archive keeps it, and the inquiry leaves the review queue. `edited` says whether the text differs from the drafted reply. A retry with the same reply_id is the same reply.",
        tags: ["console"],
        params: INQUIRY_PARAMS,
        body: NEW_REPLY,
        response: { 202: REPLY_ACCEPTED, ...errors(400, 401, 403, 404, 413, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const body = request.body as { text: string; reply_id?: string };
      if (!/\S/.test(body.text)) throw new ApiError(422, "validation_failed", "text: is blank", { field: "text", reason: "is blank" });
      const { rows } = await calling("postgres", () =>
        pool.query<{ inquiry: Record<string, unknown> | null; draft: string | null }>({
          name: "console-reply-inquiry",
          text: `SELECT (SELECT to_jsonb(i) FROM ${APP_SCHEMA}.inquiries i WHERE inquiry_id = $1) AS inquiry,
                        (SELECT text FROM ${APP_SCHEMA}.responses WHERE inquiry_id = $1) AS draft`,
          values: [id],
        }),
      );
      const { inquiry, draft } = rows[0]!;
      if (!inquiry) throw new ApiError(404, "not_found", `no inquiry ${id} in the archive (yet)`);
      // jsonb turned the timestamp into text.
      const envelope = replyEnvelope({ ...inquiry, received_at: new Date(inquiry.received_at as string) });
      const key = apiKeyOf(request);
      const sentAt = Date.now();
      const record: AgentReply = {
        reply_id: body.reply_id ?? randomUUID(),
        inquiry_id: id,
        envelope,
        text: body.text,
        agent: key.name,
        // Line endings and the blanks around the text are the browser's, not the agent's edit.
        edited: draft === null || normalized(draft) !== normalized(body.text),
        sent_at: sentAt,
      };
      try {
        await intake.publishReply(record);
      } catch (error) {
        if (error instanceof IntakeUnavailableError) throw new UnavailableError("kafka", error);
        throw error;
      }
      metrics.accepted.inc({ connector: declaration.name, kind: "reply" });
      request.log.info({ inquiryId: id, replyId: record.reply_id, agent: key.name, edited: record.edited, channel: envelope.channel }, "agent reply sent");
      return reply.code(202).send({ reply_id: record.reply_id, inquiry_id: id, edited: record.edited, sent_at: new Date(sentAt).toISOString() });
    },
  );
}

const normalized = (text: string) => text.replace(/\r\n?/g, "\n").trim();
