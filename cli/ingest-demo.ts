import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ImapFlow } from "imapflow";
import WebSocket from "ws";
import type { Config } from "../config/settings.js";
import { inquiryIdFor, sourceIdOf } from "../connectors/email/ids.js";
import { imapOptions } from "../connectors/email/session.js";
import { signatureHeaders } from "../connectors/tickets/signatures.js";
import type { Endpoints } from "../stack/index.js";
import { oneLine } from "./demo.js";
import { webhookSecret } from "./local-access.js";

/** What GET /v1/inquiries/{id} answers, as far as the demo prints it. */
interface InquiryState {
  readonly status: "received" | "cleaned" | "routed" | "responded";
  readonly routing: { readonly department: string; readonly queue: string; readonly intent: string | null } | null;
  readonly response: { readonly strategy: string; readonly text: string } | null;
}

interface Arrival {
  readonly channel: string;
  readonly how: string;
  readonly inquiryId: string;
  readonly sentAt: number;
  /** Chat: the reply as it came back on the customer's socket (at the time it came), or undefined if it did not in time. */
  readonly pushed?: Promise<{ readonly text: string; readonly at: number } | undefined>;
}

async function expectStatus(
  response: Response,
  what: string,
  statuses: readonly number[],
): Promise<Record<string, unknown>> {
  const text = await response.text();
  if (!statuses.includes(response.status)) throw new Error(`${what}: HTTP ${response.status} ${oneLine(text, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** An inquiry by the REST API, as `curl` would send it. */
async function viaApi(apiUrl: string, apiKey: string): Promise<Arrival> {
  const sentAt = Date.now();
  const answer = await expectStatus(
    await fetch(`${apiUrl}/v1/inquiries`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${apiKey}`,
        "content-type": "application/json",
        "idempotency-key": randomUUID(),
      },
      body: JSON.stringify({
        subject: "Order 48213 never arrived",
        body: "Hi, I ordered a kettle two weeks ago (order 48213) and it still has not arrived. Can you tell me where it is?",
        customer: { id: "demo-api-customer", tier: "standard" },
      }),
    }),
    "POST /v1/inquiries",
    [202],
  );
  return { channel: "api", how: "POST /v1/inquiries", inquiryId: String(answer.inquiry_id), sentAt };
}

/** A help desk's ticket-created event, signed as the generic webhook expects. */
async function viaWebhook(apiUrl: string, secret: string): Promise<Arrival> {
  const ticket = `DEMO-${randomUUID().slice(0, 8)}`;
  const body = Buffer.from(
    JSON.stringify({
      event: "ticket.created",
      id: `evt_${ticket}`,
      occurred_at: new Date().toISOString(),
      ticket: {
        id: ticket,
        subject: "Wrong colour cushions delivered",
        status: "new",
        priority: "normal",
        tags: ["returns"],
      },
      requester: { id: "demo-ticket-customer", tier: "premium" },
      comment: {
        id: `cm_${ticket}`,
        body: "<p>I ordered four cushion covers in sage green and received terracotta ones. Can I exchange them, and who pays the return shipping?</p>",
        content_type: "html",
        author: "customer",
        public: true,
      },
    }),
  );
  const sentAt = Date.now();
  const answer = await expectStatus(
    await fetch(`${apiUrl}/v1/webhooks/generic`, {
      method: "POST",
      headers: { "content-type": "application/json", ...signatureHeaders("generic", secret, body, sentAt) },
      body: new Uint8Array(body),
    }),
    "POST /v1/webhooks/generic",
    [202],
  );
  return {
    channel: "ticket",
    how: "signed webhook POST /v1/webhooks/generic",
    inquiryId: String(answer.inquiry_id),
    sentAt,
  };
}

/** A customer's email, delivered into the mailbox the email connector watches. */
async function viaEmail(imapUrl: string, mailbox: string): Promise<Arrival> {
  const messageId = `<demo-${randomUUID()}@customers.example>`;
  const raw = Buffer.from(
    [
      "From: Demo Customer <demo.customer@customers.example>",
      "To: support@hearth-harbor.example",
      "Subject: Refund for a cracked teapot",
      `Message-ID: ${messageId}`,
      `Date: ${new Date().toUTCString()}`,
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
      "",
      "Hello, the teapot I received yesterday arrived cracked. I would like a refund, please.",
      "",
      "Thanks,",
      "A customer",
      "",
    ].join("\r\n"),
  );
  const client = new ImapFlow({ ...imapOptions(imapUrl), logger: false });
  const sentAt = Date.now();
  await client.connect();
  try {
    await client.append(mailbox, raw);
  } finally {
    await client.logout().catch(() => undefined);
  }
  return {
    channel: "email",
    how: `IMAP APPEND into ${mailbox}`,
    inquiryId: inquiryIdFor(sourceIdOf(messageId, raw)),
    sentAt,
  };
}

/**
 * A customer on the chat page, as the page does it: a session (a guest's from the gateway, or,
 * given `integration`, one the API issues as a website's backend would), hello on
 * its socket, a message (acknowledged with its inquiry id once Kafka has it), then the reply
 * pushed back on the same socket.
 */
