import { Client } from "@elastic/elasticsearch";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { createPool } from "../../storage/postgres.js";
import { elasticsearchProbe, postgresProbe, redisProbe } from "../../streams/dependency-probes.js";
import { errorMessage } from "../../streams/errors.js";
import type { ConnectorFactory } from "../connector.js";
import { connectorRedis } from "../redis.js";
import { ticketWebhooks } from "../tickets/index.js";
import { requireApiKeys } from "./auth.js";
import { chatSessionRoutes } from "./chat-sessions.js";
import { consoleRoutes } from "./console.js";
import { createGuard } from "./guard.js";
import { answerErrors, readJsonStrictly } from "./http.js";
import { inquiryRoutes } from "./inquiries.js";
import { createKeyVerifier } from "./keys.js";
import { knownClasses, labelRoutes } from "./labeling.js";
import { modelRoutes } from "./models.js";
import { ratingRoutes } from "./rating.js";
import { reviewRoutes } from "./review.js";
import { searchRoutes } from "./search.js";
import { createConsoleSessions } from "./sessions.js";
import { statusRoutes } from "./status.js";
import { prometheusReader, prometheusUrl } from "../../monitoring/status.js";
import { elasticsearchOptions } from "../../config/security.js";

/** Longest a publish may take (the intake's timeout) plus margin: a claim older than this belongs to a request that died. */
const CLAIM_TTL_MS = 30_000;

/**
 * The REST API (`switchboard run api`): inquiries in (202 once Kafka has them), their status
 * from the archive and search over the index, human labels onto predictions.feedback; API keys
 * with scopes, per-key rate limits and Idempotency-Key in Redis; an OpenAPI 3.1 document at
 * /openapi.json generated from the route schemas, which derive from the Avro contracts; and the
 * ticket webhooks (connectors/tickets), which share its process, Redis and PostgreSQL; and the
 * agent console (web/console/: the review queue, labels and replies, the model page, and the
 * status page at /status, charted from Prometheus), whose sign-in makes a session cookie that
 * authenticates the same routes as the key that signed in.
 */
export const api: ConnectorFactory = ({ config, endpoints, log, ...deps }) => {
  const redis = connectorRedis(endpoints, log, { commandTimeoutMs: 1_000, whileDown: "refusing requests with 503" });
  const pool = createPool(endpoints, "api");
  const es = new Client({ ...elasticsearchOptions(endpoints), requestTimeout: 5_000, maxRetries: 1 });
  const guard = createGuard(redis, {
    rateLimit: config.apiRateLimit,
    rateWindowMs: config.apiRateWindowMs,
    idempotencyTtlMs: config.apiIdempotencyTtlMs,
    claimTtlMs: CLAIM_TTL_MS,
    inProgressWaitMs: 5_000,
  });
  const verifier = createKeyVerifier(pool, config.apiKeyCacheMs, (error) => log.warn({ err: errorMessage(error) }, "API key last use not recorded"));
  const connectorDeps = { config, endpoints, log, ...deps };
  const sessions = createConsoleSessions(redis, config.consoleSessionTtlSeconds);
  const classesOf = knownClasses(pool, config.modelsDir, config.registrySchema, config.routingRules);

  return {
    async routes(app: FastifyInstance) {
      await app.register(swagger, {
        openapi: {
          openapi: "3.1.0",
          info: {
            title: "Switchboard API",
            version: "1",
            description: "Customer inquiries in, their triage out: routing, drafted replies, search, and human labels for the learning loop.",
          },
          components: {
            securitySchemes: {
              bearer: { type: "http", scheme: "bearer", description: "An API key from `switchboard api-keys create`." },
              apiKey: { type: "apiKey", in: "header", name: "X-Api-Key", description: "The same key, in its own header." },
              consoleSession: {
                type: "apiKey",
                in: "cookie",
                name: "sb_console",
                description: "The agent console's session (POST /console/login); requests that change something also send X-Switchboard-Console: 1.",
              },
            },
          },
          security: [{ bearer: [] }, { apiKey: [] }, { consoleSession: [] }],
        },
      });
      await app.register(swaggerUi, { routePrefix: "/docs" });
      app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
      await app.register(async (scope) => {
        readJsonStrictly(scope, config.apiBodyLimitBytes);
        answerErrors(scope, connectorDeps.declaration.name, connectorDeps.metrics);
        requireApiKeys(scope, verifier, guard, sessions);
        inquiryRoutes(scope, connectorDeps, guard, pool);
        searchRoutes(scope, es, config.inquiryIndex);
        labelRoutes(scope, connectorDeps, pool, classesOf);
        ratingRoutes(scope, connectorDeps, pool);
        chatSessionRoutes(scope, connectorDeps, redis);
        reviewRoutes(scope, connectorDeps, pool, classesOf);
        modelRoutes(scope, pool, config.registrySchema);
        statusRoutes(scope, { reader: prometheusReader(prometheusUrl(config)), pool, config });
        await consoleRoutes(scope, { sessions, verifier, guard });
      });
      // The ticket webhooks read their bodies, and authenticate, their own way (signatures, not API keys).
      await app.register(ticketWebhooks(connectorDeps, { redis, pool }));
    },
    async health() {
      const postgres = await pool.query("SELECT 1").then(
        () => true,
        () => false,
      );
      return { redis: redis.status === "ready", postgres };
    },
    probes: () => [
      ["redis", redisProbe(redis)],
      ["postgres", postgresProbe(pool)],
      ["elasticsearch", elasticsearchProbe(es)],
    ],
    async close() {
      redis.disconnect();
      await verifier.settle();
      await Promise.all([pool.end(), es.close()]);
    },
  };
};
