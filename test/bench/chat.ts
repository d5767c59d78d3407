/**
 * `npm run bench:chat`: the chat gateway (`switchboard run chat`, its own process) in front of the
 * triage pipeline as `up` deploys it (chained), against the stack, in one run:
 *
 * (i) idle sockets held: `--sockets` (default 5,000) customers connect and say hello (each its own
 *     session, token minted with the benchmark's secret) and stay idle through two of the gateway's
 *     heartbeats (every 10 s here); memory per socket of the
 *     gateway (RSS and heap from its /metrics after a garbage collection, delta over the sockets
 *     opened after a warm-up), of
 *     the clients (their own process, after a GC), and of Redis (sessions' keys);
 * (ii) message → reply: `--rate` (100) messages a second, paced evenly, round robin over
 *     `--active` (1,000) sockets for `--seconds` (60): p50/p95/p99 from the client's send to the
 *     reply frame, against the pipeline's own end-to-end latency of the same inquiries in the same
 *     run (envelope.received_at, stamped by the gateway, to the response being readable on
 *     inquiries.responses by a read-committed consumer, as `npm run bench` measures it), with the
 *     ratio, and the gateway's two legs (send → received_at; response readable → reply frame).
 *
 * Limits: each socket is a file descriptor on both sides (the gateway's and the clients' limits
 * are printed and checked before opening: `ulimit -n`, raised to the hard limit where the shell
 * allows), and a loopback connection takes an ephemeral port from
 * net.ipv4.ip_local_port_range; beyond 80 % of that range the clients spread over several
 * loopback source addresses (127.0.0.2, …). Writes bench-results/chat-<time>.json.
 */
import { fork, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { datasetInquiries } from "../../cli/samples/index.js";
import { createLogger } from "../../config/log.js";
import { redisOptions } from "../../config/security.js";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { mintChatToken } from "../../connectors/chat/tokens.js";
import type { InquiryResponse } from "../../schemas/types.generated.js";
import { localServices, resolveEndpoints, stackPorts } from "../../stack/index.js";
import { createSupervisor } from "../../stack/supervisor.js";
import { preparePipeline, startPipeline, type Pipeline } from "../e2e/pipeline.js";
import { freePort } from "../support/api.js";
import { startChat } from "../support/chat.js";
import { histogramTotals, percentile } from "./measure.js";
import type { Send } from "./chat-clients.js";

const { values: flags } = parseArgs({
  options: {
    sockets: { type: "string", default: process.env.BENCH_SOCKETS ?? "5000" },
    active: { type: "string", default: process.env.BENCH_ACTIVE ?? "1000" },
    rate: { type: "string", default: process.env.BENCH_RATE ?? "100" },
    seconds: { type: "string", default: process.env.BENCH_SECONDS ?? "60" },
    concurrency: { type: "string", default: "100" },
  },
});
const SOCKETS = Number(flags.sockets);
const ACTIVE = Math.min(Number(flags.active), SOCKETS);
const RATE = Number(flags.rate);
const SECONDS = Number(flags.seconds);
const CONCURRENCY = Number(flags.concurrency);
/** Sockets opened before the memory baseline: the gateway's code paths warm, its pools made. */
const WARM = Math.min(100, Math.floor(SOCKETS / 10));
const runId = `bench-chat-${randomUUID().slice(0, 8)}`;
const HEARTBEAT_MS = 10_000;

// ------------------------------------------------------------------------------------------
// Limits

function openFilesLimit(pid: number | "self"): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, "utf8").split("\n").find((l) => l.startsWith("Max open files"))!;
  const [soft, hard] = line.replace("Max open files", "").trim().split(/\s+/);
  const n = (v: string | undefined) => (v === "unlimited" ? Infinity : Number(v));
  return { soft: n(soft), hard: n(hard) };
}

function ephemeralPorts(): number {
  const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
  return high! - low! + 1;
}

// ------------------------------------------------------------------------------------------
// The gateway's own figures, from its /metrics

interface GatewayFigures {
  readonly rss: number;
  readonly heapUsed: number;
  readonly cpuSeconds: number;
  readonly openFds: number;
  readonly maxFds: number;
  readonly sessions: number;
  readonly text: string;
}