export async function viaChat(chatUrl: string, timeoutMs: number, integration?: { readonly apiUrl: string; readonly apiKey: string }): Promise<Arrival> {
  // A guest, as the chat page opens a session; with guest sessions off, the way an integration opens one for its customer.
  const session = integration
    ? await expectStatus(
        await fetch(`${integration.apiUrl}/v1/chat/sessions`, {
          method: "POST",
          headers: { authorization: `Bearer ${integration.apiKey}`, "content-type": "application/json" },
          body: JSON.stringify({ customer: { id: "demo-chat-customer", name: "Demo customer", tier: "standard" } }),
        }),
        "POST /v1/chat/sessions",
        [201],
      )
    : await expectStatus(
        await fetch(`${chatUrl}/chat/sessions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Demo customer" }) }),
        "POST /chat/sessions",
        [201],
      );
  const socket = new WebSocket(`${chatUrl.replace(/^http/, "ws")}/chat/socket`);
  const frames: Record<string, unknown>[] = [];
  let wake = () => undefined as void;
  socket.on("message", (data) => {
    frames.push(JSON.parse(data.toString()) as Record<string, unknown>);
    wake();
  });
  socket.on("close", () => wake());
  const next = (match: (frame: Record<string, unknown>) => boolean, deadline: number) =>
    new Promise<Record<string, unknown> | undefined>((resolve) => {
      const check = () => {
        const found = frames.find(match);
        if (found || socket.readyState >= WebSocket.CLOSING || Date.now() > deadline) {
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(check, Math.max(0, deadline - Date.now()) + 1);
      wake = check;
      check();
    });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const sentAt = Date.now();
  socket.send(JSON.stringify({ type: "hello", token: session.token, resume_after: null }));
  socket.send(JSON.stringify({ type: "message", client_id: randomUUID(), text: "Hi, can I return a desk lamp I bought last week? It does not fit my desk." }));
  const ack = await next((f) => f.type === "ack" || f.type === "error", Date.now() + 15_000);
  if (ack?.type !== "ack") {
    socket.close();
    throw new Error(`chat: the gateway did not acknowledge the message: ${JSON.stringify(ack ?? frames.at(-1) ?? "no answer")}`);
  }
  const inquiryId = String(ack.inquiry_id);
  const pushed = next((f) => f.type === "reply" && f.inquiry_id === inquiryId, sentAt + timeoutMs).then((reply) => {
    socket.close();
    return reply ? { text: String(reply.text), at: Date.now() } : undefined;
  });
  return { channel: "chat", how: "WebSocket /chat/socket", inquiryId, sentAt, pushed };
}

/** Polls GET /v1/inquiries/{id} until a reply is drafted; undefined when none came in time. */
async function untilResponded(
  apiUrl: string,
  apiKey: string,
  inquiryId: string,
  deadline: number,
): Promise<{ state: InquiryState; at: number } | undefined> {
  while (Date.now() < deadline) {
    const response = await fetch(`${apiUrl}/v1/inquiries/${inquiryId}`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    if (response.ok) {
      const state = (await response.json()) as InquiryState;
      if (state.status === "responded") return { state, at: Date.now() };
    } else if (response.status !== 404) {
      throw new Error(`GET /v1/inquiries/${inquiryId}: HTTP ${response.status} ${oneLine(await response.text(), 300)}`);
    }
    await sleep(250);
  }
  return undefined;
}

/**
 * The four ways in — the REST API, a signed ticket webhook, an email and the chat gateway — each
 * followed through `GET /v1/inquiries/{id}` until its reply is drafted, as a person would check
 * with `curl`; the chat message's reply must also come back on the customer's socket. Returns
 * how many of the four were answered.
 */
export async function demoIngest(
  config: Config,
  endpoints: Endpoints,
  apiUrl: string,
  apiKey: string,
  chatUrl: string,
  timeoutMs = 90_000,
): Promise<{ sent: number; answered: number }> {
  const secret = webhookSecret(config, "generic");
  if (!secret) throw new Error("no generic webhook secret: the API was started without one");
  const arrivals = await Promise.all([
    viaApi(apiUrl, apiKey),
    viaWebhook(apiUrl, secret),
    viaEmail(endpoints.imapUrl, config.imapMailbox),
    viaChat(chatUrl, timeoutMs, config.chatGuestSessions ? undefined : { apiUrl, apiKey }),
  ]);
  console.log(`\nthe connectors: ${arrivals.length} inquiries sent, followed through GET /v1/inquiries/{id}`);
  const deadline = Date.now() + timeoutMs;
  const outcomes = await Promise.all(arrivals.map((a) => untilResponded(apiUrl, apiKey, a.inquiryId, deadline)));
  const pushes = await Promise.all(arrivals.map((a) => a.pushed));
  let answered = 0;
  arrivals.forEach((arrival, i) => {
    const outcome = outcomes[i];
    if (!outcome) {
      console.log(
        `  ${arrival.channel.padEnd(6)} ${arrival.how}: no reply within ${timeoutMs / 1000} s (inquiry ${arrival.inquiryId})`,
      );
      return;
    }
    const push = pushes[i];
    if (arrival.pushed && !push) {
      console.log(`  ${arrival.channel.padEnd(6)} ${arrival.how}: drafted, but the reply did not come back on the socket within ${timeoutMs / 1000} s (inquiry ${arrival.inquiryId})`);
      return;
    }
    answered++;
    const { state } = outcome;
    const at = push?.at ?? outcome.at;
    const routing = state.routing;
    console.log(
      `  ${arrival.channel.padEnd(6)} ${arrival.how} → ${routing?.department ?? "?"} / ${routing?.queue ?? "?"}, intent ${routing?.intent ?? "?"}, ` +
        `answered${push ? " on the socket" : ""} within ${((at - arrival.sentAt) / 1000).toFixed(1)} s (inquiry ${arrival.inquiryId})\n` +
        `         ${state.response?.strategy}: ${oneLine(state.response?.text ?? "", 100)}`,
    );
  });
  return { sent: arrivals.length, answered };
}
