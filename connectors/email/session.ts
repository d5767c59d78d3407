import { ImapFlow, type FetchMessageObject, type ImapFlowError, type ImapFlowOptions } from "imapflow";
import type { Logger } from "pino";
import { errorMessage } from "../../streams/errors.js";
import type { EmailIngest, IngestOutcome } from "./ingest.js";
import type { EmailMetrics } from "./metrics.js";
import type { RefusalReason } from "./mime.js";

/** The keyword of a message whose inquiry Kafka has; it is then moved to the processed mailbox. */
export const PROCESSED_KEYWORD = "$Switchboard";
/** The keyword of a refused message, left where it is; `$SwitchboardReason_<reason>` says why. */
export const REFUSED_KEYWORD = "$SwitchboardRefused";
export const reasonKeyword = (reason: RefusalReason) => `$SwitchboardReason_${reason}`;

/** Messages handled per round (one FETCH of their sizes, then of their sources). */
const CHUNK_MESSAGES = 50;
/** Bytes of message sources fetched at once. */
const CHUNK_BYTES = 64 * 1024 * 1024;
/** Without IDLE events (or with a server that sends none), the mailbox is still looked at this often. */
const POLL_MS = 60_000;
/** After Kafka or Redis failed a round: wait before trying the same messages again. */
const FAILURE_RETRY_MS = 5_000;
const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;

export interface MailboxSessionOptions {
  readonly imapUrl: string;
  readonly mailbox: string;
  readonly processedMailbox: string;
  readonly maxBytes: number;
  readonly ingest: EmailIngest;
  readonly metrics: EmailMetrics;
  readonly log: Logger;
}

export interface MailboxSession {
  /** Runs until `close`: connects, drains the mailbox, waits in IDLE, reconnects with backoff. */
  start(): void;
  /** True while the watched mailbox is open. */
  healthy(): boolean;
  close(): Promise<void>;
}

export function imapOptions(imapUrl: string): ImapFlowOptions {
  const url = new URL(imapUrl);
  const secure = url.protocol === "imaps:";
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : secure ? 993 : 143,
    secure,
    auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) },
  };
}

/** imapflow's own message is often just "Command failed": the server's answer says what failed. */
function describeImapError(error: unknown): string {
  const { responseText, serverResponseCode, executedCommand } = error as ImapFlowError;
  const command = executedCommand?.split(" ").slice(1, 2).join(" ");
  const server = responseText
    ? ` (server: ${serverResponseCode ? `[${serverResponseCode}] ` : ""}${responseText}${command ? `, to ${command}` : ""})`
    : "";
  return `${errorMessage(error)}${server}`;
}

/**
 * The IMAP side of the email connector: one session on the watched mailbox. Each round takes the
 * messages without `$Switchboard` or `$SwitchboardRefused`, oldest first, through the ingest, then
 * flags and moves those Kafka has and flags the refused ones; a message is touched only after its
 * outcome is known, so a crash leaves it to the next round. New mail wakes the session from IDLE.
 */
