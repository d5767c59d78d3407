import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ImapFlow } from "imapflow";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { deployedRunnables, runnableConnector, spawnProcessor, stopProcessor, waitHealthy, type ProcessorProcess, type Runnable } from "../../cli/processes.js";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { createLogger } from "../../config/log.js";
import { signatureHeaders } from "../../connectors/tickets/signatures.js";
import { DASHBOARDS, RATE } from "../../monitoring/dashboards.js";
import { stackPorts } from "../../stack/index.js";
import type { StackPorts } from "../../stack/service.js";
import { elasticsearchExporter, postgresExporter, redisExporter, stackExporterTargets } from "../../stack/services/exporters.js";
import { createSupervisor, type Supervisor } from "../../stack/supervisor.js";
import { TRIAGE } from "../../streams/topology.js";
import { freePort, get, post, testKey } from "../support/api.js";
import { ChatClient } from "../support/chat-client.js";
import { testChatSecret, testChatToken } from "../support/chat.js";
import { imapClient, testMailboxes } from "../support/email.js";
import { startTestPrometheus, type TestPrometheus } from "../support/prometheus.js";
import { serviceEnv } from "../support/topics.js";
import { preparePipeline } from "./pipeline.js";

/**
 * Issue 14's acceptance for the dashboards: every panel's query (and every annotation's series)
 * of monitoring/dashboards.ts is run against a real Prometheus scraping a live pipeline with
 * traffic, and the test fails naming each query that returns no data. The pipeline is deployed as
 * `up` runs it (the triage chain, the sinks and the learning loop's processors) with all three
 * connectors, each at a free port; the stack's exporters run from their local-stack definitions
 * under a private supervisor (free ports, watching the services the tests use); a Prometheus of
 * the test's own scrapes all of them every second (the shared one scrapes the main job's ports).
 * Traffic: inquiries over the REST API with agents' labels, a chat conversation, an email, a
 * signed and a badly signed ticket webhook; a local SMTP server takes the email connector's
 * replies. The test ends as soon as every query has data.
 */

const endpoints = inject("endpoints");
const config = loadConfig();
const run = randomUUID().slice(0, 8);
/** Small drift windows, so that one closes for each model within the traffic. */
const DRIFT_WINDOW = 30;
/** What stands for Grafana's $__rate_interval: four scrapes would be 4 s, a wider window rides out a pause. */
const RATE_WINDOW = "30s";
const WEBHOOK_SECRET = `dash-${run}-signing-secret`;
const { mailbox, processed } = testMailboxes(`dash-${run}`);

const TEXTS = [
  ["Where is my parcel?", "I ordered a lamp last week and the tracking has not moved since Monday. Can you check where it is?"],
  ["Refund please", "The blender arrived broken. I would like a refund to my card, not store credit."],
  ["Cannot log in", "Your site says my password is wrong although I reset it twice today. Please help me get into my account."],
  ["Invoice address", "Please change the billing address on my last invoice to our new office in Leeds."],
  ["Cancel my order", "I want to cancel order 4471 before it ships, I bought the wrong size."],
  ["Checkout down", "The checkout page is down and payments fail with an error. Fix it ASAP, we are losing orders, this is urgent."],
  ["Weather", "What will the weather be like in Lisbon next weekend?"],
  ["Change delivery date", "Could the delivery of my sofa be moved to next Friday? Nobody is home on Tuesday."],
] as const;

interface Running {
  readonly task: Runnable;
  readonly port: number;
  readonly proc: ProcessorProcess;
}

let processes: Running[] = [];
let exporters: { supervisor: Supervisor; home: string } | undefined;
let prometheus: TestPrometheus | undefined;
let imap: ImapFlow | undefined;
let smtp: { server: SMTPServer; port: number } | undefined;
const chatClients: ChatClient[] = [];
let token: string;
let sending = true;
let traffic: Promise<void> | undefined;
let startedAt = 0;
const sent: string[] = [];

const portOf = (url: string) => Number(new URL(url).port);
const urlOf = (name: string) => `http://127.0.0.1:${processes.find((p) => p.task.name === name)!.port}`;

