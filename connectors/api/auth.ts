import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError, calling } from "./errors.js";
import type { Guard } from "./guard.js";
import { rateHeaders } from "./guard.js";
import type { ApiKey, KeyVerifier, Scope } from "./keys.js";
import { CSRF_HEADER, isSafeMethod, sessionIdOf, type ConsoleSessions } from "./sessions.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The scope a route needs; a route without one is public (the OpenAPI document, the docs). */
    scope?: Scope;
    /** The route counts its requests against the rate limit itself (with its idempotency claim, in one round trip). */
    admitsItself?: boolean;
  }
  interface FastifyRequest {
    apiKey?: ApiKey;
    /** True when the key came from a console session cookie rather than a header. */
    viaConsoleSession?: boolean;
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
 * or `X-Api-Key: <key>`, or the agent console's session cookie, which acts as the key that signed
 * in), checked before the body is read; then its request is counted against the key's rate
 * limit, unless the route does that itself.
 *
 * A cookie is sent by the browser whoever made the page that sends the request, so a
 * cookie-authenticated request that changes something must also carry `X-Switchboard-Console: 1`:
 * a page of another site cannot set a custom header on a cross-site request without CORS
 * consent, which this API never gives (and SameSite=Strict keeps the cookie off such requests
 * in the first place). A header-authenticated request needs no such proof: no browser adds it.
 */
export function requireApiKeys(app: FastifyInstance, verifier: KeyVerifier, guard: Guard, sessions: ConsoleSessions): void {
  app.addHook("onRequest", async (request, reply) => {
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    const token = tokenOf(request);
    let key: ApiKey | undefined;
    const sentKey = request.headers.authorization !== undefined || request.headers["x-api-key"] !== undefined;
    if (token === undefined || token === "") {
      // A key header that says nothing usable is a client's mistake, not a reason to fall back on a cookie.
      const sessionId = sentKey ? undefined : sessionIdOf(request);
      if (sessionId === undefined) {
        throw new ApiError(401, "missing_api_key", "send an API key: Authorization: Bearer <key> (or X-Api-Key), or sign in at /console/login", { headers: CHALLENGE });
      }
      const keyId = await sessions.keyOf(sessionId);
      key = keyId === undefined ? undefined : await calling("postgres", () => verifier.byId(keyId));
      if (!key) throw new ApiError(401, "session_expired", "the console session has expired or was ended; sign in again at /console/login", { headers: CHALLENGE });
      if (!isSafeMethod(request.method) && request.headers[CSRF_HEADER] !== "1") {
        throw new ApiError(403, "csrf_header_required", "a request authenticated by the console's cookie that changes something must send X-Switchboard-Console: 1");
      }
      request.viaConsoleSession = true;
    } else {
      key = await calling("postgres", () => verifier.verify(token));
      if (!key) throw new ApiError(401, "invalid_api_key", "this API key is unknown or revoked", { headers: CHALLENGE });
    }
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
