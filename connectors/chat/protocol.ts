import { REPLY_ID } from "./store.js";

/**
 * The chat socket's protocol (README, "Chat gateway"): JSON text frames. The client says hello
 * with its token first, then sends messages, typing notices, receipts and pings; the gateway
 * answers with welcome (which says how long the client may hear nothing before it pings), acks,
 * typing, replies, errors and pongs. A ping is the page's own liveness check: a browser cannot
 * see WebSocket ping frames, so without it an idle page never learns that its connection died
 * without a close. Parsing here is pure: what a frame says, or why it is refused.
 */

/** Close codes: 1xxx as RFC 6455 defines them, 4xxx the gateway's own. */
export const CLOSE = {
  shuttingDown: 1001,
  tooBig: 1009,
  internal: 1011,
  badToken: 4001,
  tokenExpired: 4002,
  noHello: 4003,
  slowClient: 4008,
  replaced: 4009,
  revoked: 4010,
} as const;

/** Why a socket closed, for `switchboard_chat_closes_total{reason}`. */
export type CloseReason =
  | "client"
  | "bad_token"
  | "token_expired"
  | "no_hello"
  | "slow_client"
  | "replaced"
  | "revoked"
  | "too_big"
  | "heartbeat"
  | "shutdown"
  | "error";

/** Longest a customer message may be, in characters: a chat line, not an email (the frame limit is chatMaxMessageBytes). */
export const MAX_TEXT_CHARS = 4_000;
/** A client id: the client's uuid for the message (any id of its own, within these characters). */
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,100}$/;
/** Text may hold tabs and line breaks, not other control characters. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
/** Half a surrogate pair is valid JSON but not text. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export type ClientFrame =
  | { readonly type: "hello"; readonly token: unknown; readonly resumeAfter: string | null }
  | { readonly type: "message"; readonly clientId: string; readonly text: string }
  | { readonly type: "typing" }
  | { readonly type: "received"; readonly id: string }
  | { readonly type: "ping" };

export type ErrorCode = "rate_limited" | "invalid_message" | "too_long" | "unavailable";

export class FrameError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly clientId?: string,
  ) {
    super(message);
    this.name = "FrameError";
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** What a text frame says; throws FrameError with the reason it cannot be taken. */
export function parseFrame(data: string): ClientFrame {
  let frame: unknown;
  try {
    frame = JSON.parse(data);
  } catch {
    throw new FrameError("invalid_message", "a frame must be a JSON object");
  }
  if (!isObject(frame) || typeof frame.type !== "string") throw new FrameError("invalid_message", 'a frame must be a JSON object with a "type"');
  switch (frame.type) {
    case "hello": {
      const resume = frame.resume_after ?? null;
      if (resume !== null && (typeof resume !== "string" || !REPLY_ID.test(resume))) {
        throw new FrameError("invalid_message", "resume_after must be the id of a reply this session received, or null");
      }
      return { type: "hello", token: frame.token, resumeAfter: resume };
    }
    case "message": {
      const clientId = typeof frame.client_id === "string" && CLIENT_ID.test(frame.client_id) ? frame.client_id : undefined;
      if (!clientId) throw new FrameError("invalid_message", "a message needs a client_id (1-100 letters, digits, . _ : -), unique per message");
      const text = frame.text;
      if (typeof text !== "string" || text.trim() === "") throw new FrameError("invalid_message", "a message needs a text that is not blank", clientId);
      if (text.length > MAX_TEXT_CHARS) throw new FrameError("too_long", `a message may be ${MAX_TEXT_CHARS} characters at most (this one has ${text.length})`, clientId);
      if (CONTROL.test(text) || LONE_SURROGATE.test(text)) throw new FrameError("invalid_message", "the text holds control characters or half a surrogate pair", clientId);
      return { type: "message", clientId, text };
    }
    case "typing":
      return { type: "typing" };
    case "received": {
      if (typeof frame.id !== "string" || !REPLY_ID.test(frame.id)) throw new FrameError("invalid_message", "received needs the id of a reply");
      return { type: "received", id: frame.id };
    }
    case "ping":
      return { type: "ping" };
    default:
      throw new FrameError("invalid_message", `unknown frame type ${JSON.stringify(frame.type).slice(0, 40)}`);
  }
}