async function gatewayFigures(url: string): Promise<GatewayFigures> {
  const response = await fetch(`${url}/metrics`);
  if (!response.ok) throw new Error(`the gateway's /metrics answered ${response.status}`);
  const text = await response.text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
  return {
    rss: value(/^process_resident_memory_bytes(?:\{[^}]*\})? (\S+)$/m),
    heapUsed: value(/^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m),
    cpuSeconds: value(/^process_cpu_seconds_total(?:\{[^}]*\})? (\S+)$/m),
    openFds: value(/^process_open_fds(?:\{[^}]*\})? (\S+)$/m),
    maxFds: value(/^process_max_fds(?:\{[^}]*\})? (\S+)$/m),
    sessions: value(/^switchboard_chat_sockets\{[^}]*state="session"[^}]*\} (\S+)$/m),
    text,
  };
}

/**
 * The gateway's figures after a garbage collection (SIGUSR2, chat-gc-hook.mjs), once its RSS holds
 * still (two readings a second apart within 1 %), or after 15 s.
 */
async function settledFigures(url: string, pid: number): Promise<GatewayFigures> {
  process.kill(pid, "SIGUSR2");
  await sleep(1_000);
  let previous = await gatewayFigures(url);
  for (let i = 0; i < 15; i++) {
    await sleep(1_000);
    const current = await gatewayFigures(url);
    if (Math.abs(current.rss - previous.rss) / previous.rss < 0.01) return current;
    previous = current;
  }
  return previous;
}

/** Memory the kernel holds for TCP sockets, every process's (/proc/net/sockstat counts pages). */
function kernelTcpBytes(): number {
  const pages = Number(/^TCP: .* mem (\d+)/m.exec(readFileSync("/proc/net/sockstat", "utf8"))?.[1] ?? Number.NaN);
  return pages * 4096;
}

async function redisUsedMemory(redis: Redis): Promise<number> {
  const info = await redis.info("memory");
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
}

// ------------------------------------------------------------------------------------------
// The clients' process

interface Clients {
  request<T>(command: object, event: string): Promise<T>;
  readonly child: ChildProcess;
}

