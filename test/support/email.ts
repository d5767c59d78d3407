import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ImapFlow } from "imapflow";
import {
  runnableConnector,
  spawnProcessor,
  stopProcessor,
  waitHealthy,
  type ProcessorProcess,
} from "../../cli/processes.js";
import { parseEmail } from "../../connectors/email/mime.js";
import { imapOptions } from "../../connectors/email/session.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import type { Endpoints } from "../../stack/index.js";
import { TRIAGE } from "../../streams/topology.js";
import { freePort } from "./api.js";
import { serviceEnv } from "./topics.js";

/** The email connector as its own process against a test mailbox, and an IMAP client to fill and inspect it. */

const EMAIL = TRIAGE.connectors.find((c) => c.name === "email")!;

export interface EmailConnectorProcess {
  readonly port: number;
  readonly proc: ProcessorProcess;
  metrics(): Promise<string>;
  health(): Promise<{ status: number; body: { checks: Record<string, boolean> } }>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** Test mailboxes, one pair a test: under the configured account, so an external IMAP server works too. */
export const testMailboxes = (tag: string) => ({ mailbox: `Test-${tag}`, processed: `Test-${tag}-Processed` });

const running = new Set<EmailConnectorProcess>();

/** SIGKILLs every connector a test started and did not stop (a timed-out test leaves its own running). */
export async function killEmailConnectors(): Promise<void> {
  await Promise.all([...running].map((c) => c.kill()));
}

/** `switchboard run email` on a free port, watching `mailbox`, healthy. `env` overrides the test services' settings. */
export async function startEmailConnector(
  endpoints: Endpoints,
  mailbox: string,
  processed: string,
  env: NodeJS.ProcessEnv = {},
  logDir?: string,
): Promise<EmailConnectorProcess> {
  const port = await freePort();
  const proc = spawnProcessor(
    runnableConnector(EMAIL),
    logDir ?? mkdtempSync(path.join(os.tmpdir(), "switchboard-email-")),
    {
      ...serviceEnv(endpoints),
      LOG_LEVEL: "info",
      LOG_FORMAT: "json",
      SWITCHBOARD_METRICS_PORT: String(port),
      SWITCHBOARD_IMAP_MAILBOX: mailbox,
      SWITCHBOARD_IMAP_PROCESSED_MAILBOX: processed,
      ...env,
    },
  );
  const url = `http://127.0.0.1:${port}`;
  const connector: EmailConnectorProcess = {
    port,
    proc,
    metrics: async () => (await fetch(`${url}/metrics`)).text(),
    health: async () => {
      const response = await fetch(`${url}/healthz`);
      return { status: response.status, body: (await response.json()) as { checks: Record<string, boolean> } };
    },
    stop: async () => {
      await stopProcessor(proc);
      running.delete(connector);
    },
    kill: async () => {
      running.delete(connector);
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
      const exited = new Promise((resolve) => proc.child.once("exit", resolve));
      proc.child.kill("SIGKILL");
      await exited;
    },
  };
  running.add(connector);
  await waitHealthy(proc, port, 60_000);
  return connector;
}

/** An IMAP client of the test account (logs nothing). */
export async function imapClient(imapUrl: string): Promise<ImapFlow> {
  const client = new ImapFlow({ ...imapOptions(imapUrl), logger: false, disableAutoIdle: true });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

export interface StoredMessage {
  readonly uid: number;
  readonly flags: ReadonlySet<string>;
  readonly messageId: string | undefined;
}

/** Every message of a mailbox with its flags (none when the mailbox does not exist yet). */
export async function messagesIn(client: ImapFlow, mailbox: string): Promise<StoredMessage[]> {
  const lock = await client.getMailboxLock(mailbox).catch(() => undefined);
  if (!lock) return [];
  try {
    // A session sees what others changed in its selected mailbox only once it asks.
    await client.noop();
    if (!client.mailbox || client.mailbox.exists === 0) return [];
    const messages = await client.fetchAll("1:*", { uid: true, flags: true, envelope: true });
    return messages.map((m) => ({ uid: m.uid, flags: m.flags ?? new Set(), messageId: m.envelope?.messageId }));
  } finally {
    lock.release();
  }
}

/** The inquiry each message becomes (the connector's own mapping), to know the ids to wait for. */
export async function expectedInquiry(raw: Buffer): Promise<InquiryReceived | undefined> {
  const verdict = await parseEmail(raw, { source: "imap" }, { maxBytes: 26_214_400 });
  return verdict.ok ? verdict.inquiry : undefined;
}

export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
