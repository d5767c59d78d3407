import { createHash } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type pg from "pg";
import type { Customer, InquiryEnvelope, InquiryReceived } from "../../schemas/types.generated.js";
import { APP_SCHEMA } from "../../storage/postgres.js";
import type { ConnectorDependencies } from "../connector.js";
import { IntakeUnavailableError } from "../intake.js";
import { apiKeyOf } from "./auth.js";
import { ApiError, UnavailableError, calling } from "./errors.js";
import { rateHeaders, type Guard } from "./guard.js";
import {
  ACCEPTED,
  CLEANED_INQUIRY,
  DRAFTED_RESPONSE,
  ERROR,
  IDEMPOTENCY_HEADERS,
  INQUIRY_PARAMS,
  INQUIRY_STATE,
  NEW_INQUIRY,
  PREDICTION,
  ROUTING_DECISION,
  shaped,
  type InquiryStatus,
} from "./schemas.js";

/** The request body: InquiryReceived's client-given fields (NEW_INQUIRY validated it; defaults filled). */
type NewInquiry = Pick<InquiryReceived, "body"> &
  Partial<Pick<InquiryReceived, "subject" | "content_type">> &
  Partial<Pick<InquiryEnvelope, "thread_id" | "reply_to" | "metadata">> & { readonly customer?: Partial<Customer> };

