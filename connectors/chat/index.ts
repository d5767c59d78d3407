import os from "node:os";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import websocket from "@fastify/websocket";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import { redisOptions, schemaRegistryOptions } from "../../config/security.js";
import { createTopicCodec } from "../../streams/codec.js";
import { redisProbe } from "../../streams/dependency-probes.js";
import { errorMessage } from "../../streams/errors.js";
import { createKafka } from "../../streams/kafka.js";
import { allTopics } from "../../streams/topology.js";
import type { ConnectorFactory } from "../connector.js";
import { servePages } from "../pages.js";
import { connectorRedis } from "../redis.js";
import { createDelivery } from "./delivery.js";
import { createGateway } from "./gateway.js";
import { createChatMetrics } from "./metrics.js";
import { MAX_TEXT_CHARS } from "./protocol.js";
import { issueChatSession, SESSION_CREATED } from "./sessions.js";
import { createChatStore, INSTANCE_CHANNEL_PREFIX } from "./store.js";
import { chatTokenSecret } from "./tokens.js";

/** A refusal of the gateway's own routes, as the API's: a machine-readable code and a sentence. */
const REFUSAL = {
  type: "object",
  properties: { error: { type: "string" }, message: { type: "string" } },
  required: ["error", "message"],
} as const;

/** Replies a session's mailbox keeps (the oldest go first beyond this): far more than a conversation holds. */
const MAILBOX_MAX_LENGTH = 1_000;

/**
 * The chat gateway (`switchboard run chat`): customers' WebSockets (`/chat/socket`), the chat
 * page (`/chat`, web/chat/) and guest sessions (`POST /chat/sessions`). Customer messages go to
 * inquiries.received; the replies come back through the delivery consumer into each session's
 * mailbox in Redis and out on the socket of whichever instance holds the session. README's
 * "Chat gateway" section has the protocol and close codes.
 */
