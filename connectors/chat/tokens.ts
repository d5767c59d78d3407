import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Config } from "../../config/settings.js";
import type { Customer } from "../../schemas/types.generated.js";

/**
 * Chat session tokens: `v1.<payload>.<signature>`, the payload base64url JSON (session id,
 * customer, issued and expiry times in seconds), the signature base64url HMAC-SHA256 of
 * `v1.<payload>` under the chat token secret. The API (for integrations) and the gateway (for
 * guests) issue them; every gateway instance verifies them without a look-up, so a session
 * survives any instance. Nothing secret is in the payload: the customer's own details, which
 * the customer's browser holds anyway.
 */

const VERSION = "v1";

/** Who a token speaks for: its session and the customer the integration vouched for. */
export interface ChatSession {
  readonly sessionId: string;
  readonly customer: Customer;
  /** Unix ms. */
  readonly expiresAt: number;
  /** Guest session (made by the gateway for any visitor) or one an integration issued through the API. */
  readonly guest: boolean;
}

export type TokenRefusal = "invalid" | "expired";

export class ChatTokenError extends Error {
  constructor(
    readonly reason: TokenRefusal,
    message: string,
  ) {
    super(message);
    this.name = "ChatTokenError";
  }
}

interface Payload {
  readonly sid: string;
  readonly cus: { readonly id: string | null; readonly email: string | null; readonly name: string | null; readonly tier: string | null };
  readonly iat: number;
  readonly exp: number;
  readonly g: boolean;
}

const sign = (secret: string, body: string) => createHmac("sha256", secret).update(body).digest();

/** A new session for `customer`, valid for `ttlSeconds`: its token and what it says. */
export function mintChatToken(
  secret: string,
  options: { readonly customer?: Partial<Customer>; readonly ttlSeconds: number; readonly guest: boolean; readonly now?: number },
): { readonly token: string; readonly session: ChatSession } {
  const now = options.now ?? Date.now();
  const issued = Math.floor(now / 1000);
  const payload: Payload = {
    sid: randomUUID(),
    cus: {
      id: options.customer?.id ?? null,
      email: options.customer?.email ?? null,
      name: options.customer?.name ?? null,
      tier: options.customer?.tier ?? null,
    },
    iat: issued,
    exp: issued + options.ttlSeconds,
    g: options.guest,
  };
  const body = `${VERSION}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
  return { token: `${body}.${sign(secret, body).toString("base64url")}`, session: sessionOf(payload) };
}

const sessionOf = (payload: Payload): ChatSession => ({
  sessionId: payload.sid,
  customer: payload.cus,
  expiresAt: payload.exp * 1000,
  guest: payload.g,
});

const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const nullableString = (value: unknown) => value === null || typeof value === "string";

/** The session a token speaks for; throws ChatTokenError (invalid: forged, altered or garbled; expired). */
export function verifyChatToken(secret: string, token: unknown, now = Date.now()): ChatSession {
  if (typeof token !== "string" || token.length > 4_096) throw new ChatTokenError("invalid", "the token is not a chat session token");
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== VERSION) throw new ChatTokenError("invalid", "the token is not a chat session token");
  const given = Buffer.from(parts[2]!, "base64url");
  const expected = sign(secret, `${parts[0]}.${parts[1]}`);
  // Same length first (timingSafeEqual demands it); a digest's length says nothing about the key.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new ChatTokenError("invalid", "the token's signature does not match");
  }
  let payload: Payload;
  try {
    payload = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as Payload;
  } catch {
    throw new ChatTokenError("invalid", "the token's payload is not JSON");
  }
  const { sid, cus, exp } = payload ?? {};
  if (
    typeof sid !== "string" ||
    !SESSION_ID.test(sid) ||
    typeof exp !== "number" ||
    typeof cus !== "object" ||
    cus === null ||
    ![cus.id, cus.email, cus.name, cus.tier].every(nullableString)
  ) {
    throw new ChatTokenError("invalid", "the token's payload is malformed");
  }
  if (exp * 1000 <= now) throw new ChatTokenError("expired", `the session expired at ${new Date(exp * 1000).toISOString()}`);
  return sessionOf({ ...payload, g: payload.g === true });
}

/** Where the main job keeps the local chat token secret (beside the webhook secrets, cli/local-access.ts). */
export const chatTokenSecretFile = (stackHome: string) => path.join(stackHome, "secrets", "chat-token-secret");

/**
 * The secret that signs chat tokens: the configured one, else the local one under the stack
 * home, made here if nobody has yet. Made atomically, so that the API and gateway instances
 * starting together on one machine (or sharing the folder) agree on one secret: the loser of
 * the race reads the winner's.
 */
export function chatTokenSecret(config: Pick<Config, "chatTokenSecret" | "stackHome">): string {
  if (config.chatTokenSecret) return config.chatTokenSecret;
  const file = chatTokenSecretFile(config.stackHome);
  const read = () => {
    try {
      return readFileSync(file, "utf8").trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const existing = read();
  if (existing) return existing;
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Written whole to a file of its own, then linked into place: link fails if the name exists,
  // and a reader never sees a half-written secret.
  const draft = `${file}.${process.pid}.${randomUUID()}`;
  try {
    writeFileSync(draft, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
    linkSync(draft, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new Error(`cannot make the chat token secret ${file} (set SWITCHBOARD_CHAT_TOKEN_SECRET instead): ${(error as Error).message}`, { cause: error });
    }
  } finally {
    rmSync(draft, { force: true });
  }
  const made = read();
  if (!made) throw new Error(`the chat token secret ${file} is empty; delete it or set SWITCHBOARD_CHAT_TOKEN_SECRET`);
  return made;
}