/** JSON with object keys sorted: two bodies that mean the same have the same digest. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((status) => [status, ERROR]));

export function inquiryRoutes(app: FastifyInstance, deps: ConnectorDependencies, guard: Guard, pool: pg.Pool): void {
  const { intake, metrics, declaration } = deps;
  const connector = declaration.name;

  app.post(
    "/v1/inquiries",
    {
      config: { scope: "ingest", admitsItself: true },
      schema: {
        summary: "Send an inquiry to triage",
        description:
          "Answers 202 once Kafka has acknowledged the inquiry (all in-sync replicas). With an Idempotency-Key, a retry of the same body answers with the same inquiry and writes nothing twice.",
        tags: ["inquiries"],
        headers: IDEMPOTENCY_HEADERS,
        body: NEW_INQUIRY,
        response: { 202: ACCEPTED, ...errors(400, 401, 403, 409, 413, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const input = request.body as NewInquiry;
      if (!/\S/.test(input.body)) throw new ApiError(422, "validation_failed", "body: is blank", { field: "body", reason: "is blank" });
      const key = apiKeyOf(request);
      const idempotencyKey = request.headers["idempotency-key"];
      const admission = await guard.admitInquiry(
        key.id,
        typeof idempotencyKey === "string" ? { key: idempotencyKey, bodyDigest: createHash("sha256").update(canonicalJson(input)).digest("hex") } : undefined,
      );
      reply.headers(rateHeaders(admission.rate));
      const answer = (inquiryId: string, receivedAt: number) =>
        reply
          .code(202)
          .header("location", `/v1/inquiries/${inquiryId}`)
          .send({ inquiry_id: inquiryId, status: "received", received_at: new Date(receivedAt).toISOString() });
      if (admission.kind === "replay") {
        reply.header("idempotent-replayed", "true");
        return answer(admission.replay.inquiryId, admission.replay.receivedAt);
      }

      const { inquiryId, receivedAt } = admission.claim;
      const inquiry: InquiryReceived = {
        inquiry_id: inquiryId,
        envelope: {
          channel: "api",
          source_id: request.id,
          thread_id: input.thread_id ?? null,
          customer: { id: input.customer?.id ?? null, email: input.customer?.email ?? null, name: input.customer?.name ?? null, tier: input.customer?.tier ?? null },
          received_at: receivedAt,
          reply_to: input.reply_to ?? null,
          metadata: input.metadata ?? {},
        },
        subject: input.subject ?? null,
        body: input.body,
        content_type: input.content_type ?? "text",
      };
      try {
        await intake.publishInquiry(inquiry);
      } catch (error) {
        // Not acknowledged: the client's retry with its Idempotency-Key publishes this inquiry again.
        await admission.claim.fail().catch((failError: unknown) => request.log.warn({ err: failError }, "idempotency claim not marked failed; it expires by itself"));
        if (error instanceof IntakeUnavailableError) throw new UnavailableError("kafka", error);
        throw error;
      }
      metrics.accepted.inc({ connector, kind: "inquiry" });
      // Kafka has the inquiry, so the answer is 202 whatever Redis says now: a 503 would make the client send it again.
      // Not awaited: this process's later Redis commands (the client's GET, its retry) run after it on the same
      // connection, and the answer saves a round trip.
      void admission.claim.complete().catch((error: unknown) =>
        request.log.warn({ inquiryId, err: error }, "accepted inquiry not recorded in Redis: its status reads 404 until cleaned, and a retry with its Idempotency-Key may publish again"),
      );
      return answer(inquiryId, receivedAt);
    },
  );

  app.get(
    "/v1/inquiries/:id",
    {
      config: { scope: "read" },
      schema: {
        summary: "An inquiry's status and everything known about it",
        description: "From the archive (PostgreSQL): the cleaned inquiry, each prediction with model@version and any human label, the routing decision and the drafted reply.",
        tags: ["inquiries"],
        params: INQUIRY_PARAMS,
        response: { 200: INQUIRY_STATE, ...errors(401, 403, 404, 422, 429, 503) },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const state = await calling("postgres", () => archivedState(pool, id));
      if (state) return state;
      const acceptedAt = await guard.acceptedAt(id);
      if (acceptedAt === undefined) throw new ApiError(404, "not_found", `no inquiry ${id} (or not kept any more)`);
      return { inquiry_id: id, status: "received", received_at: new Date(acceptedAt).toISOString(), inquiry: null, predictions: [], routing: null, response: null };
    },
  );
}

interface ArchivedRows {
  inquiry: Record<string, unknown> | null;
  predictions: Record<string, unknown>[];
  routing: Record<string, unknown> | null;
  response: Record<string, unknown> | null;
}

/** What the archive holds about an inquiry, in one round trip; undefined when it holds nothing yet. */
async function archivedState(pool: pg.Pool, inquiryId: string) {
  const { rows } = await pool.query<ArchivedRows>({
    name: "api-inquiry-state",
    text: `SELECT
      (SELECT to_jsonb(i) FROM ${APP_SCHEMA}.inquiries i WHERE inquiry_id = $1) AS inquiry,
      -- Each prediction's label is the one the conflict rule chose (resolved_labels, 005_feedback.sql) once the feedback
      -- sink has it, else the archive's newest. A correlated subquery, so the view is read by prediction_id, not whole.
      (SELECT coalesce(jsonb_agg(to_jsonb(p) || coalesce((
           SELECT jsonb_build_object('label', r.label, 'label_source', r.label_source, 'labeled_at', r.labeled_at)
             FROM ${APP_SCHEMA}.resolved_labels r WHERE r.prediction_id = p.prediction_id
         ), '{}') ORDER BY p.task), '[]')
         FROM ${APP_SCHEMA}.predictions p WHERE p.inquiry_id = $1) AS predictions,
      (SELECT to_jsonb(d) FROM ${APP_SCHEMA}.routing_decisions d WHERE inquiry_id = $1) AS routing,
      (SELECT to_jsonb(r) FROM ${APP_SCHEMA}.responses r WHERE inquiry_id = $1) AS response`,
    values: [inquiryId],
  });
  const { inquiry, predictions, routing, response } = rows[0]!;
  if (!inquiry && predictions.length === 0 && !routing && !response) return undefined;
  const status: InquiryStatus = response ? "responded" : routing ? "routed" : "cleaned";
  return {
    inquiry_id: inquiryId,
    status,
    received_at: inquiry?.received_at ?? null,
    inquiry: inquiry && shaped(CLEANED_INQUIRY, { ...inquiry, customer: { id: inquiry.customer_id, tier: inquiry.customer_tier } }),
    predictions: predictions.map((row) => shaped(PREDICTION, row)),
    routing: routing && shaped(ROUTING_DECISION, routing),
    response: response && shaped(DRAFTED_RESPONSE, response),
  };
}
