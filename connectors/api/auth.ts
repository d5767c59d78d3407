import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError, calling } from "./errors.js";
import type { Guard } from "./guard.js";
import { rateHeaders } from "./guard.js";
import type { ApiKey, KeyVerifier, Scope } from "./keys.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The scope a route needs; a route without one is public (the OpenAPI document, the docs). */
    scope?: Scope;
    /** The route counts its requests against the rate limit itself (with its idempotency claim, in one round trip). */
    admitsItself?: boolean;
  }
  interface FastifyRequest {
    apiKey?: ApiKey;
  }
}

const CHALLENGE = { "www-authenticate": 'Bearer realm="switchboard"' };

function tokenOf(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match?.[1];
  }
  const header = request.headers["x-api-key"];
  return typeof header === "string" ? header.trim() : undefined;
}

/**
 * Every route with a scope needs a live API key with that scope (`Authorization: Bearer <key>`
 * or `X-Api-Key: <key>`), checked before the body is read; then its request is counted against
 * the key's rate limit, unless the route does that itself.
 */
export function requireApiKeys(app: FastifyInstance, verifier: KeyVerifier, guard: Guard): void {
  app.addHook("onRequest", async (request, reply) => {
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    const token = tokenOf(request);
    if (token === undefined || token === "") {
      throw new ApiError(401, "missing_api_key", "send an API key: Authorization: Bearer <key> (or X-Api-Key)", { headers: CHALLENGE });
    }
    const key = await calling("postgres", () => verifier.verify(token));
    if (!key) throw new ApiError(401, "invalid_api_key", "this API key is unknown or revoked", { headers: CHALLENGE });
    if (!key.scopes.includes(scope)) {
      throw new ApiError(403, "insufficient_scope", `this API key lacks the ${scope} scope (it has: ${key.scopes.join(", ")})`);
    }
    request.apiKey = key;
    if (!request.routeOptions.config.admitsItself) reply.headers(rateHeaders(await guard.admit(key.id)));
  });
}

/** The key the onRequest hook verified; only routes with a scope call this. */
export function apiKeyOf(request: FastifyRequest): ApiKey {
  if (!request.apiKey) throw new Error(`route ${request.routeOptions.url ?? "?"} has no scope, so no verified API key`);
  return request.apiKey;
}
