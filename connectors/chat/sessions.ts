import type { Customer } from "../../schemas/types.generated.js";
import { mintChatToken } from "./tokens.js";

/** What opening a chat session answers, on the gateway (guests) and the API (integrations). */
export interface SessionCreated {
  readonly session_id: string;
  readonly token: string;
  /** ISO 8601. */
  readonly expires_at: string;
}

export const SESSION_CREATED = {
  type: "object",
  title: "ChatSession",
  description: "A chat session: the page says hello on the gateway's socket with its token.",
  properties: {
    session_id: { type: "string", description: "The session: the thread id and reply address of the inquiries it sends." },
    token: { type: "string", description: "Signed session token (HMAC-SHA256), valid until expires_at; the first frame on /chat/socket carries it." },
    expires_at: { type: "string", format: "date-time" },
  },
  required: ["session_id", "token", "expires_at"],
  additionalProperties: false,
} as const;

/** A new session for a customer (a guest has at most a name). */
export function issueChatSession(
  secret: string,
  options: { readonly customer: Partial<Customer>; readonly ttlSeconds: number; readonly guest: boolean },
): SessionCreated {
  const { token, session } = mintChatToken(secret, options);
  return { session_id: session.sessionId, token, expires_at: new Date(session.expiresAt).toISOString() };
}
