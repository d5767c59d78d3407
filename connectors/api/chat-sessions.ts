import type { FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import type { Customer } from "../../schemas/types.generated.js";
import { issueChatSession, SESSION_CREATED } from "../chat/sessions.js";
import { createSessionRevoker } from "../chat/store.js";
import { chatTokenSecret } from "../chat/tokens.js";
import type { ConnectorDependencies } from "../connector.js";
import { ERROR, NEW_INQUIRY } from "./schemas.js";

/**
 * POST /v1/chat/sessions: a chat session for a customer an integration knows (a website's
 * backend, for its signed-in customer), so that the customer's inquiries from the chat carry who
 * they are. Scope `ingest`, like sending inquiries. The token is signed with the secret every
 * gateway instance verifies with (chatTokenSecret); nothing is stored until the customer connects.
 * DELETE /v1/chat/sessions/{id} ends one (the customer signed out): its token opens nothing more
 * and an open socket is closed with 4010.
 */
export function chatSessionRoutes(app: FastifyInstance, deps: ConnectorDependencies, redis: Redis): void {
  const { config, log } = deps;
  const secret = chatTokenSecret(config);
  const revoker = createSessionRevoker(redis, config.chatSessionTtlSeconds * 1000);
  const customer = (NEW_INQUIRY.properties as Record<string, object>).customer;

  app.post(
    "/v1/chat/sessions",
    {
      config: { scope: "ingest" },
      schema: {
        summary: "Open a chat session for a customer",
        description:
          "Answers a session id and a signed token (valid SWITCHBOARD_CHAT_SESSION_TTL_SECONDS) for the chat gateway's socket: the chat page sends the token in its hello. The customer's id, name, email and tier go on every inquiry the session sends.",
        tags: ["chat"],
        body: {
          type: "object",
          title: "NewChatSession",
          properties: { customer },
          additionalProperties: false,
        },
        response: { 201: SESSION_CREATED, ...Object.fromEntries([400, 401, 403, 413, 415, 422, 429, 503].map((status) => [status, ERROR])) },
      },
    },
    async (request, reply) => {
      const body = (request.body ?? {}) as { customer?: Partial<Customer> };
      const created = issueChatSession(secret, { customer: body.customer ?? {}, ttlSeconds: config.chatSessionTtlSeconds, guest: false });
      log.info({ sessionId: created.session_id, apiKey: request.apiKey?.id }, "chat session issued");
      return reply.code(201).send(created);
    },
  );

  app.delete(
    "/v1/chat/sessions/:sessionId",
    {
      config: { scope: "ingest" },
      schema: {
        summary: "End a chat session",
        description:
          "The session's token opens nothing more, on any gateway instance, and a socket open on it is closed with 4010. Ending a session twice is the same as once.",
        tags: ["chat"],
        params: {
          type: "object",
          properties: { sessionId: { type: "string", format: "uuid", description: "The session_id POST /v1/chat/sessions answered." } },
          required: ["sessionId"],
        },
        response: { 204: { type: "null", description: "The session is ended." }, ...Object.fromEntries([401, 403, 422, 429, 503].map((status) => [status, ERROR])) },
      },
    },
    async (request, reply) => {
      const { sessionId } = request.params as { sessionId: string };
      const { revokedNow } = await revoker.revoke(sessionId);
      log.info({ sessionId, revokedNow, apiKey: request.apiKey?.id }, "chat session ended");
      return reply.code(204).send();
    },
  );
}
