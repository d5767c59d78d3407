import type { FastifyInstance, FastifyReply } from "fastify";
import type { Redis } from "ioredis";
import type pg from "pg";
import { SETTINGS } from "../../config/settings.js";
import { errorMessage } from "../../streams/errors.js";
import { looksLikeBinary } from "../../text/binary.js";
import type { ConnectorDependencies } from "../connector.js";
import { IntakeUnavailableError } from "../intake.js";
import {
  ShapeError,
  isObject,
  type TicketEvent,
  type TicketMessage,
  type TicketUpdate,
  type JsonObject,
} from "./events.js";
import { parseFreshdesk } from "./freshdesk.js";
import { parseGeneric } from "./generic.js";
import { ticketInquiry } from "./inquiry.js";
import { loadTicketLabels, type TicketLabelMap } from "./label-map.js";
import { labelRecords, planLabels } from "./labels.js";
import { DependencyUnavailableError, createLedger, type DeliveryOutcome } from "./ledger.js";
import { createTicketMetrics } from "./metrics.js";
import { DESKS, SECRET_SETTING, verifySignature, type Desk } from "./signatures.js";
import { parseZendesk } from "./zendesk.js";

/** What the webhooks need beside the connector's own dependencies; the API process owns both clients. */
export interface TicketWebhookServices {
  readonly redis: Redis;
  readonly pool: pg.Pool;
}

const JSON_MEDIA_TYPE = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;
const UTF8 = new TextDecoder("utf-8", { fatal: true });
/** Longest a Redis or PostgreSQL call may hold a webhook request before it is answered 503. */
const DEPENDENCY_TIMEOUT_MS = 3_000;
const RETRY_AFTER_UNAVAILABLE_S = 5;
const RETRY_AFTER_IN_FLIGHT_S = 2;
/** A label for a ticket whose first inquiry is still on its way through the pipeline (seconds, usually). */
const RETRY_AFTER_NOT_READY_S = 30;

type Outcome = "accepted" | "duplicate" | "ignored" | "refused";

interface Answer {
  readonly status: number;
  readonly body: JsonObject;
  readonly outcome: Outcome;
  readonly reason: string;
  readonly retryAfterSeconds?: number;
  readonly location?: string;
}

const refused = (status: number, reason: string, message: string, extra: JsonObject = {}): Answer => ({
  status,
  body: { error: reason, message, ...extra },
  outcome: "refused",
  reason,
});
const ignoredAnswer = (reason: string, message: string): Answer => ({
  status: 200,
  body: { status: "ignored", reason, message },
  outcome: "ignored",
  reason,
});
const duplicate = (outcome: DeliveryOutcome): Answer => ({
  status: 200,
  body: { status: "duplicate", ...outcome },
  outcome: "duplicate",
  reason: "redelivered",
});
const inFlight = (): Answer => ({
  ...refused(409, "in_flight", "the same event is being processed; retry shortly"),
  retryAfterSeconds: RETRY_AFTER_IN_FLIGHT_S,
});
/** The sender may send the same request again: its signature must not count as used. */
const retryable = (answer: Answer) => answer.status >= 500 || answer.retryAfterSeconds !== undefined;

function parse(desk: Desk, payload: JsonObject, labels: TicketLabelMap): TicketEvent {
  if (desk === "zendesk") return parseZendesk(payload, labels.intentField("zendesk"));
  if (desk === "freshdesk") return parseFreshdesk(payload, labels.intentField("freshdesk"));
  return parseGeneric(payload);
}

