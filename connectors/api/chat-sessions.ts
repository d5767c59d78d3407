import type { FastifyInstance } from "fastify";
import type { Customer } from "../../schemas/types.generated.js";
import { issueChatSession, SESSION_CREATED } from "../chat/sessions.js";
import { chatTokenSecret } from "../chat/tokens.js";
import type { ConnectorDependencies } from "../connector.js";
import { ERROR, NEW_INQUIRY } from "./schemas.js";

/**
 * POST /v1/chat/sessions: a chat session for a customer an integration knows (a website's
 * backend, for its signed-in customer), so that the customer's inquiries from the chat carry who
 * they are. Scope `ingest`, like sending inquiries. The token is signed with the secret every
 * gateway instance verifies with (chatTokenSecret); nothing is stored until the customer connects.
 */
export function chatSessionRoutes(app: FastifyInstance, deps: ConnectorDependencies): void {
  const { config, log } = deps;
  const secret = chatTokenSecret(config);
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
}