export const chat: ConnectorFactory = async ({ config, endpoints, log, declaration, topology, intake, metrics, registry }) => {
  const secret = chatTokenSecret(config);
  const instanceId = config.chatInstanceId ?? `${os.hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64);
  const sessionTtlMs = config.chatSessionTtlSeconds * 1000;
  const redis = connectorRedis(endpoints, log, { commandTimeoutMs: 2_000, whileDown: "no session opens, no message is taken and replies wait in Kafka" });
  // Subscribed to this instance's channel: its own connection (a subscribed client takes no other commands),
  // queueing the subscription until connected and subscribing again after every reconnect.
  const subscriber = new Redis(endpoints.redisUrl, { ...redisOptions(endpoints), maxRetriesPerRequest: null });
  subscriber.on("error", () => undefined);
  const store = createChatStore(redis, { sessionTtlMs, mailboxMaxLength: MAILBOX_MAX_LENGTH });
  const chatMetrics = createChatMetrics(registry);
  const inputs = declaration.inputs ?? [];
  const codec = await createTopicCodec(
    new SchemaRegistry(schemaRegistryOptions(endpoints, declaration.name)),
    allTopics(topology).filter((t) => inputs.includes(t.name)),
  );
  const delivery = createDelivery({
    kafka: createKafka(endpoints, `${declaration.name}-delivery-${instanceId}`, log),
    codec,
    store,
    groupId: declaration.name,
    topics: inputs,
    sessionTtlMs,
    sessionTimeoutMs: config.sessionTimeoutMs,
    metrics: chatMetrics,
    log,
  });
  const gateway = createGateway({
    settings: {
      instanceId,
      secret,
      maxBufferedBytes: config.chatMaxBufferedBytes,
      heartbeatMs: config.chatHeartbeatMs,
      pagePingMs: config.chatPagePingMs,
      rateLimit: config.chatRateLimit,
      rateWindowMs: config.chatRateWindowMs,
      sessionTtlMs,
    },
    store,
    intake,
    metrics: chatMetrics,
    connectorMetrics: metrics,
    connector: declaration.name,
    log,
  });
  const channel = `${INSTANCE_CHANNEL_PREFIX}${instanceId}`;
  let subscribedOnce = false;
  subscriber.on("message", (_channel: string, message: string) => gateway.notify(message));
  subscriber.on("ready", () => {
    // After the first subscription, a ready means a reconnect: notifications may have been missed meanwhile.
    if (subscribedOnce) gateway.catchUp();
  });

  return {
    async routes(app: FastifyInstance) {
      await app.register(websocket, {
        options: { maxPayload: config.chatMaxMessageBytes },
        // Every socket closes with 1001 (the client reconnects elsewhere and resumes) before the server stops.
        preClose: (done) => {
          gateway.shutdown().then(() => done(), done);
        },
        // The gateway's own error listener counts and logs; ws closes the socket itself after a protocol error (1009, 1002).
        errorHandler: (error, socket) => {
          if (socket.readyState === socket.OPEN) socket.terminate();
          log.debug({ err: errorMessage(error) }, "websocket error");
        },
      });
      await servePages(app, "chat", "/chat");
      app.get("/chat/config.json", async () => ({
        gateways: config.chatGatewayUrls?.split(",") ?? [],
        guest_sessions: config.chatGuestSessions,
        max_message_bytes: config.chatMaxMessageBytes,
        max_text_chars: MAX_TEXT_CHARS,
      }));
      app.post(
        "/chat/sessions",
        {
          bodyLimit: 4_096,
          schema: {
            body: {
              type: "object",
              properties: { name: { type: "string", minLength: 1, maxLength: 200, pattern: "^[^\\u0000-\\u001F\\u007F]*$" } },
              additionalProperties: false,
            },
            response: { 201: SESSION_CREATED, 400: REFUSAL, 403: REFUSAL, 413: REFUSAL, 415: REFUSAL, 429: REFUSAL, 503: REFUSAL },
          },
        },
        async (request, reply) => {
          if (!config.chatGuestSessions) {
            metrics.rejected.inc({ connector: declaration.name, reason: "guest_sessions_off" });
            return reply.code(403).send({ error: "guest_sessions_off", message: "this gateway takes only sessions an integration issued (POST /v1/chat/sessions on the API)" });
          }
          let counted: { count: number; resetMs: number };
          try {
            counted = await store.countGuest(request.ip, config.chatRateWindowMs);
          } catch (error) {
            request.log.warn({ err: errorMessage(error) }, "guest session refused: redis unavailable");
            return reply.code(503).header("retry-after", "5").send({ error: "unavailable_redis", message: "sessions cannot be opened now; retry shortly" });
          }
          if (counted.count > config.chatGuestSessionLimit) {
            metrics.rejected.inc({ connector: declaration.name, reason: "rate_limited" });
            return reply
              .code(429)
              .header("retry-after", String(Math.ceil(counted.resetMs / 1000)))
              .send({ error: "rate_limited", message: `more than ${config.chatGuestSessionLimit} sessions in ${config.chatRateWindowMs / 1000} s from this address` });
          }
          const { name } = (request.body ?? {}) as { name?: string };
          const created = issueChatSession(secret, { customer: { name: name?.trim() || null }, ttlSeconds: config.chatSessionTtlSeconds, guest: true });
          request.log.info({ sessionId: created.session_id, guest: true }, "chat session issued");
          return reply.code(201).send(created);
        },
      );
      app.get("/chat/socket", { websocket: true }, (socket) => gateway.handle(socket));
    },
    async start() {
      await subscriber.subscribe(channel);
      subscribedOnce = true;
      await delivery.start();
      log.info({ instanceId, channel, groupId: declaration.name, inputs }, "chat gateway ready");
    },
    async health() {
      return { redis: redis.status === "ready", notifications: subscriber.status === "ready", delivery: delivery.healthy() };
    },
    probes: () => [["redis", redisProbe(redis)]],
    async close() {
      await delivery.close().catch((error: unknown) => log.warn({ err: errorMessage(error) }, "delivery consumer did not leave cleanly"));
      subscriber.disconnect();
      redis.disconnect();
    },
  };
};