/**
 * The ticket webhooks, `POST /v1/webhooks/{zendesk,freshdesk,generic}` (README, Ticket webhooks),
 * as a plugin of the API process. Each request, in order: the desk is enabled (it has a secret;
 * 404), the body is JSON by its content type (415) and within the size limit (413), its
 * signature matches its exact bytes and its timestamp is recent (401), the signature was not used
 * before (409 replayed), the bytes are UTF-8 (400), JSON (400), an object (400) and one of the
 * desk's shapes (422). A customer's message then becomes an inquiry on `inquiries.received` (202
 * with its id), a ticket update labels on `predictions.feedback` (202), anything else is ignored
 * (200, with the reason). Each event is published once: a redelivery answers 200 with what the
 * first delivery made; while Kafka, Redis or PostgreSQL are down the answer is 503 with Retry-After.
 */
export function ticketWebhooks(
  deps: ConnectorDependencies,
  shared: TicketWebhookServices,
): (app: FastifyInstance) => Promise<void> {
  return async (app) => {
    const { handle, failure, send } = webhookHandler(
      deps,
      shared,
      await loadTicketLabels(deps.config.ticketLabels, deps.config.routingRules),
    );
    // A scope of its own: the signature covers the exact bytes, so the body stays a Buffer here
    // while the rest of the API keeps parsing JSON.
    await app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser(
        "*",
        { parseAs: "buffer", bodyLimit: deps.config.webhookMaxBytes },
        (_request, body, done) => done(null, body),
      );
      scope.setErrorHandler(async (error: { code?: string; statusCode?: number; message: string }, request, reply) => {
        const desk = DESKS.find((d) => request.url.startsWith(`/v1/webhooks/${d}`)) ?? "generic";
        if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
          return send(
            desk,
            reply,
            refused(
              413,
              "too_large",
              `the body is larger than ${deps.config.webhookMaxBytes} bytes (SWITCHBOARD_WEBHOOK_MAX_BYTES)`,
            ),
          );
        }
        const status = error.statusCode ?? 500;
        return send(desk, reply, status < 500 ? refused(status, "bad_request", error.message) : failure(desk, error));
      });
      for (const desk of DESKS) {
        // Described for the API's OpenAPI document; signed, so no API key (security: []).
        const schema = {
          summary: `${desk} ticket webhook`,
          description: ROUTE_DESCRIPTION[desk],
          tags: ["ticket webhooks"],
          security: [],
        };
        scope.post(`/v1/webhooks/${desk}`, { schema }, async (request, reply) => {
          let answer: Answer;
          try {
            answer = await handle(desk, request.headers, request.body);
          } catch (error) {
            answer = failure(desk, error);
          }
          return send(desk, reply, answer);
        });
      }
    });
  };
}

const ROUTE_DESCRIPTION: Readonly<Record<Desk, string>> = {
  zendesk:
    "Zendesk event webhooks (ticket created, comment added, group/type/custom field/status changed), signed with X-Zendesk-Webhook-Signature and X-Zendesk-Webhook-Signature-Timestamp. See README, Ticket webhooks.",
  freshdesk:
    "Freshdesk automation-rule webhooks with Switchboard's template, signed with X-Freshdesk-Signature and X-Freshdesk-Timestamp by a signing relay. See README, Ticket webhooks.",
  generic:
    "Switchboard's own ticket event shape, signed with X-Switchboard-Signature: t=<unix>,v1=<hex>. See README, Ticket webhooks.",
};

