/**
 * The chat benchmark's customers (test/bench/chat.ts): WebSocket clients of the chat gateway in a
 * process of their own, so that their memory per socket is measured apart from the gateway's and
 * from the benchmark's Kafka watcher. Driven over IPC:
 *   open {url, tokens, concurrency, localAddresses} → opened {opened (by this command), open (in all), failed, firstError, rss/heap before and after}
 *   close {keep}                     → closed {open}
 *   load {rate, seconds, active, texts, drainMs} → loaded {sends, replies, errors}
 *   exit
 * Times are Date.now() (ms since epoch), the same clock as the records' received_at: one machine.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";

interface Client {
  readonly socket: WebSocket;
  readonly index: number;
}

type Command =
  | { cmd: "open"; url: string; tokens: string[]; concurrency: number; localAddresses: string[] }
  | { cmd: "close"; keep: number }
  | { cmd: "load"; rate: number; seconds: number; active: number; texts: string[]; drainMs: number }
  | { cmd: "exit" };

export interface Send {
  readonly clientId: string;
  readonly sentAt: number;
  inquiryId?: string;
  ackedAt?: number;
  error?: string;
}

const clients: Client[] = [];
const send = (message: unknown) => process.send!(message);

function memory() {
  // Garbage collected first (node --expose-gc), so that the deltas are what the sockets hold.
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

/** One socket through hello → welcome; rejects with why it did not get there. */
function connect(url: string, token: string, index: number, localAddress: string | undefined): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, ...(localAddress && { localAddress }) });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error("no welcome within 30 s"));
    }, 30_000);
    socket.once("open", () => socket.send(JSON.stringify({ type: "hello", token, resume_after: null })));
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once("close", (code) => {
      clearTimeout(timer);
      reject(new Error(`closed with ${code} before the welcome`));
    });
    socket.once("message", (data) => {
      clearTimeout(timer);
      const frame = JSON.parse(String(data)) as { type: string };
      if (frame.type !== "welcome") return reject(new Error(`first frame was ${frame.type}`));
      socket.removeAllListeners("close");
      socket.removeAllListeners("error");
      // An idle socket still answers the gateway's pings (ws does, by itself) and must not crash the process.
      socket.on("error", () => undefined);
      resolve({ socket, index });
    });
  });
}

async function open(command: Extract<Command, { cmd: "open" }>) {
  const before = memory();
  const started = performance.now();
  const already = clients.length;
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < command.tokens.length) {
      const index = next++;
      const localAddress = command.localAddresses.length > 0 ? command.localAddresses[index % command.localAddresses.length] : undefined;
      try {
        clients.push(await connect(command.url, command.tokens[index]!, index, localAddress));
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: command.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  await sleep(1_000); // the last welcomes' garbage, before the measurement
  send({ event: "opened", opened: clients.length - already, open: clients.length, failed, firstError, seconds, before, after: memory() });
}

async function close(keep: number) {
  const closing = clients.splice(keep);
  await Promise.all(
    closing.map(
      (client) =>
        new Promise<void>((resolve) => {
          client.socket.once("close", () => resolve());
          client.socket.close(1000);
        }),
    ),
  );
  send({ event: "closed", open: clients.length });
}

/** `rate` messages a second for `seconds`, round robin over the first `active` sockets; then waits for the replies. */
async function load(command: Extract<Command, { cmd: "load" }>) {
  const active = clients.slice(0, command.active);
  const sends = new Map<string, Send>();
  const replies: { inquiryId: string; at: number; author: string }[] = [];
  const errors = new Map<string, number>();
  const byInquiry = new Set<string>();
  for (const { socket } of active) {
    socket.on("message", (data) => {
      const at = Date.now();
      const frame = JSON.parse(String(data)) as { type: string; client_id?: string; inquiry_id?: string; id?: string; author?: string; code?: string };
      if (frame.type === "ack") {
        const sent = sends.get(frame.client_id!);
        if (sent) {
          sent.inquiryId = frame.inquiry_id;
          sent.ackedAt = at;
          byInquiry.add(frame.inquiry_id!);
        }
      } else if (frame.type === "reply") {
        replies.push({ inquiryId: frame.inquiry_id!, at, author: frame.author! });
        socket.send(JSON.stringify({ type: "received", id: frame.id }));
      } else if (frame.type === "error") {
        errors.set(frame.code!, (errors.get(frame.code!) ?? 0) + 1);
        const sent = frame.client_id ? sends.get(frame.client_id) : undefined;
        if (sent) sent.error = frame.code;
      }
    });
  }
  const total = Math.round(command.rate * command.seconds);
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    // Paced evenly (not in bursts): message i leaves at i / rate seconds.
    const wait = started + (i * 1000) / command.rate - performance.now();
    if (wait > 0) await sleep(wait);
    const { socket } = active[i % active.length]!;
    const clientId = randomUUID();
    sends.set(clientId, { clientId, sentAt: Date.now() });
    socket.send(JSON.stringify({ type: "message", client_id: clientId, text: command.texts[i % command.texts.length] }));
  }
  const sendSeconds = (performance.now() - started) / 1000;
  // Every acknowledged message answered, or the drain's limit.
  const deadline = Date.now() + command.drainMs;
  const answered = () => new Set(replies.map((r) => r.inquiryId));
  while (Date.now() < deadline) {
    const done = answered();
    const acked = [...sends.values()].filter((s) => s.inquiryId !== undefined);
    const settled = [...sends.values()].every((s) => s.error !== undefined || s.inquiryId !== undefined);
    if (settled && acked.every((s) => done.has(s.inquiryId!))) break;
    await sleep(250);
  }
  for (const { socket } of active) socket.removeAllListeners("message");
  send({ event: "loaded", sendSeconds, sends: [...sends.values()], replies, errors: Object.fromEntries(errors) });
}

process.on("message", (command: Command) => {
  const done = (promise: Promise<void>) => promise.catch((error: Error) => send({ event: "failed", message: error.stack ?? error.message }));
  if (command.cmd === "open") done(open(command));
  else if (command.cmd === "close") done(close(command.keep));
  else if (command.cmd === "load") done(load(command));
  else {
    for (const { socket } of clients) socket.terminate();
    process.exit(0);
  }
});
send({ event: "ready", pid: process.pid });