/** The process env of each runnable: the test's services and settings, its own port and instance. */
function envOf(task: Runnable, port: number): NodeJS.ProcessEnv {
  return {
    ...serviceEnv(endpoints),
    LOG_LEVEL: "info",
    LOG_FORMAT: "json",
    SWITCHBOARD_METRICS_PORT: String(port),
    SWITCHBOARD_INSTANCE_ID: `dash-${run}-${task.name}`,
    SWITCHBOARD_SESSION_TIMEOUT_MS: "6000",
    SWITCHBOARD_MODEL_POLL_MS: "2000",
    // Drift's windows close within the traffic but never raise an alarm; no retraining starts.
    SWITCHBOARD_DRIFT_WINDOW_ROWS: String(DRIFT_WINDOW),
    SWITCHBOARD_DRIFT_RAISE_AFTER: "1000000",
    SWITCHBOARD_DRIFT_TEXT_INTERVAL_MS: "0",
    SWITCHBOARD_RETRAIN_NEW_LABELS: "0",
    SWITCHBOARD_QUALITY_REFRESH_MS: "2000",
    SWITCHBOARD_QUALITY_WINDOWS: "1h",
    SWITCHBOARD_GENERIC_WEBHOOK_SECRET: WEBHOOK_SECRET,
    SWITCHBOARD_CHAT_TOKEN_SECRET: testChatSecret(),
    SWITCHBOARD_CHAT_INSTANCE_ID: `dash-${run}`,
    SWITCHBOARD_IMAP_MAILBOX: mailbox,
    SWITCHBOARD_IMAP_PROCESSED_MAILBOX: processed,
    // Replies on (auto_reply stays off as shipped, so every response is a draft): the email replies panel has its series.
    SMTP_URL: `smtp://127.0.0.1:${smtp!.port}`,
  };
}

/** A plain email to the connector's mailbox. */
function email(n: number): Buffer {
  return Buffer.from(
    [
      `From: Dana Customer <dana-${run}@example.com>`,
      "To: support@example.com",
      `Subject: My order ${run}-${n} has not arrived`,
      `Message-ID: <dash-${run}-${n}@example.com>`,
      `Date: ${new Date().toUTCString()}`,
      "Content-Type: text/plain; charset=utf-8",
      "",
      "Hello, I ordered a lamp ten days ago and the parcel has still not arrived. Where is it?",
      "",
    ].join("\r\n"),
  );
}

async function sendWebhooks(): Promise<void> {
  const api = urlOf("api");
  const fixture = JSON.parse(readFileSync(path.join(REPO_ROOT, "test/fixtures/tickets/generic-ticket-created.json"), "utf8")) as { id: string; ticket: { id: string } };
  const event = (id: string) => Buffer.from(JSON.stringify({ ...fixture, id: `evt-${id}`, ticket: { ...fixture.ticket, id: `dash-${id}` } }));
  const good = event(`${run}-good`);
  await fetch(`${api}/v1/webhooks/generic`, { method: "POST", headers: { "content-type": "application/json", ...signatureHeaders("generic", WEBHOOK_SECRET, good, Date.now()) }, body: good });
  const forged = event(`${run}-forged`);
  const refused = await fetch(`${api}/v1/webhooks/generic`, {
    method: "POST",
    headers: { "content-type": "application/json", ...signatureHeaders("generic", `${WEBHOOK_SECRET}-not`, forged, Date.now()) },
    body: forged,
  });
  if (refused.status !== 401) throw new Error(`a badly signed webhook was answered ${refused.status}, not 401`);
}

/** A chat conversation answered and closed, and a second socket left open. */
async function chat(): Promise<void> {
  const wsUrl = `${urlOf("chat").replace("http", "ws")}/chat/socket`;
  const first = await ChatClient.session(wsUrl, testChatToken({ id: `chat-${run}` }).token);
  chatClients.push(first);
  first.message("Hi, my parcel has not arrived yet, can you check where it is?");
  await first.next((f) => f.type === "reply", 120_000);
  first.close();
  chatClients.push(await ChatClient.session(wsUrl, testChatToken({ id: `chat-${run}-2` }).token));
}

/** Inquiries over the API, fast until every model's first drift window closed, then a trickle; agents label some. */
async function sendTraffic(): Promise<void> {
  const api = urlOf("api");
  let labelled = 0;
  while (sending) {
    const n = sent.length;
    const [subject, body] = TEXTS[n % TEXTS.length]!;
    const response = await post(`${api}/v1/inquiries`, token, { subject, body: `${body} (ref ${run}-${n})`, customer: { id: `cust-${run}-${n % 5}`, tier: "standard" } });
    if (response.status !== 202) throw new Error(`POST /v1/inquiries answered ${response.status}: ${await response.text()}`);
    sent.push(((await response.json()) as { inquiry_id: string }).inquiry_id);
    // An agent confirms the intent of an earlier, answered inquiry: measured accuracy needs labels.
    if (labelled < 10 && n >= 20) {
      const id = sent[labelled]!;
      const state = (await (await get(`${api}/v1/inquiries/${id}`, token)).json()) as { predictions?: { task: string; predicted_label: string }[] };
      const intent = state.predictions?.find((p) => p.task === "intent");
      if (intent) {
        const labels = await post(`${api}/v1/inquiries/${id}/labels`, token, { intent: intent.predicted_label });
        if (labels.status !== 202) throw new Error(`labels answered ${labels.status}: ${await labels.text()}`);
      }
      labelled += 1;
    }
    // Now and then an email and a chat message too, so that their rates and latencies have a window with traffic.
    if (n % 10 === 5) {
      await imap!.append(mailbox, email(n));
      chatClients.at(-1)?.message(`Hello again (${run}-${n}): has my parcel been sent yet?`);
    }
    await new Promise((resolve) => setTimeout(resolve, n < DRIFT_WINDOW * 2 ? 150 : 1_000));
  }
}

