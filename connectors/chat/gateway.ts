import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { RawData, WebSocket } from "ws";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { errorMessage } from "../../streams/errors.js";
import { IntakeUnavailableError, type Intake } from "../intake.js";
import type { ConnectorMetrics } from "../metrics.js";
import type { ChatMetrics } from "./metrics.js";
import { CLOSE, FrameError, parseFrame, type ClientFrame, type CloseReason, type ErrorCode } from "./protocol.js";
import { CLAIM_TTL_MS, compareReplyIds, parseStored, type ChatStore, type MailboxEntry, type StoredMessage } from "./store.js";
import { ChatTokenError, verifyChatToken, type ChatSession } from "./tokens.js";

/**
 * The sockets of one gateway instance. A socket says hello with its session token; the session
 * is then held here (session → instance in Redis), and every reply the delivery consumer appends
 * to the session's mailbox is read from there and written to the socket after the socket's
 * cursor: once, in mailbox order, on whichever instance holds the session. A customer message
 * becomes an inquiry on inquiries.received, acknowledged once Kafka has it; the same client id
 * sent again (a retry, a reconnect) gets the same inquiry id and publishes nothing twice.
 */

/** The client must say hello within this. */
export const HELLO_TIMEOUT_MS = 5_000;
/** Replies read from a mailbox per round trip. */
const PAGE = 50;
/** Frames a socket may have waiting to be handled; more are refused (rate_limited) rather than queued. */
const MAX_QUEUED_FRAMES = 32;
/** Frames a socket may send per second (a person types, a page confirms a resume's replies); more are dropped unread. */
const MAX_FRAMES_PER_SECOND = 200;
/** How long a close handshake may take before the socket is cut (a client that stopped reading never answers). */
const CLOSE_GRACE_MS = 5_000;
/** How long a resent message waits for the first send of it, still in flight elsewhere, to finish. */
const IN_FLIGHT_WAIT_MS = 6_000;
/** What an error event tells a client to wait before resending while Kafka or Redis is away. */
const UNAVAILABLE_RETRY_MS = 5_000;

export interface GatewaySettings {
  readonly instanceId: string;
  readonly secret: string;
  readonly maxBufferedBytes: number;
  readonly heartbeatMs: number;
  /** Announced in the welcome: how long the page may hear nothing before it pings (and, as long again after, gives the socket up). */
  readonly pagePingMs: number;
  readonly rateLimit: number;
  readonly rateWindowMs: number;
  readonly sessionTtlMs: number;
}

export interface GatewayOptions {
  readonly settings: GatewaySettings;
  readonly store: ChatStore;
  readonly intake: Intake;
  readonly metrics: ChatMetrics;
  readonly connectorMetrics: ConnectorMetrics;
  readonly connector: string;
  readonly log: Logger;
}

export interface Gateway {
  /** Takes a socket the server upgraded. */
  handle(socket: WebSocket): void;
  /** A notification on this instance's channel (a reply in a mailbox, a session taken over). */
  notify(message: string): void;
  /** Reads every held session's mailbox again: after the notification channel was down, a reply may have gone unannounced. */
  catchUp(): void;
  /** Closes every socket with 1001 and waits (briefly) for them to go. */
  shutdown(): Promise<void>;
}

interface Connection {
  readonly id: string;
  readonly socket: WebSocket;
  readonly log: Logger;
  session?: ChatSession;
  /** Id of the last reply written to this socket. */
  cursor: string;
  draining: boolean;
  again: boolean;
  /** A mailbox read failed and another is scheduled. */
  retrying: boolean;
  alive: boolean;
  /** Inquiries acknowledged on this socket whose reply has not come yet: the assistant is "typing". */
  readonly awaiting: Set<string>;
  closeReason?: CloseReason;
  /** The socket's close event has fired: nothing may register it any more. */
  gone: boolean;
  /** The highest reply id confirmed and not yet recorded, and whether a recording is under way. */
  readonly receipts: { latest: string | undefined; busy: boolean };
  /** Frames in the current one-second window, against MAX_FRAMES_PER_SECOND. */
  frameWindow: { second: number; count: number };
  /** For the sockets gauge: waiting for hello, holding a session, or closing (the close handshake under way). */
  state: "hello" | "session" | "closing";
  queue: Promise<void>;
  queued: number;
  /** Replies still to count as resumed (those of the first mailbox read after a reconnect). */
  resuming: boolean;
  timers: NodeJS.Timeout[];
}

