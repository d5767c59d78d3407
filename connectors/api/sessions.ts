import { createHash, randomBytes } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Redis } from "ioredis";
import { calling } from "./errors.js";

/**
 * The agent console's sign-in sessions: a person signs in with an API key once, and the browser
 * then holds only a random session id in an HttpOnly, SameSite=Strict cookie, which scripts on
 * the page cannot read and other sites cannot make the browser send. Redis keeps the session
 * (the key's id, never its secret) for consoleSessionTtlSeconds; the session acts as its key,
 * so revoking the key ends it (within the key cache's period).
 */

export const SESSION_COOKIE = "sb_console";

/** Cookie-authenticated requests that change something must carry this header: see README "Agent console". */
export const CSRF_HEADER = "x-switchboard-console";

const PREFIX = "switchboard:console:session";
// Only a digest of the id is a Redis key: whoever can list Redis's keys cannot take a session over.
const sessionKey = (id: string) => `${PREFIX}:${createHash("sha256").update(id).digest("hex")}`;
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export interface ConsoleSessions {
  /** A new session for the key; returns its id, for the cookie. */
  create(keyId: string): Promise<string>;
  /** The key id of a live session, or undefined for an unknown, expired or malformed id. */
  keyOf(sessionId: string): Promise<string | undefined>;
  end(sessionId: string): Promise<void>;
  readonly ttlSeconds: number;
}

export function createConsoleSessions(redis: Redis, ttlSeconds: number): ConsoleSessions {
  return {
    ttlSeconds,
    async create(keyId) {
      const id = randomBytes(32).toString("base64url");
      await calling("redis", () => redis.set(sessionKey(id), keyId, "EX", ttlSeconds));
      return id;
    },
    async keyOf(sessionId) {
      if (!SESSION_ID.test(sessionId)) return undefined;
      return (await calling("redis", () => redis.get(sessionKey(sessionId)))) ?? undefined;
    },
    async end(sessionId) {
      if (SESSION_ID.test(sessionId)) await calling("redis", () => redis.del(sessionKey(sessionId)));
    },
  };
}

/** The session id the request's Cookie header carries, if any. */
export function sessionIdOf(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === SESSION_COOKIE) return decodeURIComponent(value.join("="));
  }
  return undefined;
}

/** Secure when the browser reached us over TLS (directly or through a proxy that says so). */
const secure = (request: FastifyRequest) => request.protocol === "https" || request.headers["x-forwarded-proto"] === "https";

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, sessionId: string, ttlSeconds: number): void {
  reply.header(
    "set-cookie",
    `${SESSION_COOKIE}=${sessionId}; Path=/; Max-Age=${ttlSeconds}; HttpOnly; SameSite=Strict${secure(request) ? "; Secure" : ""}`,
  );
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.header("set-cookie", `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${secure(request) ? "; Secure" : ""}`);
}

/** GET, HEAD and OPTIONS change nothing; every other method needs the CSRF header with cookie authentication. */
export const isSafeMethod = (method: string) => method === "GET" || method === "HEAD" || method === "OPTIONS";
