import type { FastifyInstance } from "fastify";
import type pg from "pg";
import type { ConnectorDependencies } from "../connector.js";
import { IntakeUnavailableError } from "../intake.js";
import { UnratableError, replyRatingRecords, type Rating } from "../reply-rating.js";
import { ApiError, UnavailableError } from "./errors.js";
import { ERROR, INQUIRY_PARAMS, RATING_ACCEPTED, REPLY_RATING } from "./schemas.js";

/**
 * POST /v1/inquiries/{id}/reply-rating: a customer's thumbs up or down on the drafted reply
 * (connectors/reply-rating.ts says what it labels). Scope `ingest`: the customer-facing client
 * that sends inquiries also sends ratings, and cannot give agent labels, which outrank them.
 */
export function ratingRoutes(app: FastifyInstance, deps: ConnectorDependencies, pool: pg.Pool): void {
  const { intake, metrics, declaration } = deps;

  app.post(
    "/v1/inquiries/:id/reply-rating",
    {
      config: { scope: "ingest" },
      schema: {
        summary: "Rate the reply to an inquiry (customer thumbs up or down)",
        description:
          "Becomes predictions.feedback records with label_source customer: a response label (helpful or unhelpful) and, for a template reply rated up, a confirmation of the predicted intent. A later rating replaces an earlier one among the customer's labels; agent and help-desk outcome labels outrank it. Answers 202 once Kafka has them.",
        tags: ["labels"],
        params: INQUIRY_PARAMS,
        body: REPLY_RATING,
        response: { 202: RATING_ACCEPTED, ...Object.fromEntries([400, 401, 403, 404, 409, 413, 415, 422, 429, 503].map((status) => [status, ERROR])) },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const { rating } = request.body as { rating: Rating };
      const records = await replyRatingRecords(pool, id, rating).catch((error: unknown) => {
        if (!(error instanceof UnratableError)) throw new UnavailableError("postgres", error);
        throw error.reason === "unknown_inquiry"
          ? new ApiError(404, "not_found", error.message)
          : new ApiError(409, "no_reply_yet", error.message, { headers: { "retry-after": "2" } });
      });
      try {
        await Promise.all(records.map((record) => intake.publishFeedback(record)));
      } catch (error) {
        // A record that did reach Kafka is harmless when the client resends: the latest customer label wins.
        if (error instanceof IntakeUnavailableError) throw new UnavailableError("kafka", error);
        throw error;
      }
      metrics.accepted.inc({ connector: declaration.name, kind: "rating" }, records.length);
      request.log.info({ inquiryId: id, rating, labels: records.length }, "reply rated");
      return reply.code(202).send({
        inquiry_id: id,
        labels: records.map(({ prediction_id, task, model, predicted_label, label }) => ({ prediction_id, task, model, predicted_label, label })),
      });
    },
  );
}