export function createGateway(options: GatewayOptions): Gateway {
  const { settings, store, intake, metrics, connectorMetrics, connector } = options;
  const log = options.log.child({ component: "gateway", instance: settings.instanceId });
  const connections = new Set<Connection>();
  const bySession = new Map<string, Set<Connection>>();

  const send = (conn: Connection, frame: { readonly type: string } & Record<string, unknown>): boolean => {
    if (conn.socket.readyState !== conn.socket.OPEN || conn.closeReason) return false;
    conn.socket.send(JSON.stringify(frame));
    metrics.messages.inc({ direction: "out", type: frame.type });
    return true;
  };

  const sendError = (conn: Connection, code: ErrorCode, message: string, extra: { clientId?: string; retryAfterMs?: number } = {}) => {
    connectorMetrics.rejected.inc({ connector, reason: code });
    send(conn, {
      type: "error",
      code,
      message,
      ...(extra.clientId === undefined ? {} : { client_id: extra.clientId }),
      ...(extra.retryAfterMs === undefined ? {} : { retry_after_ms: extra.retryAfterMs }),
    });
  };

  const setState = (conn: Connection, state: Connection["state"]) => {
    metrics.sockets.dec({ state: conn.state });
    metrics.sockets.inc({ state });
    conn.state = state;
  };

  /** Closes with `code`, then cuts the connection if the client does not answer the close in time. */
  const closeWith = (conn: Connection, code: number, reason: CloseReason, text: string) => {
    if (conn.closeReason) return;
    conn.closeReason = reason;
    setState(conn, "closing");
    conn.log.info({ code, reason }, "closing socket");
    conn.socket.close(code, text);
    const cut = setTimeout(() => conn.socket.terminate(), CLOSE_GRACE_MS);
    cut.unref();
    conn.timers.push(cut);
  };

  const tooSlow = (conn: Connection) => conn.socket.bufferedAmount > settings.maxBufferedBytes;

  /** Writes the mailbox's replies after the socket's cursor; one reader per socket at a time, again if told meanwhile. */
  const drain = async (conn: Connection): Promise<void> => {
    const session = conn.session;
    if (!session) return;
    if (conn.draining) {
      conn.again = true;
      return;
    }
    conn.draining = true;
    try {
      do {
        conn.again = false;
        for (;;) {
          // A socket on its way out (closed by either side) takes nothing more; its cursor stays where it is.
          if (conn.closeReason || conn.gone || conn.socket.readyState !== conn.socket.OPEN) return;
          const entries = await store.readAfter(session.sessionId, conn.cursor, PAGE);
          for (const entry of entries) {
            // The replies stay in the mailbox: the client resumes after the last one it saw.
            if (tooSlow(conn)) return closeWith(conn, CLOSE.slowClient, "slow_client", "slow client: replies kept for resume");
            if (!deliver(conn, entry)) return;
          }
          if (tooSlow(conn)) return closeWith(conn, CLOSE.slowClient, "slow_client", "slow client: replies kept for resume");
          if (entries.length < PAGE) break;
        }
      } while (conn.again);
      conn.resuming = false;
    } catch (error) {
      // Redis away: the replies wait in the mailbox; try again shortly (a notification may also come first).
      conn.log.warn({ err: errorMessage(error) }, "mailbox read failed; retrying");
      if (!conn.retrying) {
        conn.retrying = true;
        const retry = setTimeout(() => {
          conn.retrying = false;
          void drain(conn);
        }, 1_000);
        retry.unref();
        conn.timers.push(retry);
      }
    } finally {
      conn.draining = false;
    }
  };

  /** Writes one reply; false when the socket took it no more. */
  const deliver = (conn: Connection, { id, reply }: MailboxEntry): boolean => {
    const sent = send(conn, {
      type: "reply",
      id,
      inquiry_id: reply.inquiry_id,
      text: reply.text,
      author: reply.author,
      agent: reply.agent,
      strategy: reply.strategy,
      sent_at: new Date(reply.sent_at).toISOString(),
    });
    if (!sent) return false;
    conn.cursor = id;
    metrics.replyLatency.observe({ author: reply.author }, Math.max(0, Date.now() - reply.received_at) / 1000);
    if (conn.resuming) metrics.resumedReplies.inc();
    if (conn.awaiting.delete(reply.inquiry_id) && conn.awaiting.size === 0) send(conn, { type: "typing", on: false });
    return true;
  };

  const connectionsOf = (sessionId: string) => [...(bySession.get(sessionId) ?? [])];

  const hello = async (conn: Connection, frame: Extract<ClientFrame, { type: "hello" }>) => {
    let session: ChatSession;
    try {
      session = verifyChatToken(settings.secret, frame.token);
    } catch (error) {
      const expired = error instanceof ChatTokenError && error.reason === "expired";
      connectorMetrics.rejected.inc({ connector, reason: expired ? "token_expired" : "bad_token" });
      return closeWith(conn, expired ? CLOSE.tokenExpired : CLOSE.badToken, expired ? "token_expired" : "bad_token", errorMessage(error).slice(0, 120));
    }
    let attached: Awaited<ReturnType<ChatStore["attach"]>>;
    try {
      attached = await store.attach(session.sessionId, settings.instanceId, conn.id);
    } catch (error) {
      conn.log.warn({ err: errorMessage(error) }, "session not opened: redis unavailable");
      return closeWith(conn, CLOSE.internal, "error", "unavailable: try again shortly");
    }
    if (attached.revoked) {
      connectorMetrics.rejected.inc({ connector, reason: "revoked" });
      return closeWith(conn, CLOSE.revoked, "revoked", "the session was ended");
    }
    // The client may have gone, or been closed, while Redis answered.
    if (conn.closeReason || conn.gone) {
      if (conn.gone) store.detach(session.sessionId, conn.id).catch(() => undefined);
      return;
    }
    conn.session = session;
    conn.timers.forEach(clearTimeout);
    conn.timers.length = 0;
    // The session ends with its token.
    const expiry = setTimeout(() => closeWith(conn, CLOSE.tokenExpired, "token_expired", "the session expired"), Math.min(2 ** 31 - 1, Math.max(0, session.expiresAt - Date.now())));
    expiry.unref();
    conn.timers.push(expiry);
    // Another socket of this session here (a second tab, a reconnect before the old socket noticed) gives way at once.
    for (const other of connectionsOf(session.sessionId)) closeWith(other, CLOSE.replaced, "replaced", "session opened on another socket");
    bySession.set(session.sessionId, new Set([...(bySession.get(session.sessionId) ?? []), conn]));
    setState(conn, "session");
    conn.cursor = frame.resumeAfter ?? attached.acked ?? "0-0";
    conn.resuming = attached.openedBefore;
    if (attached.openedBefore) metrics.resumes.inc();
    conn.log.info({ sessionId: session.sessionId, resumed: attached.openedBefore, cursor: conn.cursor }, "session opened");
    send(conn, { type: "welcome", session_id: session.sessionId, instance: settings.instanceId, resumed: attached.openedBefore, ping_after_ms: settings.pagePingMs });
    // Not awaited: the frames after the hello (messages) need not wait for a long mailbox to be written.
    void drain(conn);
  };

  /** Waits for a send of this client id still in flight (on any instance) to finish. */
  const settled = async (session: ChatSession, clientId: string, stored: StoredMessage): Promise<StoredMessage> => {
    const deadline = Date.now() + IN_FLIGHT_WAIT_MS;
    let current: StoredMessage | undefined = stored;
    while (current?.state === "pending" && Date.now() - current.claimedAt < CLAIM_TTL_MS && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      current = await store.readMessage(session.sessionId, clientId);
    }
    if (!current) throw new Error(`the claim of message ${clientId} vanished`);
    return current;
  };

  const publish = async (conn: Connection, session: ChatSession, clientId: string, text: string, pending: string) => {
    const { inquiryId, receivedAt } = parseStored(pending);
    const inquiry: InquiryReceived = {
      inquiry_id: inquiryId,
      envelope: {
        channel: "chat",
        source_id: `${session.sessionId}:${clientId}`,
        thread_id: session.sessionId,
        customer: session.customer,
        received_at: receivedAt,
        reply_to: session.sessionId,
        metadata: { chat_guest: String(session.guest) },
      },
      subject: null,
      body: text,
      content_type: "text",
    };
    try {
      await intake.publishInquiry(inquiry);
    } catch (error) {
      await store.swapMessage(session.sessionId, clientId, pending, `f|${inquiryId}|${receivedAt}`, settings.sessionTtlMs).catch(() => undefined);
      if (error instanceof IntakeUnavailableError) {
        conn.log.warn({ clientId, inquiryId, err: errorMessage(error) }, "message not taken: Kafka unavailable");
        return sendError(conn, "unavailable", "the message could not be taken now; send it again (same client_id)", { clientId, retryAfterMs: UNAVAILABLE_RETRY_MS });
      }
      throw error;
    }
    // Kafka has it: from now on the same client id answers with this inquiry.
    await store.swapMessage(session.sessionId, clientId, pending, `d|${inquiryId}|${receivedAt}`, settings.sessionTtlMs).catch((error: unknown) => {
      // The claim stays pending; a resend after CLAIM_TTL_MS publishes the same inquiry again (same id), which is harmless.
      conn.log.warn({ clientId, inquiryId, err: errorMessage(error) }, "message published but its claim not completed");
    });
    connectorMetrics.accepted.inc({ connector, kind: "inquiry" });
    conn.log.info({ sessionId: session.sessionId, clientId, inquiryId }, "chat message taken");
    acknowledge(conn, clientId, inquiryId, true);
  };

  /** `fresh`: published just now, so its reply is still to come (a resend's may have been delivered already). */
  const acknowledge = (conn: Connection, clientId: string, inquiryId: string, fresh: boolean) => {
    send(conn, { type: "ack", client_id: clientId, inquiry_id: inquiryId });
    if (!fresh) return;
    if (conn.awaiting.size === 0) send(conn, { type: "typing", on: true });
    conn.awaiting.add(inquiryId);
  };

  const message = async (conn: Connection, session: ChatSession, { clientId, text }: Extract<ClientFrame, { type: "message" }>) => {
    const now = Date.now();
    const fresh = `p|${randomUUID()}|${randomUUID()}|${now}|${now}`;
    let claim: Awaited<ReturnType<ChatStore["claimMessage"]>>;
    try {
      claim = await store.claimMessage(session.sessionId, clientId, fresh, settings.rateLimit, settings.rateWindowMs);
    } catch (error) {
      conn.log.warn({ clientId, err: errorMessage(error) }, "message not taken: redis unavailable");
      return sendError(conn, "unavailable", "the message could not be taken now; send it again (same client_id)", { clientId, retryAfterMs: UNAVAILABLE_RETRY_MS });
    }
    if (claim.kind === "limited") {
      return sendError(conn, "rate_limited", `more than ${settings.rateLimit} messages in ${settings.rateWindowMs / 1000} s; send it again later`, {
        clientId,
        retryAfterMs: claim.retryAfterMs,
      });
    }
    if (claim.kind === "claimed") return publish(conn, session, clientId, text, claim.pending);
    // Sent before: answer as then, or finish what a failed or abandoned send started, under its inquiry id.
    try {
      for (let stored = claim.stored; ; ) {
        stored = await settled(session, clientId, stored);
        if (stored.state === "done") return acknowledge(conn, clientId, stored.inquiryId, false);
        if (stored.state === "pending" && Date.now() - stored.claimedAt < CLAIM_TTL_MS) {
          return sendError(conn, "unavailable", "this message is still being sent; send it again shortly (same client_id)", { clientId, retryAfterMs: 1_000 });
        }
        const retry = `p|${randomUUID()}|${stored.inquiryId}|${stored.receivedAt}|${Date.now()}`;
        if (await store.swapMessage(session.sessionId, clientId, stored.raw, retry, settings.sessionTtlMs)) return await publish(conn, session, clientId, text, retry);
        const current = await store.readMessage(session.sessionId, clientId);
        if (!current) throw new Error(`the claim of message ${clientId} vanished`);
        stored = current;
      }
    } catch (error) {
      conn.log.warn({ clientId, err: errorMessage(error) }, "resent message not settled");
      return sendError(conn, "unavailable", "the message could not be taken now; send it again (same client_id)", { clientId, retryAfterMs: UNAVAILABLE_RETRY_MS });
    }
  };

  /** What a frame says, or why it cannot be taken (thrown errors other than FrameError are bugs). */
  const readFrame = (data: RawData, isBinary: boolean): ClientFrame | FrameError => {
    try {
      if (isBinary) throw new FrameError("invalid_message", "frames are JSON text, not binary");
      return parseFrame(Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString("utf8"));
    } catch (error) {
      if (error instanceof FrameError) return error;
      throw error;
    }
  };

  /**
   * Records the customer's receipts, coalesced: one Redis call at a time per socket, for the
   * highest id confirmed meanwhile (a resume of a hundred replies is confirmed a hundred times).
   */
  const receipt = (conn: Connection, session: ChatSession, id: string) => {
    if (!conn.receipts.latest || compareReplyIds(id, conn.receipts.latest) > 0) conn.receipts.latest = id;
    if (conn.receipts.busy) return;
    conn.receipts.busy = true;
    void (async () => {
      for (let next = conn.receipts.latest; next; next = conn.receipts.latest) {
        conn.receipts.latest = undefined;
        try {
          await store.ack(session.sessionId, next);
        } catch (error) {
          // Only the server-side cursor lags: the client's own resume_after still says where it stands.
          conn.log.debug({ err: errorMessage(error) }, "receipt not recorded");
        }
      }
      conn.receipts.busy = false;
    })();
  };

  const handleFrame = async (conn: Connection, frame: ClientFrame | FrameError) => {
    if (frame instanceof FrameError) {
      if (!conn.session) return closeWith(conn, CLOSE.noHello, "no_hello", `expected hello: ${frame.message}`.slice(0, 120));
      return sendError(conn, frame.code, frame.message, { clientId: frame.clientId });
    }
    metrics.messages.inc({ direction: "in", type: frame.type });
    const session = conn.session;
    if (!session) {
      if (frame.type !== "hello") return closeWith(conn, CLOSE.noHello, "no_hello", "the first frame must be hello");
      return hello(conn, frame);
    }
    switch (frame.type) {
      case "hello":
        return sendError(conn, "invalid_message", "this socket has said hello already");
      case "message":
        return message(conn, session, frame);
      case "typing":
        // The customer is typing: nobody listens for it yet (an agent's view of it would subscribe here).
        return;
      case "received":
        return receipt(conn, session, frame.id);
      case "ping":
        // A ping queued behind the hello (sent with it): answered once the session is open.
        send(conn, { type: "pong" });
        return;
    }
  };

  const heartbeat = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        conn.closeReason ??= "heartbeat";
        conn.log.info("no pong since the last ping; closing");
        conn.socket.terminate();
        continue;
      }
      conn.alive = false;
      conn.socket.ping();
    }
  }, settings.heartbeatMs);
  heartbeat.unref();

  return {
    handle(socket) {
      const id = randomUUID();
      const conn: Connection = {
        id,
        socket,
        // No client address in the logs: it says who the customer is.
        log: log.child({ conn: id }),
        cursor: "0-0",
        draining: false,
        again: false,
        retrying: false,
        alive: true,
        awaiting: new Set(),
        queue: Promise.resolve(),
        queued: 0,
        resuming: false,
        gone: false,
        receipts: { latest: undefined, busy: false },
        frameWindow: { second: 0, count: 0 },
        state: "hello",
        timers: [],
      };
      connections.add(conn);
      metrics.sockets.inc({ state: "hello" });
      const timer = setTimeout(() => closeWith(conn, CLOSE.noHello, "no_hello", `no hello within ${HELLO_TIMEOUT_MS / 1000} s`), HELLO_TIMEOUT_MS);
      timer.unref();
      conn.timers.push(timer);

      socket.on("pong", () => {
        conn.alive = true;
      });
      socket.on("error", (error: Error & { code?: string }) => {
        conn.closeReason ??= error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? "too_big" : "error";
        conn.log.info({ err: error.message, code: error.code }, "socket error");
      });
      socket.on("message", (data, isBinary) => {
        const second = Math.floor(Date.now() / 1000);
        if (conn.frameWindow.second !== second) conn.frameWindow = { second, count: 0 };
        conn.frameWindow.count += 1;
        if (conn.frameWindow.count > MAX_FRAMES_PER_SECOND) {
          if (!conn.session) return closeWith(conn, CLOSE.noHello, "no_hello", "frames before hello");
          // Told once per window, not once per frame: the answers must not outgrow the flood.
          if (conn.frameWindow.count === MAX_FRAMES_PER_SECOND + 1) sendError(conn, "rate_limited", `more than ${MAX_FRAMES_PER_SECOND} frames a second; frames dropped`, { retryAfterMs: 1_000 });
          return;
        }
        const frame = readFrame(data, isBinary);
        // Receipts, typing notices and pings cost nothing to wait for: taken at once, never queued behind a message being
        // published (a pong that waited for Kafka would tell a live page its connection is dead), and never counted against
        // the session's message limit.
        if (conn.session && !(frame instanceof FrameError) && (frame.type === "received" || frame.type === "typing" || frame.type === "ping")) {
          metrics.messages.inc({ direction: "in", type: frame.type });
          if (frame.type === "received") receipt(conn, conn.session, frame.id);
          else if (frame.type === "ping") send(conn, { type: "pong" });
          return;
        }
        if (conn.queued >= MAX_QUEUED_FRAMES) {
          if (!conn.session) return closeWith(conn, CLOSE.noHello, "no_hello", "frames before hello");
          return sendError(conn, "rate_limited", "too many messages at once; wait for their acks", { retryAfterMs: 1_000 });
        }
        conn.queued += 1;
        // One frame at a time, in order: a hello is settled before the frames after it, messages are published in the order sent.
        conn.queue = conn.queue
          .then(() => handleFrame(conn, frame))
          .catch((error: unknown) => {
            conn.log.error({ err: errorMessage(error) }, "frame failed");
            closeWith(conn, CLOSE.internal, "error", "internal error");
          })
          .finally(() => {
            conn.queued -= 1;
          });
      });
      socket.on("close", (code: number) => {
        conn.gone = true;
        conn.timers.forEach(clearTimeout);
        connections.delete(conn);
        const reason: CloseReason = conn.closeReason ?? (code === CLOSE.tooBig ? "too_big" : "client");
        metrics.closes.inc({ reason });
        const session = conn.session;
        metrics.sockets.dec({ state: conn.state });
        conn.log.info({ code, reason, sessionId: session?.sessionId }, "socket closed");
        if (!session) return;
        const held = bySession.get(session.sessionId);
        held?.delete(conn);
        if (held?.size === 0) bySession.delete(session.sessionId);
        store.detach(session.sessionId, conn.id).catch((error: unknown) => conn.log.debug({ err: errorMessage(error) }, "session not detached"));
      });
    },

    notify(raw) {
      let note: { kind?: string; session?: string; conn?: string };
      try {
        note = JSON.parse(raw) as typeof note;
      } catch {
        return log.warn({ raw: raw.slice(0, 200) }, "unreadable notification");
      }
      if (typeof note.session !== "string") return;
      for (const conn of connectionsOf(note.session)) {
        if (note.kind === "reply") void drain(conn);
        else if (note.kind === "takeover" && note.conn !== conn.id) closeWith(conn, CLOSE.replaced, "replaced", "session opened on another socket");
        else if (note.kind === "revoked") closeWith(conn, CLOSE.revoked, "revoked", "the session was ended");
      }
    },

    catchUp() {
      for (const conn of connections) void drain(conn);
    },

    async shutdown() {
      clearInterval(heartbeat);
      for (const conn of connections) closeWith(conn, CLOSE.shuttingDown, "shutdown", "gateway shutting down: reconnect");
      const deadline = Date.now() + 3_000;
      while (connections.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      for (const conn of connections) conn.socket.terminate();
    },
  };
}
