import { mkdtempSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../config/settings.js";
import { runnableConnector, spawnProcessor, stopProcessor, waitHealthy, type ProcessorProcess } from "../../cli/processes.js";
import { chatTokenSecret, mintChatToken } from "../../connectors/chat/tokens.js";
import type { Customer } from "../../schemas/types.generated.js";
import type { Endpoints } from "../../stack/index.js";
import { TRIAGE } from "../../streams/topology.js";
import { freePort } from "./api.js";
import { serviceEnv } from "./topics.js";

const CHAT = TRIAGE.connectors.find((c) => c.name === "chat")!;

export interface ChatProcess {
  /** http://127.0.0.1:<port> (the page at /chat/, guest sessions at /chat/sessions). */
  readonly url: string;
  /** ws://127.0.0.1:<port>/chat/socket */
  readonly wsUrl: string;
  readonly port: number;
  readonly instanceId: string;
  readonly proc: ProcessorProcess;
  /** SIGTERM: sockets closed with 1001, the delivery consumer leaves its group. */
  stop(): Promise<void>;
  /** SIGKILL: nothing cleaned up, as a crash. */
  kill(): void;
  /** SIGSTOP: the process halts where it is; its connections stay open and silent (no FIN, no close), as a hung host's. */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
}

/**
 * The secret the tests' gateways and API sign chat tokens with: the configured one, else the
 * local one in the stack home (made if need be), which `switchboard run api` reads too.
 */
export function testChatSecret(): string {
  return chatTokenSecret(loadConfig());
}

/** A session token as the API or a guest route would issue it, straight from the secret. */
export function testChatToken(customer: Partial<Customer> = {}, ttlSeconds = 3_600): { readonly sessionId: string; readonly token: string } {
  const { token, session } = mintChatToken(testChatSecret(), { customer, ttlSeconds, guest: false });
  return { sessionId: session.sessionId, token };
}

/**
 * `switchboard run chat` as its own process, healthy (Redis, notifications, delivery consumer in
 * its group). `port` 0 or omitted picks a free one. Each instance needs its own `instanceId`.
 * A short Kafka session timeout by default, so that a killed instance's partitions move on
 * within seconds; `env` overrides any setting. `waitForHealth: false` waits only until it
 * answers /healthz at all (a gateway started while a service it needs is away).
 */
export async function startChat(
  endpoints: Endpoints,
  { port = 0, instanceId, env = {}, waitForHealth = true }: { port?: number; instanceId: string; env?: NodeJS.ProcessEnv; waitForHealth?: boolean },
): Promise<ChatProcess> {
  const chosen = port || (await freePort());
  const logDir = mkdtempSync(path.join(os.tmpdir(), `switchboard-chat-${instanceId}-`));
  const proc = spawnProcessor(runnableConnector(CHAT), logDir, {
    ...serviceEnv(endpoints),
    LOG_LEVEL: "info",
    LOG_FORMAT: "json",
    SWITCHBOARD_METRICS_PORT: String(chosen),
    SWITCHBOARD_CHAT_INSTANCE_ID: instanceId,
    SWITCHBOARD_INSTANCE_ID: `test-chat-${instanceId}`,
    SWITCHBOARD_CHAT_TOKEN_SECRET: testChatSecret(),
    SWITCHBOARD_SESSION_TIMEOUT_MS: "6000",
    ...env,
  });
  if (waitForHealth) await waitHealthy(proc, chosen, 90_000);
  else await listening(proc, chosen);
  return {
    url: `http://127.0.0.1:${chosen}`,
    wsUrl: `ws://127.0.0.1:${chosen}/chat/socket`,
    port: chosen,
    instanceId,
    proc,
    stop: () => stopProcessor(proc),
    kill: () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGKILL");
    },
    freeze: () => proc.child.kill("SIGSTOP"),
    thaw: () => proc.child.kill("SIGCONT"),
  };
}

/** Until the process answers /healthz with any status (it listens), or fails naming its log. */
async function listening(proc: ProcessorProcess, port: number, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`chat exited with ${proc.child.exitCode}; see ${proc.log}`);
    const answered = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      () => true,
      () => false,
    );
    if (answered) return;
    await sleep(250);
  }
  throw new Error(`chat not listening after ${timeoutMs / 1000}s; see ${proc.log}`);
}