/** The request pipeline of the three routes, over one label map. */
function webhookHandler(deps: ConnectorDependencies, shared: TicketWebhookServices, labelMap: TicketLabelMap) {
  const connector = deps.declaration.name;
  const log = deps.log.child({ component: "ticket-webhooks" });
  const toleranceMs = deps.config.webhookToleranceSeconds * 1000;
  const ledger = createLedger(shared.redis, DEPENDENCY_TIMEOUT_MS);
  const { events } = createTicketMetrics(deps.registry, connector, deps.metrics.rejected);

  async function acceptMessage(desk: Desk, message: TicketMessage, receivedAt: number): Promise<Answer> {
    if (message.body.trim() === "") return ignoredAnswer("empty_body", "the message has no text");
    if (looksLikeBinary(message.body)) return refused(422, "binary_body", "the message body is binary data, not text");
    const inquiry = ticketInquiry(desk, message, receivedAt);
    const event = `message:${inquiry.envelope.source_id}`;
    const claim = await ledger.claim(desk, event);
    if (claim.state === "done") return duplicate(claim.outcome);
    if (claim.state === "pending") return inFlight();
    try {
      await deps.intake.publishInquiry(inquiry);
    } catch (error) {
      await ledger.release(desk, event, claim.token).catch(() => undefined);
      throw error;
    }
    deps.metrics.accepted.inc({ connector, kind: "inquiry" });
    const outcome = { inquiry_id: inquiry.inquiry_id };
    // Kafka has the inquiry: a failure to remember that is logged, not answered (a redelivery within
    // the claim's lifetime is still refused; after it, the same inquiry id would be published again).
    await ledger
      .complete(desk, event, claim.token, outcome, message.ticketId)
      .catch((error: unknown) =>
        log.warn(
          { desk, ticketId: message.ticketId, inquiryId: inquiry.inquiry_id, err: errorMessage(error) },
          "published inquiry not recorded as done",
        ),
      );
    log.info({ desk, ticketId: message.ticketId, inquiryId: inquiry.inquiry_id }, "ticket inquiry accepted");
    return {
      status: 202,
      body: { status: "accepted", ...outcome },
      outcome: "accepted",
      reason: "inquiry",
      location: `/v1/inquiries/${inquiry.inquiry_id}`,
    };
  }

  async function acceptUpdate(desk: Desk, update: TicketUpdate): Promise<Answer> {
    const { labels, unmapped } = planLabels(desk, update, labelMap);
    if (labels.length === 0) {
      if (unmapped.length === 0) return ignoredAnswer("no_label", "the update carries no group, type or intent");
      const values = unmapped.map((v) => `${v.field} "${v.value}"`).join(", ");
      return ignoredAnswer("unmapped_value", `config/ticket-labels.yaml maps none of ${values} for ${desk}`);
    }
    const event = `update:${update.ticketId}:${update.eventId}`;
    const claim = await ledger.claim(desk, event);
    if (claim.state === "done") return duplicate(claim.outcome);
    if (claim.state === "pending") return inFlight();
    let published = false;
    try {
      const result = await labelRecords(shared.pool, ledger, desk, update, labels, DEPENDENCY_TIMEOUT_MS);
      if (result.state === "unknown_ticket") {
        return ignoredAnswer(
          "unknown_ticket",
          `no inquiry of ${desk} ticket ${update.ticketId} is known (it came before Switchboard, or was never a customer's)`,
        );
      }
      if (result.state === "not_ready")
        return { ...refused(409, "not_ready", result.message), retryAfterSeconds: RETRY_AFTER_NOT_READY_S };
      await Promise.all(result.records.map((record) => deps.intake.publishFeedback(record)));
      published = true;
      deps.metrics.accepted.inc({ connector, kind: "label" }, result.records.length);
      const outcome = { inquiry_id: result.inquiryId, labels: result.records.length };
      await ledger
        .complete(desk, event, claim.token, outcome)
        .catch((error: unknown) =>
          log.warn(
            { desk, ticketId: update.ticketId, err: errorMessage(error) },
            "published labels not recorded as done",
          ),
        );
      log.info(
        { desk, ticketId: update.ticketId, inquiryId: result.inquiryId, tasks: result.records.map((r) => r.task) },
        "ticket labels accepted",
      );
      return {
        status: 202,
        body: {
          status: "accepted",
          ...outcome,
          recorded: result.records.map((r) => ({ task: r.task, label: r.label, label_source: r.label_source })),
          skipped: result.skipped,
          unmapped: unmapped.map((v) => ({ field: v.field, value: v.value })),
        },
        outcome: "accepted",
        reason: "labels",
      };
    } finally {
      if (!published) await ledger.release(desk, event, claim.token).catch(() => undefined);
    }
  }

  /** Everything after the signature: decoding, the shape, and what the event makes. */
  async function afterSignature(desk: Desk, body: Buffer, receivedAt: number): Promise<Answer> {
    let text: string;
    try {
      text = UTF8.decode(body);
    } catch {
      return refused(400, "invalid_utf8", "the body is not valid UTF-8");
    }
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch (error) {
      return refused(400, "malformed_json", `the body is not JSON: ${errorMessage(error)}`);
    }
    if (!isObject(payload)) return refused(400, "not_an_object", "the body must be a JSON object");
    let event: TicketEvent;
    try {
      event = parse(desk, payload, labelMap);
    } catch (error) {
      if (!(error instanceof ShapeError)) throw error;
      return refused(422, "unsupported_shape", error.message, { problems: error.problems });
    }
    if (event.kind === "ignored") return ignoredAnswer(event.reason, event.message);
    if (event.kind === "message") return acceptMessage(desk, event, receivedAt);
    return acceptUpdate(desk, event);
  }

  async function handle(
    desk: Desk,
    headers: Record<string, string | string[] | undefined>,
    raw: unknown,
  ): Promise<Answer> {
    const secret = deps.config[SECRET_SETTING[desk]];
    if (!secret) {
      return refused(
        404,
        "desk_disabled",
        `the ${desk} webhook is not enabled: set ${SETTINGS[SECRET_SETTING[desk]].env} to its signing secret`,
      );
    }
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !JSON_MEDIA_TYPE.test(contentType)) {
      return refused(415, "unsupported_media_type", "the body must be sent as application/json (UTF-8)");
    }
    const body = Buffer.isBuffer(raw) ? raw : Buffer.alloc(0);
    const now = Date.now();
    const verification = verifySignature(desk, secret, headers, body, now, toleranceMs);
    if (!verification.ok) return refused(401, verification.reason, verification.message);
    // A signature is accepted while its timestamp is within the tolerance either side of now, so
    // it is remembered for twice the tolerance.
    if (!(await ledger.firstUse(desk, verification.signature, 2 * toleranceMs))) {
      return refused(409, "replayed", "this signature was used before: sign every delivery anew");
    }
    let answer: Answer | undefined;
    try {
      answer = await afterSignature(desk, body, now);
      return answer;
    } finally {
      if (answer === undefined || retryable(answer))
        await ledger.forget(desk, verification.signature).catch(() => undefined);
    }
  }

  function failure(desk: Desk, error: unknown): Answer {
    if (error instanceof IntakeUnavailableError || error instanceof DependencyUnavailableError) {
      const dependency = error instanceof IntakeUnavailableError ? "kafka" : error.dependency;
      log.warn({ desk, dependency, err: errorMessage(error) }, "ticket webhook answered 503");
      return {
        ...refused(503, `unavailable_${dependency}`, `${errorMessage(error)}; retry later`),
        retryAfterSeconds: RETRY_AFTER_UNAVAILABLE_S,
      };
    }
    log.error({ desk, err: error }, "ticket webhook failed");
    return refused(500, "internal_error", "the webhook could not be processed; it was not accepted");
  }

  function send(desk: Desk, reply: FastifyReply, answer: Answer): FastifyReply {
    events.inc({ connector, desk, outcome: answer.outcome, reason: answer.reason });
    if (answer.outcome === "refused") {
      deps.metrics.rejected.inc({ connector, reason: answer.reason });
      if (answer.status < 500)
        log.info({ desk, status: answer.status, reason: answer.reason }, "ticket webhook refused");
    }
    if (answer.retryAfterSeconds !== undefined) reply.header("retry-after", String(answer.retryAfterSeconds));
    if (answer.location !== undefined) reply.header("location", answer.location);
    return reply.code(answer.status).send(answer.body);
  }

  return { handle, failure, send };
}
