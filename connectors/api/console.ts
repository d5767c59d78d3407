import { readFile } from "node:fs/promises";
import path from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { WEB_DIR, servePages } from "../pages.js";
import { ApiError, calling } from "./errors.js";
import type { Guard } from "./guard.js";
import type { ApiKey, KeyVerifier } from "./keys.js";
import { CSRF_HEADER, clearSessionCookie, sessionIdOf, setSessionCookie, type ConsoleSessions } from "./sessions.js";
import { ERROR } from "./schemas.js";

/**
 * The agent console's pages (web/console/) and its sign-in: `/console/login` takes an API key
 * with the `agent` scope and answers with the session cookie (sessions.ts); `/console` (the
 * review queue), `/console/models` (the model page) and `/status` (the status page, from
 * Prometheus: status.ts) are served only to a signed-in agent, anyone else is sent to the login
 * page. The pages hold no data: they read it from the /v1 API with the cookie, which
 * requireApiKeys (auth.ts) accepts as the key that signed in.
 */

const PAGES = { login: "login.html", queue: "index.html", models: "models.html", status: "status.html" } as const;

/** The pages load only this origin's scripts, styles and data, and may not be framed (clickjacking). */
const PAGE_HEADERS = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

const LOGIN_BODY = {
  type: "object",
  title: "ConsoleLogin",
  properties: { api_key: { type: "string", minLength: 1, maxLength: 200, description: "An API key with the agent scope (`switchboard api-keys create --scopes agent,label,read`)." } },
  required: ["api_key"],
  additionalProperties: false,
};

export interface ConsoleOptions {
  readonly sessions: ConsoleSessions;
  readonly verifier: KeyVerifier;
  readonly guard: Guard;
}

/** The key of the request's live console session, if it has one and the key may still use the console. */
async function sessionKey(request: FastifyRequest, { sessions, verifier }: ConsoleOptions): Promise<ApiKey | undefined> {
  const sessionId = sessionIdOf(request);
  if (sessionId === undefined) return undefined;
  const keyId = await sessions.keyOf(sessionId);
  const key = keyId === undefined ? undefined : await calling("postgres", () => verifier.byId(keyId));
  return key?.scopes.includes("agent") ? key : undefined;
}

export async function consoleRoutes(app: FastifyInstance, options: ConsoleOptions): Promise<void> {
  const { sessions, verifier, guard } = options;

  const page = async (reply: FastifyReply, name: keyof typeof PAGES) =>
    reply
      .type("text/html; charset=utf-8")
      .headers(PAGE_HEADERS)
      .send(await readFile(path.join(WEB_DIR, "console", PAGES[name])));

  const signedIn = (name: "queue" | "models" | "status") => async (request: FastifyRequest, reply: FastifyReply) => {
    if (!(await sessionKey(request, options))) {
      const next = encodeURIComponent(request.url);
      return reply.code(303).header("location", `/console/login?next=${next}`).header("cache-control", "no-store").send();
    }
    return page(reply, name);
  };

  const hidden = { schema: { hide: true } };
  app.get("/console", hidden, signedIn("queue"));
  app.get("/console/models", hidden, signedIn("models"));
  // The on-call view: what `switchboard status` shows, with charts (web/console/status.*).
  app.get("/status", hidden, signedIn("status"));
  app.get("/console/login", hidden, async (_request, reply) => page(reply, "login"));

  app.post(
    "/console/login",
    {
      schema: {
        summary: "Sign in to the agent console",
        description:
          "Exchanges an API key with the agent scope for a session cookie (sb_console: HttpOnly, SameSite=Strict, for SWITCHBOARD_CONSOLE_SESSION_TTL_SECONDS). The cookie then authenticates the /v1 routes as that key; a cookie-authenticated request that changes something must send X-Switchboard-Console: 1.",
        tags: ["console"],
        body: LOGIN_BODY,
        security: [],
        response: { 204: { type: "null", description: "Signed in: the Set-Cookie header carries the session." }, ...Object.fromEntries([400, 401, 403, 415, 422, 429, 503].map((s) => [s, ERROR])) },
      },
    },
    async (request, reply) => {
      // Per client address: a flood of guesses costs the guesser, not the keys' own limits.
      await guard.admit(`console-login:${request.ip}`);
      const { api_key: token } = request.body as { api_key: string };
      const key = await calling("postgres", () => verifier.verify(token.trim()));
      if (!key) throw new ApiError(401, "invalid_api_key", "this API key is unknown or revoked");
      if (!key.scopes.includes("agent")) {
        throw new ApiError(403, "insufficient_scope", `this API key lacks the agent scope the console needs (it has: ${key.scopes.join(", ")})`);
      }
      const sessionId = await sessions.create(key.id);
      setSessionCookie(request, reply, sessionId, sessions.ttlSeconds);
      request.log.info({ keyId: key.id, keyName: key.name }, "console sign-in");
      return reply.code(204).header("cache-control", "no-store").send();
    },
  );

  app.post(
    "/console/logout",
    {
      schema: {
        summary: "Sign out of the agent console",
        description: "Ends the session the cookie names and clears the cookie. Needs X-Switchboard-Console: 1, as every cookie-authenticated request that changes something.",
        tags: ["console"],
        security: [],
        response: { 204: { type: "null", description: "Signed out." }, 403: ERROR, 503: ERROR },
      },
    },
    async (request, reply) => {
      if (request.headers[CSRF_HEADER] !== "1") {
        throw new ApiError(403, "csrf_header_required", "sign out from the console page (the request must send X-Switchboard-Console: 1)");
      }
      const sessionId = sessionIdOf(request);
      if (sessionId !== undefined) await sessions.end(sessionId);
      clearSessionCookie(request, reply);
      return reply.code(204).send();
    },
  );

  // The pages' scripts and styles (and web/common/), as files. A page's HTML is only served by the
  // routes above, so a request for it by file name goes there (and through the session check).
  await app.register(async (files) => {
    files.addHook("onRequest", async (request, reply) => {
      const pathname = request.url.split("?")[0]!;
      const canonical: Record<string, string> = { "/console/": "/console", "/console/index.html": "/console", "/console/models.html": "/console/models", "/console/login.html": "/console/login", "/console/status.html": "/status" };
      const to = canonical[pathname];
      if (to !== undefined) return reply.code(301).header("location", to).send();
      return undefined;
    });
    await servePages(files, "console", "/console");
  });
}