beforeAll(async () => {
  await preparePipeline(endpoints);
  imap = await imapClient(endpoints.imapUrl);
  await imap.mailboxCreate(mailbox).catch(() => undefined);
  await imap.mailboxCreate(processed).catch(() => undefined);
  // A mail server that takes whatever it is sent.
  const server = new SMTPServer({ authOptional: true, disabledCommands: ["STARTTLS"], logger: false, onData: (stream, _session, callback) => stream.resume().on("end", () => callback()) });
  const smtpPort = await freePort();
  await new Promise<void>((resolve) => server.listen(smtpPort, "127.0.0.1", resolve));
  smtp = { server, port: smtpPort };

  // The exporters as the local stack defines them, on free ports, watching the services the tests use.
  const ports: StackPorts = {
    ...stackPorts(config),
    postgres: portOf(endpoints.databaseUrl),
    redis: portOf(endpoints.redisUrl),
    elasticsearch: portOf(endpoints.elasticsearchUrl),
    postgresExporter: await freePort(),
    redisExporter: await freePort(),
    elasticsearchExporter: await freePort(),
  };
  const home = mkdtempSync(path.join(os.tmpdir(), "switchboard-dashboards-stack-"));
  exporters = { supervisor: createSupervisor(home, ports, createLogger({ logLevel: "warn" })), home };
  await exporters.supervisor.up([postgresExporter, redisExporter, elasticsearchExporter]);

  const logDir = mkdtempSync(path.join(os.tmpdir(), "switchboard-dashboards-"));
  const tasks = [...deployedRunnables(TRIAGE), ...TRIAGE.connectors.map(runnableConnector)];
  processes = await Promise.all(
    tasks.map(async (task) => {
      const port = await freePort();
      return { task, port, proc: spawnProcessor(task, logDir, envOf(task, port)) };
    }),
  );
  await Promise.all(processes.map(({ proc, port }) => waitHealthy(proc, port, 420_000)));
  prometheus = await startTestPrometheus([...processes.map(({ task, port }) => ({ job: task.name, target: `127.0.0.1:${port}` })), ...stackExporterTargets(ports)]);

  ({ token } = await testKey(endpoints, ["agent", "ingest", "read", "label"], `Dashboards ${run}`));
  startedAt = Date.now();
  traffic = sendTraffic();
  await sendWebhooks();
  await chat();
}, 900_000);

afterAll(async () => {
  sending = false;
  await traffic?.catch(() => undefined);
  for (const client of chatClients) client.close();
  await Promise.all(processes.map(({ proc }) => stopProcessor(proc)));
  await exporters?.supervisor.down([postgresExporter, redisExporter, elasticsearchExporter]);
  if (exporters) rmSync(exporters.home, { recursive: true, force: true });
  prometheus?.stop();
  await imap?.logout().catch(() => undefined);
  await new Promise<void>((resolve) => (smtp ? smtp.server.close(() => resolve()) : resolve()));
});

interface RangeResult {
  readonly status: string;
  readonly error?: string;
  readonly data?: { readonly result: readonly { readonly values: readonly [number, string][] }[] };
}

/** Whether `expr` has a number (not NaN) at some step since the traffic started; throws on a query Prometheus refuses. */
async function hasData(expr: string): Promise<boolean> {
  const params = new URLSearchParams({ query: expr.replaceAll(RATE, RATE_WINDOW), start: String((startedAt - 5_000) / 1000), end: String(Date.now() / 1000), step: "2" });
  const answer = (await (await fetch(`${prometheus!.url}/api/v1/query_range?${params}`)).json()) as RangeResult;
  if (answer.status !== "success") throw new Error(`Prometheus refused ${expr}: ${answer.error}`);
  return (answer.data?.result ?? []).some((series) => series.values.some(([, value]) => value !== "NaN"));
}

describe("the Grafana dashboards on a live pipeline", () => {
  const queries = DASHBOARDS.flatMap((d) => [
    ...d.rows.flatMap((r) => r.panels.flatMap((p) => p.targets.map((t) => ({ where: `${d.title} / ${r.title} / ${p.title} [${t.legend}]`, expr: t.expr })))),
    ...(d.annotations ?? []).map((a) => ({ where: `${d.title} / annotation ${a.name}`, expr: a.expr })),
  ]);

  it(`every panel's query (${queries.length} in ${DASHBOARDS.length} dashboards) returns data from Prometheus`, { timeout: 300_000 }, async () => {
    let missing = queries;
    const deadline = Date.now() + 180_000;
    while (missing.length > 0 && Date.now() < deadline) {
      const answered = await Promise.all(missing.map((q) => hasData(q.expr)));
      missing = missing.filter((_, i) => !answered[i]);
      if (missing.length > 0) await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
    expect(missing.map((q) => `${q.where}: ${q.expr}`)).toEqual([]);
    expect(sent.length).toBeGreaterThan(0);
  });
});