async function startClients(): Promise<Clients> {
  const child = fork(new URL("./chat-clients.ts", import.meta.url).pathname, [], {
    execArgv: ["--expose-gc", "--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiting = new Map<string, (message: unknown) => void>();
  let failure: ((error: Error) => void) | undefined;
  child.on("message", (message: { event: string; message?: string }) => {
    if (message.event === "failed") return failure?.(new Error(`the clients' process failed: ${message.message}`));
    waiting.get(message.event)?.(message);
    waiting.delete(message.event);
  });
  const request = <T>(command: object, event: string) =>
    new Promise<T>((resolve, reject) => {
      waiting.set(event, resolve as (message: unknown) => void);
      failure = reject;
      child.once("exit", (code) => reject(new Error(`the clients' process exited (${code}) before ${event}`)));
      if (Object.keys(command).length > 0) child.send(command);
    });
  await request<{ pid: number }>({}, "ready");
  return { request, child };
}

interface Opened {
  opened: number;
  open: number;
  failed: number;
  firstError?: string;
  seconds: number;
  before: { rss: number; heapUsed: number };
  after: { rss: number; heapUsed: number };
}

// ------------------------------------------------------------------------------------------
// The pipeline's responses, as a read-committed consumer sees them

async function watchResponses(pipeline: Pipeline, sessions: ReadonlySet<string>) {
  const seen = new Map<string, { at: number; receivedAt: number; producedAt: number }>();
  const admin = pipeline.kafka.admin();
  await admin.connect();
  const start = await admin.fetchTopicOffsets("inquiries.responses");
  await admin.disconnect();
  const consumer = pipeline.kafka.consumer({ groupId: `${runId}-responses`, readUncommitted: false, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic: "inquiries.responses", fromBeginning: false });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    eachMessage: async ({ message }) => {
      const at = Date.now();
      const response = (await pipeline.codec.decode("inquiries.responses", message.value)) as InquiryResponse;
      if (response.envelope.reply_to === null || !sessions.has(response.envelope.reply_to) || seen.has(response.inquiry_id)) return;
      seen.set(response.inquiry_id, { at, receivedAt: response.envelope.received_at, producedAt: Number(message.timestamp) });
    },
  });
  for (const { partition, offset } of start) consumer.seek({ topic: "inquiries.responses", partition, offset });
  await joined;
  return { seen, close: () => consumer.disconnect() };
}

const stats = (values: number[]) => {
  const sorted = values.sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
};

const mb = (bytes: number) => (bytes / 1_048_576).toFixed(1);
const kb = (bytes: number) => (bytes / 1024).toFixed(1);

/**
 * A soft descriptor limit below what the sockets need but a hard one above it: the benchmark runs
 * itself again through the shell with the soft limit raised (Node cannot set its own), so that
 * the gateway and the clients' process, its children, inherit the higher limit.
 */
function raiseOpenFilesLimit(needed: number): void {
  const { soft, hard } = openFilesLimit("self");
  if (soft >= needed || hard < needed || process.env.BENCH_CHAT_RAISED === "1") return;
  const limit = hard === Infinity ? Math.max(needed, 65_536) : hard;
  console.log(`raising the open files limit from ${soft} to ${limit} (the hard limit) and starting again`);
  const result = spawnSync("/bin/sh", ["-c", `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, BENCH_CHAT_RAISED: "1" },
  });
  process.exit(result.status ?? 1);
}

async function main(): Promise<void> {
  raiseOpenFilesLimit(SOCKETS + 500);
  const config = loadConfig();
  const log = createLogger({ logLevel: "warn" });
  const endpoints = resolveEndpoints(config);
  await createSupervisor(config.stackHome, stackPorts(config), log).up(localServices(config));

  // Each socket is a descriptor here (the clients' process inherits this limit) and in the gateway.
  const limits = openFilesLimit("self");
  const ports = ephemeralPorts();
  const needed = SOCKETS + 500;
  if (limits.soft < needed) {
    throw new Error(
      `${SOCKETS} sockets need about ${needed} file descriptors; this process may open ${limits.soft} (hard limit ${limits.hard}): ` +
        `run it from a shell with 'ulimit -n ${Math.min(limits.hard, Math.max(needed, 65_536))}' or pass --sockets ${limits.soft - 500}`,
    );
  }
  // Loopback connections to one port take one ephemeral port each: spread over more source addresses past 80 % of the range.
  const sourceAddresses = SOCKETS > ports * 0.8 ? Array.from({ length: Math.ceil(SOCKETS / (ports * 0.8)) }, (_, i) => `127.0.0.${i + 2}`) : [];

  await preparePipeline(endpoints);
  const pipeline = await startPipeline(endpoints, { LOG_LEVEL: "warn" }, "chained");
  const secret = randomBytes(32).toString("hex");
  const chat = await startChat(endpoints, {
    port: await freePort(),
    instanceId: runId,
    env: {
      LOG_LEVEL: "warn",
      SWITCHBOARD_CHAT_TOKEN_SECRET: secret,
      // Each active socket sends one message every ACTIVE / RATE seconds: far under this.
      SWITCHBOARD_CHAT_RATE_LIMIT: "100000",
      // The benchmark's thousands of sessions leave Redis within a quarter of an hour, not a day.
      SWITCHBOARD_CHAT_SESSION_TTL_SECONDS: "900",
      // Pings every 10 s: the idle sockets are held across two of them before they are counted.
      SWITCHBOARD_CHAT_HEARTBEAT_MS: String(HEARTBEAT_MS),
      // A garbage collection on SIGUSR2 before each memory reading (the gateway's code is unchanged).
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --expose-gc --import ${new URL("./chat-gc-hook.mjs", import.meta.url).pathname}`.trim(),
    },
  });
  const clients = await startClients();
  const redis = new Redis(endpoints.redisUrl, redisOptions(endpoints));
  try {
    const gatewayLimit = (await gatewayFigures(chat.url)).maxFds;
    if (gatewayLimit < needed) throw new Error(`the gateway may open ${gatewayLimit} file descriptors, fewer than ${needed} for ${SOCKETS} sockets: raise ulimit -n in the shell that runs the benchmark`);
    console.log(
      `limits: open files ${limits.soft} (hard ${limits.hard}) here and in the clients' process, ${gatewayLimit} in the gateway; ` +
        `${ports} ephemeral ports (net.ipv4.ip_local_port_range)${sourceAddresses.length > 0 ? `, clients spread over ${sourceAddresses.join(", ")}` : ""}; ${os.cpus().length} cores`,
    );

    const tokens = Array.from({ length: SOCKETS }, (_, i) => mintChatToken(secret, { customer: { id: `${runId}-${i}`, name: `Bench customer ${i}` }, ttlSeconds: 3_600, guest: false }));
    const sessions = new Set(tokens.map((t) => t.session.sessionId));

    // (i) idle sockets
    const warm = await clients.request<Opened>({ cmd: "open", url: chat.wsUrl, tokens: tokens.slice(0, WARM).map((t) => t.token), concurrency: CONCURRENCY, localAddresses: sourceAddresses }, "opened");
    if (warm.failed > 0) throw new Error(`${warm.failed} of ${WARM} warm-up sockets failed: ${warm.firstError}`);
    // Measured as the "after" figures are: past two heartbeats of idle sockets, RSS holding still.
    await sleep(2 * HEARTBEAT_MS + 1_000);
    const gatewayBefore = await settledFigures(chat.url, chat.proc.child.pid!);
    const redisBefore = await redisUsedMemory(redis);
    const kernelBefore = kernelTcpBytes();
    const opened = await clients.request<Opened>({ cmd: "open", url: chat.wsUrl, tokens: tokens.slice(WARM).map((t) => t.token), concurrency: CONCURRENCY, localAddresses: sourceAddresses }, "opened");
    // Idle through two heartbeats (a socket that missed a pong would be closed by now), then measured.
    await sleep(2 * HEARTBEAT_MS + 1_000);
    const gatewayAfter = await settledFigures(chat.url, chat.proc.child.pid!);
    const redisAfter = await redisUsedMemory(redis);
    const kernelAfter = kernelTcpBytes();
    const measured = opened.opened;
    const idle = {
      held: opened.open,
      failed: opened.failed,
      firstError: opened.firstError,
      openSeconds: opened.seconds,
      gatewaySessions: gatewayAfter.sessions,
      gatewayOpenFds: gatewayAfter.openFds,
      gatewayRssPerSocket: (gatewayAfter.rss - gatewayBefore.rss) / measured,
      gatewayHeapPerSocket: (gatewayAfter.heapUsed - gatewayBefore.heapUsed) / measured,
      gatewayRss: gatewayAfter.rss,
      clientRssPerSocket: (opened.after.rss - opened.before.rss) / measured,
      clientHeapPerSocket: (opened.after.heapUsed - opened.before.heapUsed) / measured,
      redisPerSession: (redisAfter - redisBefore) / measured,
      kernelTcpPerConnection: (kernelAfter - kernelBefore) / measured,
      loadAverage: os.loadavg(),
    };
    console.log(`\n(i) ${idle.held} idle sockets held (${idle.failed} failed to open${idle.firstError ? `: ${idle.firstError}` : ""}), opened at ${Math.round(measured / opened.seconds)}/s; the gateway counts ${idle.gatewaySessions} sessions and ${idle.gatewayOpenFds} open descriptors`);
    console.table([
      { side: "gateway RSS (its /metrics)", "KB / socket": kb(idle.gatewayRssPerSocket), "heap KB / socket": kb(idle.gatewayHeapPerSocket), "MB in all": mb(gatewayAfter.rss) },
      { side: "clients RSS (ws, own process, after GC)", "KB / socket": kb(idle.clientRssPerSocket), "heap KB / socket": kb(idle.clientHeapPerSocket), "MB in all": mb(opened.after.rss) },
      { side: "Redis (the session's keys, used_memory)", "KB / socket": kb(idle.redisPerSession), "heap KB / socket": "", "MB in all": mb(redisAfter) },
      { side: "kernel (TCP buffers of both ends, /proc/net/sockstat)", "KB / socket": kb(idle.kernelTcpPerConnection), "heap KB / socket": "", "MB in all": mb(kernelAfter) },
    ]);
    console.log(`load average (1, 5, 15 min) ${idle.loadAverage.map((l) => l.toFixed(1)).join(", ")} on ${os.cpus().length} cores`);

    // (ii) message → reply
    await clients.request({ cmd: "close", keep: ACTIVE }, "closed");
    const texts = datasetInquiries("bitext", 2_000, 5).map((i) => i.body.slice(0, 1_000));
    const responses = await watchResponses(pipeline, sessions);
    // Warm-up: the pipeline's models and the gateway's delivery path, not measured.
    await clients.request({ cmd: "load", rate: 20, seconds: 5, active: ACTIVE, texts: texts.slice(1_900), drainMs: 180_000 }, "loaded");
    const cpuBefore = (await gatewayFigures(chat.url)).cpuSeconds;
    const loadStarted = Date.now();
    const loaded = await clients.request<{ sendSeconds: number; sends: Send[]; replies: { inquiryId: string; at: number; author: string }[]; errors: Record<string, number> }>(
      { cmd: "load", rate: RATE, seconds: SECONDS, active: ACTIVE, texts, drainMs: 300_000 },
      "loaded",
    );
    const gatewayLoad = await gatewayFigures(chat.url);
    const loadAverage = os.loadavg();
    const cpuPercent = ((gatewayLoad.cpuSeconds - cpuBefore) / ((Date.now() - loadStarted) / 1000)) * 100;
    await responses.close();

    const firstReply = new Map<string, number>();
    for (const reply of loaded.replies) if (!firstReply.has(reply.inquiryId)) firstReply.set(reply.inquiryId, reply.at);
    const chatLatency: number[] = [];
    const pipelineLatency: number[] = [];
    const producedLatency: number[] = [];
    const inbound: number[] = [];
    const outbound: number[] = [];
    let acked = 0;
    for (const sent of loaded.sends) {
      if (!sent.inquiryId) continue;
      acked++;
      const repliedAt = firstReply.get(sent.inquiryId);
      const response = responses.seen.get(sent.inquiryId);
      if (repliedAt !== undefined) chatLatency.push(repliedAt - sent.sentAt);
      if (response) {
        pipelineLatency.push(response.at - response.receivedAt);
        producedLatency.push(response.producedAt - response.receivedAt);
        inbound.push(response.receivedAt - sent.sentAt);
        if (repliedAt !== undefined) outbound.push(repliedAt - response.at);
      }
    }
    const chatStats = stats(chatLatency);
    const pipelineStats = stats(pipelineLatency);
    const gatewayHistogram = histogramTotals(gatewayLoad.text, "switchboard_chat_reply_latency_seconds", "author").get("assistant");
    const replyCounts = new Map<string, number>();
    for (const reply of loaded.replies) replyCounts.set(reply.inquiryId, (replyCounts.get(reply.inquiryId) ?? 0) + 1);
    const duplicates = [...replyCounts.values()].filter((n) => n > 1).length;
    const load = {
      offered: loaded.sends.length,
      sendSeconds: loaded.sendSeconds,
      acked,
      answered: chatLatency.length,
      duplicates,
      errors: loaded.errors,
      gatewayCpuPercent: cpuPercent,
      loadAverage,
      gatewayRssDuringLoad: gatewayLoad.rss,
      chat: chatStats,
      pipeline: pipelineStats,
      pipelineProduced: stats(producedLatency),
      gatewayIn: stats(inbound),
      gatewayOut: stats(outbound),
      gatewayHistogramMeanMs: gatewayHistogram && gatewayHistogram.count > 0 ? (gatewayHistogram.sum / gatewayHistogram.count) * 1000 : Number.NaN,
    };
    console.log(
      `\n(ii) ${RATE} messages/s over ${ACTIVE} sockets for ${SECONDS} s: ${load.offered} sent in ${load.sendSeconds.toFixed(1)} s, ${acked} acknowledged, ${load.answered} answered on the socket, ` +
        `${duplicates} answered twice, errors ${JSON.stringify(loaded.errors)}; the gateway used ${cpuPercent.toFixed(1)} % of a core, RSS ${mb(gatewayLoad.rss)} MB; ` +
        `load average ${loadAverage.map((l) => l.toFixed(1)).join(", ")} on ${os.cpus().length} cores`,
    );
    const row = (what: string, s: ReturnType<typeof stats>) => ({ latency: what, n: s.n, "p50 ms": s.p50, "p95 ms": s.p95, "p99 ms": s.p99, "max ms": s.max });
    console.table([
      row("chat: message sent → reply frame (client clock)", chatStats),
      row("pipeline: received_at → response readable (read committed)", pipelineStats),
      row("pipeline: received_at → response produced (record time)", load.pipelineProduced),
      row("gateway in: message sent → received_at", load.gatewayIn),
      row("gateway out: response readable → reply frame", load.gatewayOut),
    ]);
    console.log(
      `chat / pipeline: p50 ${(chatStats.p50 / pipelineStats.p50).toFixed(2)}×, p99 ${(chatStats.p99 / pipelineStats.p99).toFixed(2)}× ` +
        `(the gateway adds ${chatStats.p50 - pipelineStats.p50} ms at p50, ${chatStats.p99 - pipelineStats.p99} ms at p99); ` +
        `the gateway's own reply-latency histogram (received → written to the socket) averages ${load.gatewayHistogramMeanMs.toFixed(0)} ms`,
    );

    const at = new Date().toISOString();
    const dir = path.join(REPO_ROOT, "bench-results");
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `chat-${at.replace(/[:.]/g, "-").slice(0, 19)}.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ at, runId, cores: os.cpus().length, flags: { sockets: SOCKETS, active: ACTIVE, rate: RATE, seconds: SECONDS }, limits: { openFiles: limits, gatewayOpenFiles: gatewayLimit, ephemeralPorts: ports, sourceAddresses }, idle, load }, null, 2)}\n`,
    );
    console.log(`written: ${file}`);
  } finally {
    clients.child.send({ cmd: "exit" });
    redis.disconnect();
    await chat.stop().catch(() => undefined);
    await pipeline.stop();
  }
}

await main();
process.exit(0);