export function createMailboxSession(options: MailboxSessionOptions): MailboxSession {
  const { mailbox, processedMailbox, maxBytes, ingest, metrics } = options;
  const log = options.log.child({ mailbox });
  let stopping = false;
  let open = false;
  let client: ImapFlow | undefined;
  let running: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  /** Set by new mail (or a closed connection) during a round, so the next wait ends at once. */
  let signalled = false;
  const signal = () => {
    signalled = true;
    wake?.();
  };
  /** Messages deferred by the ingest, by UID, with when to try them again (this session's UIDs only). */
  const deferred = new Map<number, number>();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  /** Acknowledges outcomes on the server: flag and move what Kafka has, flag what was refused. */
  const acknowledge = async (imap: ImapFlow, results: readonly { uid: number; outcome: IngestOutcome }[]) => {
    const done = results
      .filter((r) => r.outcome.kind === "published" || r.outcome.kind === "duplicate")
      .map((r) => r.uid);
    if (done.length > 0) {
      await imap.messageFlagsAdd(done, [PROCESSED_KEYWORD], { uid: true });
      await imap.messageMove(done, processedMailbox, { uid: true });
    }
    const refused = new Map<RefusalReason, number[]>();
    for (const { uid, outcome } of results)
      if (outcome.kind === "refused") refused.set(outcome.reason, [...(refused.get(outcome.reason) ?? []), uid]);
    for (const [reason, uids] of refused)
      await imap.messageFlagsAdd(uids, [REFUSED_KEYWORD, reasonKeyword(reason)], { uid: true });
    for (const { uid, outcome } of results) {
      metrics.messages.inc({ outcome: outcome.kind });
      if (outcome.kind === "deferred") deferred.set(uid, outcome.retryAt);
      else deferred.delete(uid);
    }
  };

  /** One chunk: sizes first (an oversized message is refused unread), then the sources in byte-bounded groups. */
  const handleChunk = async (imap: ImapFlow, uids: readonly number[]): Promise<boolean> => {
    const sized = await imap.fetchAll([...uids], { uid: true, size: true }, { uid: true });
    const results: { uid: number; outcome: IngestOutcome }[] = [];
    const toRead: FetchMessageObject[] = [];
    for (const message of sized) {
      const origin = { source: "imap" as const, mailbox, uid: message.uid };
      if ((message.size ?? 0) > maxBytes)
        results.push({
          uid: message.uid,
          outcome: ingest.refuse(origin, "too_large", `${message.size} bytes, more than the ${maxBytes} accepted`),
        });
      else toRead.push(message);
    }
    let healthy = true;
    while (toRead.length > 0) {
      let bytes = 0;
      const group: number[] = [];
      while (toRead.length > 0 && (group.length === 0 || bytes + (toRead[0]!.size ?? 0) <= CHUNK_BYTES)) {
        const next = toRead.shift()!;
        bytes += next.size ?? 0;
        group.push(next.uid);
      }
      const fetched = await imap.fetchAll(group, { uid: true, source: true, internalDate: true }, { uid: true });
      const messages = fetched.flatMap((m) =>
        m.source
          ? [
              {
                raw: m.source,
                origin: {
                  source: "imap" as const,
                  mailbox,
                  uid: m.uid,
                  receivedAt: m.internalDate ? new Date(m.internalDate) : undefined,
                },
              },
            ]
          : [],
      );
      const outcomes = await ingest.ingest(messages);
      const acknowledgedAt = Date.now();
      messages.forEach((m, i) => {
        results.push({ uid: m.origin.uid, outcome: outcomes[i]! });
        if (outcomes[i]!.kind === "published" && m.origin.receivedAt)
          metrics.deliverySeconds.observe(Math.max(0, acknowledgedAt - m.origin.receivedAt.getTime()) / 1000);
      });
      const failure = outcomes.find((o) => o.kind === "failed");
      if (failure?.kind === "failed") {
        log.warn(
          { err: failure.error, messages: outcomes.filter((o) => o.kind === "failed").length },
          "messages not published; they stay unflagged and are tried again",
        );
        healthy = false;
        break;
      }
    }
    await acknowledge(imap, results);
    return healthy;
  };

  /** Handles everything waiting; resolves with how long to wait before the next round at most. */
  const drain = async (imap: ImapFlow): Promise<number> => {
    const lock = await imap.getMailboxLock(mailbox);
    try {
      // Published and flagged, but the move did not happen (a crash in between): move them now.
      const stranded = (await imap.search({ keyword: PROCESSED_KEYWORD }, { uid: true })) || [];
      if (stranded.length > 0) await imap.messageMove(stranded, processedMailbox, { uid: true });

      const waiting = (
        (await imap.search({ unKeyword: PROCESSED_KEYWORD, not: { keyword: REFUSED_KEYWORD } }, { uid: true })) || []
      ).sort((a, b) => a - b);
      const now = Date.now();
      const due = waiting.filter((uid) => (deferred.get(uid) ?? 0) <= now);
      for (let i = 0; i < due.length && !stopping; i += CHUNK_MESSAGES) {
        if (!(await handleChunk(imap, due.slice(i, i + CHUNK_MESSAGES)))) return FAILURE_RETRY_MS;
      }
      const present = new Set(waiting);
      for (const uid of deferred.keys()) if (!present.has(uid)) deferred.delete(uid);
      const nextRetry = Math.min(...deferred.values());
      return Number.isFinite(nextRetry) ? Math.max(250, Math.min(POLL_MS, nextRetry - Date.now())) : POLL_MS;
    } finally {
      lock.release();
    }
  };

  const session = async (): Promise<void> => {
    const imap = new ImapFlow({
      ...imapOptions(options.imapUrl),
      logger: false,
      // IDLE as soon as a round has released the mailbox, so new mail is seen at once.
      autoIdleDelay: 200,
      // Servers may drop an IDLE session after 30 minutes of client silence (RFC 9051).
      maxIdleTime: 5 * 60_000,
    });
    client = imap;
    imap.on("error", (error: Error) => log.warn({ err: error.message }, "IMAP connection error"));
    imap.on("exists", signal);
    imap.on("close", signal);
    try {
      await imap.connect();
      await imap.mailboxCreate(processedMailbox);
      const selected = await imap.mailboxOpen(mailbox).catch((error: unknown) => {
        throw new Error(`cannot open the watched mailbox ${mailbox}: ${describeImapError(error)}`, { cause: error });
      });
      // Keywords carry the outcome on the server; a server that drops them would re-read every message forever.
      if (selected.permanentFlags && !selected.permanentFlags.has("\\*")) {
        throw new Error(
          `mailbox ${mailbox} does not accept keywords (PERMANENTFLAGS lacks \\*); the connector marks messages with them`,
        );
      }
      deferred.clear();
      open = true;
      metrics.imapConnected.set(1);
      log.info({ processedMailbox }, "IMAP mailbox open; watching with IDLE");
      while (!stopping && imap.usable) {
        signalled = false;
        const waitMs = await drain(imap);
        if (!stopping && imap.usable && !signalled) await sleep(waitMs);
      }
    } finally {
      open = false;
      metrics.imapConnected.set(0);
      client = undefined;
      if (imap.usable) await imap.logout().catch(() => imap.close());
      else imap.close();
    }
  };

  const loop = async (): Promise<void> => {
    let backoff = RECONNECT_MIN_MS;
    while (!stopping) {
      const startedAt = Date.now();
      try {
        await session();
        if (!stopping) log.warn({ retryInMs: backoff }, "IMAP connection closed; reconnecting");
      } catch (error) {
        if (stopping) break;
        log.error({ err: describeImapError(error), retryInMs: backoff }, "IMAP session failed; reconnecting");
      }
      if (stopping) break;
      // A session that ran a while was healthy: start the backoff over.
      if (Date.now() - startedAt > RECONNECT_MAX_MS) backoff = RECONNECT_MIN_MS;
      metrics.imapReconnects.inc();
      await sleep(backoff / 2 + Math.random() * (backoff / 2));
      backoff = Math.min(RECONNECT_MAX_MS, backoff * 2);
    }
  };

  return {
    start() {
      running ??= loop();
    },
    healthy: () => open && client?.usable === true,
    async close() {
      stopping = true;
      signal();
      await running;
    },
  };
}
