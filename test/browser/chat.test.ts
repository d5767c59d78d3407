import { createHash, randomUUID } from "node:crypto";
import net from "node:net";
import { Redis } from "ioredis";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { redisOptions } from "../../config/security.js";
import { createChatStore, type ChatStore } from "../../connectors/chat/store.js";
import type { AgentReply, InquiryResponse } from "../../schemas/types.generated.js";
import { preparePipeline, startPipeline, type Pipeline } from "../e2e/pipeline.js";
import { freePort, tailTopic, until, type Tail } from "../support/api.js";
import { openBrowser, screenshot } from "../support/browser.js";
import { startChat, testChatToken } from "../support/chat.js";

/**
 * The customer chat page in Debian's chromium, against the real triage pipeline (chained, as `up`
 * deploys it) and two real chat gateway processes sharing Kafka and Redis. No step waits a fixed
 * time: each waits for what the page or the services show, with generous limits for a busy
 * machine. Screenshots of each state go to .stack/screenshots/chat-*.png.
 */

const endpoints = inject("endpoints");
const run = randomUUID().slice(0, 8);
const INSTANCES = [`test-chat-${run}-1`, `test-chat-${run}-2`] as const;
/** Messages a session may send per window on these gateways: low, so that the page's refusal can be shown. */
const RATE_LIMIT = 4;
const SHOWN_MS = 180_000;

let pipeline: Pipeline;
let chats: Awaited<ReturnType<typeof startChat>>[] = [];
let browser: Browser;
let responses: Tail<InquiryResponse>;
let redis: Redis;
let store: ChatStore;

const GATEWAY_ENV = {
  // A killed gateway's partitions of the delivery group move to the survivor after this.
  SWITCHBOARD_SESSION_TIMEOUT_MS: "6000",
  SWITCHBOARD_CHAT_RATE_LIMIT: String(RATE_LIMIT),
  SWITCHBOARD_CHAT_RATE_WINDOW_MS: "600000",
};

beforeAll(async () => {
  await preparePipeline(endpoints);
  pipeline = await startPipeline(endpoints, {}, "chained");
  chats = await Promise.all(INSTANCES.map(async (instanceId) => startChat(endpoints, { port: await freePort(), instanceId, env: GATEWAY_ENV })));
  responses = await tailTopic<InquiryResponse>(pipeline.kafka, pipeline.codec, "inquiries.responses", (r) => r.envelope.channel === "chat");
  redis = new Redis(endpoints.redisUrl, redisOptions(endpoints));
  store = createChatStore(redis, { sessionTtlMs: 3_600_000, mailboxMaxLength: 1_000 });
  browser = await openBrowser();
}, 1_800_000);

afterAll(async () => {
  await browser?.close();
  await responses?.close();
  redis?.disconnect();
  await Promise.all(chats.map((chat) => chat.stop().catch(() => undefined)));
  await pipeline?.stop();
});

/** Checks run at the end of the test whose page they watched. */
const afterChecks: (() => void)[] = [];

/** Every reply frame the page received, on any of its sockets, in order. */
interface Frames {
  readonly replies: { id: string; inquiry_id: string; author: string; socket: string }[];
  /** The gateway's typing notices, in order. */
  readonly typing: boolean[];
}

async function chatPage(): Promise<{ context: BrowserContext; page: Page; frames: Frames }> {
  const context = await browser.newContext({ viewport: { width: 520, height: 900 } });
  const page = await context.newPage();
  const frames: Frames = { replies: [], typing: [] };
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("websocket", (socket) => {
    socket.on("framereceived", ({ payload }) => {
      const frame = JSON.parse(String(payload)) as { type: string; id: string; inquiry_id: string; author: string; on: boolean };
      if (frame.type === "typing") frames.typing.push(frame.on);
      if (frame.type === "reply") frames.replies.push({ id: frame.id, inquiry_id: frame.inquiry_id, author: frame.author, socket: socket.url() });
    });
  });
  // A script error on the page fails the test that caused it, not a later one.
  afterChecks.push(() => expect(errors, "errors thrown by the page's script").toEqual([]));
  return { context, page, frames };
}

const root = (page: Page) => page.locator("#chat");
const replies = (page: Page) => page.locator(".msg.reply");

/** Types a question and sends it with Enter; resolves with the inquiry id the gateway acknowledged it as. */
async function ask(page: Page, text: string): Promise<string> {
  const before = await page.locator(".msg.customer").count();
  await page.getByLabel("Message").fill(text);
  await page.getByLabel("Message").press("Enter");
  const mine = page.locator(".msg.customer").nth(before);
  await mine.and(page.locator('[data-status="sent"]')).waitFor({ timeout: 60_000 });
  return (await mine.getAttribute("data-inquiry-id"))!;
}

const replyFor = (page: Page, inquiryId: string, author: "assistant" | "agent" = "assistant") =>
  page.locator(`.msg.reply.${author}[data-inquiry-id="${inquiryId}"]`);

const drafted = async (inquiryId: string) =>
  (await until(async () => responses.records().find((r) => r.key === inquiryId)?.value, SHOWN_MS)) ?? expect.fail(`no drafted reply for ${inquiryId} on inquiries.responses`);

/**
 * A gateway that hangs right after the WebSocket handshake: it upgrades the connection, then
 * never answers (no welcome, no close frame, no FIN), as an instance stopped between the two would.
 */
async function hungAfterUpgrade(): Promise<{ wsUrl: string; close(): Promise<void> }> {
  const connections = new Set<net.Socket>();
  const server = net.createServer((connection) => {
    connections.add(connection);
    connection.on("error", () => undefined);
    connection.once("data", (head) => {
      const key = /^sec-websocket-key:\s*(\S+)/im.exec(head.toString("latin1"))?.[1] ?? "";
      const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
      connection.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    wsUrl: `ws://127.0.0.1:${port}/chat/socket`,
    close: async () => {
      for (const connection of connections) connection.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("the customer chat page in a real browser", () => {
  it("a gateway that upgrades the socket and then never welcomes it is given up without waiting for its close; the page sends on the next one", async () => {
    const hung = await hungAfterUpgrade();
    const live = chats[0]!;
    const { context, page } = await chatPage();
    // Per socket the page opens, in order: its URL, whether it said hello, and when the browser reported it closed.
    const sockets: { url: string; hello: boolean; closed: boolean; closedBeforeNext?: boolean }[] = [];
    page.on("websocket", (socket) => {
      const previous = sockets.at(-1);
      if (previous) previous.closedBeforeNext = previous.closed;
      const entry = { url: socket.url(), hello: false, closed: false };
      sockets.push(entry);
      socket.on("framesent", ({ payload }) => {
        if ((JSON.parse(String(payload)) as { type: string }).type === "hello") entry.hello = true;
      });
      socket.on("close", () => (entry.closed = true));
    });
    try {
      await page.goto(`${live.url}/chat?gateways=${hung.wsUrl},${live.wsUrl}`);
      const question = await ask(page, "Can I still change the delivery address of my order?");
      await replyFor(page, question).waitFor({ timeout: SHOWN_MS });
      expect(await root(page).getAttribute("data-instance")).toBe(live.instanceId);
      // The first socket was open (the page said hello on it) and was given up by the welcome
      // timeout: the next one was opened before the browser had finished closing it, which on a
      // hung connection takes a closing-handshake timeout (a minute in Chromium).
      expect(sockets[0]).toMatchObject({ url: hung.wsUrl, hello: true, closedBeforeNext: false });
      expect(sockets[1]).toMatchObject({ url: live.wsUrl, hello: true });
      expect(await page.locator(".msg.customer").count()).toBe(1);
    } finally {
      await context.close();
      await hung.close();
    }
    for (const check of afterChecks.splice(0)) check();
  }, 600_000);

  it("a customer types a question and sees the drafted reply; refusals are shown; a reload resumes the conversation", async () => {
    const { context, page, frames } = await chatPage();
    try {
      // Served by the gateway itself, no gateway list: the page talks to the instance that served it.
      await page.goto(`${chats[0]!.url}/chat`);
      await screenshot(page, "chat-1-empty");
      expect(await root(page).getAttribute("data-state")).toBe("idle");

      const inquiryId = await ask(page, "Hello, where is my order? I placed it last week and it has not arrived yet.");
      expect(await root(page).getAttribute("data-state")).toBe("connected");
      expect(await root(page).getAttribute("data-instance")).toBe(INSTANCES[0]);
      const reply = replyFor(page, inquiryId);
      await reply.waitFor({ timeout: SHOWN_MS });
      const draft = await drafted(inquiryId);
      expect(draft.envelope.reply_to).toBe(await root(page).getAttribute("data-session-id"));
      // The drafted reply, as respond wrote it, is what the customer reads.
      expect(await reply.locator(".msg-text").textContent()).toBe(draft.text);
      expect(await reply.locator(".msg-author").textContent()).toBe("Assistant");
      // The assistant was "typing" from the acknowledgement to the reply, and is no longer.
      expect(frames.typing[0]).toBe(true);
      await page.locator("#typing").waitFor({ state: "hidden", timeout: 60_000 });
      expect(frames.typing.at(-1)).toBe(false);
      await screenshot(page, "chat-2-answered");

      // Over the gateway's limit (config.json's max_text_chars): the page says so and sends nothing.
      await page.getByLabel("Message").fill(`My order ${"is late ".repeat(600)}`);
      await page.getByLabel("Message").press("Enter");
      await page.getByRole("alert").filter({ hasText: "too long" }).waitFor({ timeout: 10_000 });
      expect(await page.locator("#bytes-left").textContent()).toMatch(/^Too long by \d+ characters\.$/);
      expect(await page.locator(".msg.customer").count()).toBe(1);
      await screenshot(page, "chat-3-too-long");
      await page.getByLabel("Message").fill("");

      // Past the session's rate limit: the message is refused with rate_limited and can be retried later.
      let refused = false;
      for (let i = 0; i < RATE_LIMIT && !refused; i++) {
        await page.getByLabel("Message").fill(`Also, one more thing (${i + 1})`);
        await page.getByLabel("Message").press("Enter");
        const last = page.locator(".msg.customer").last();
        await last.and(page.locator('[data-status="sent"], [data-status="failed"]')).waitFor({ timeout: 60_000 });
        refused = (await last.getAttribute("data-status")) === "failed";
        if (refused) expect(await last.locator(".msg-failure").textContent()).toContain("too many");
      }
      expect(refused, `the ${RATE_LIMIT + 1}th message of the window is refused`).toBe(true);
      expect(await root(page).getAttribute("data-state")).toBe("connected");
      await screenshot(page, "chat-4-rate-limited");

      // A reload resumes: the same session, the conversation as it was, no reply shown or sent twice.
      const shown = await replies(page).evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.replyId));
      const sessionId = await root(page).getAttribute("data-session-id");
      await page.reload();
      await page.locator('#chat[data-state="connected"]').waitFor({ timeout: 60_000 });
      expect(await root(page).getAttribute("data-session-id")).toBe(sessionId);
      // The later messages' replies may still be arriving; those shown before the reload are there once each.
      const after = await replies(page).evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.replyId));
      expect(after.slice(0, shown.length)).toEqual(shown);
      expect(new Set(after).size).toBe(after.length);
      expect(await replyFor(page, inquiryId).count()).toBe(1);
      await screenshot(page, "chat-5-reloaded");
      const sentTwice = frames.replies.filter((frame, i) => frames.replies.findIndex((f) => f.id === frame.id) !== i);
      expect(sentTwice, "reply frames the gateway sent more than once").toEqual([]);
    } finally {
      await context.close();
    }
    for (const check of afterChecks.splice(0)) check();
  }, 600_000);

  it("two gateway instances: the instance holding the page is killed while replies are produced; the page reconnects to the other and shows what it missed, once", async () => {
    const { context, page, frames } = await chatPage();
    try {
      // Instances behind no load balancer: the page is given both addresses and starts on the first.
      await page.goto(`${chats[0]!.url}/chat?gateways=${chats.map((c) => c.wsUrl).join(",")}`);
      const first = await ask(page, "Hi, I want to return a jacket I bought, how do I get a refund?");
      await replyFor(page, first).waitFor({ timeout: SHOWN_MS });
      expect(await root(page).getAttribute("data-instance")).toBe(INSTANCES[0]);
      const sessionId = (await root(page).getAttribute("data-session-id"))!;
      await screenshot(page, "chat-failover-1-on-instance-1");

      // A second question, in Kafka (acknowledged) but perhaps not answered yet; then the customer's
      // network drops and the instance holding the socket dies. The page cannot reconnect until
      // the network is back, so what is produced now is what it misses.
      const second = await ask(page, "And can I exchange it for a bigger size instead?");
      await context.setOffline(true);
      chats[0]!.kill();
      await page.locator('#chat[data-state="offline"]').waitFor({ timeout: 60_000 });
      await screenshot(page, "chat-failover-2-away");

      // While the page is away an agent answers the first question from the console: an AgentReply on inquiries.replies.
      const envelope = (await drafted(first)).envelope;
      const agentReply: AgentReply = {
        reply_id: randomUUID(),
        inquiry_id: first,
        envelope,
        text: "This is Sam from support: I have started the refund, you will get a prepaid return label by email.",
        agent: "sam",
        edited: true,
        sent_at: Date.now(),
      };
      const producer = pipeline.kafka.producer();
      await producer.connect();
      await producer.send({ topic: "inquiries.replies", messages: [{ key: first, value: pipeline.codec.encode("inquiries.replies", agentReply) }] });
      await producer.disconnect();
      // Both missed replies are in the session's mailbox (appended by whichever instance's delivery
      // consumer read them, the survivor once the dead one's partitions moved) before the page is back.
      let entries: Awaited<ReturnType<ChatStore["readAfter"]>> = [];
      const has = (inquiryId: string, author: string) => entries.some((e) => e.reply.inquiry_id === inquiryId && e.reply.author === author);
      const mailbox = await until(async () => {
        entries = await store.readAfter(sessionId, "0-0", 100);
        return has(first, "agent") && has(second, "assistant") ? entries : undefined;
      }, SHOWN_MS, 500);
      expect(
        mailbox,
        `the agent's reply and the second draft reach the session's mailbox (it has ${JSON.stringify(entries.map((e) => [e.id, e.reply.inquiry_id, e.reply.author]))}; ` +
          `the second draft is ${responses.records().some((r) => r.key === second) ? "" : "not "}on inquiries.responses)`,
      ).toBeDefined();
      expect(await replyFor(page, first, "agent").count()).toBe(0);

      // The network is back: the page reconnects by itself, to the surviving instance, and resumes.
      await context.setOffline(false);
      await page.locator(`#chat[data-state="connected"][data-instance="${INSTANCES[1]}"]`).waitFor({ timeout: 120_000 });
      await replyFor(page, first, "agent").waitFor({ timeout: SHOWN_MS });
      await replyFor(page, second).waitFor({ timeout: SHOWN_MS });
      expect(await replyFor(page, first, "agent").locator(".msg-text").textContent()).toBe(agentReply.text);
      expect(await replyFor(page, first, "agent").locator(".msg-author").textContent()).toBe("sam");
      await screenshot(page, "chat-failover-3-on-instance-2");

      // A third question on the survivor. Replies reach a session in order, so once its answer is
      // shown, any earlier reply delivered again would have come before it.
      const third = await ask(page, "Thanks! One last thing: how long does the refund take?");
      await replyFor(page, third).waitFor({ timeout: SHOWN_MS });
      await screenshot(page, "chat-failover-4-after");

      for (const [inquiryId, author] of [[first, "assistant"], [first, "agent"], [second, "assistant"], [third, "assistant"]] as const) {
        expect(await replyFor(page, inquiryId, author).count(), `${author} reply to ${inquiryId} shown once`).toBe(1);
      }
      expect(await replies(page).count()).toBe(4);
      const ids = frames.replies.map((f) => f.id);
      expect(new Set(ids).size, `reply frames sent more than once: ${JSON.stringify(frames.replies)}`).toBe(ids.length);
      // What was missed came over the second instance's socket.
      const onSecond = frames.replies.filter((f) => f.socket === chats[1]!.wsUrl).map((f) => f.inquiry_id + f.author);
      expect(onSecond).toContain(`${first}agent`);
      expect(await page.locator(".msg.customer").count()).toBe(3);
      expect(await page.locator('.msg.customer[data-status="sent"]').count()).toBe(3);

      // And by back-off alone, the network up all along: the first instance comes back at its
      // address, the second (holding the page now) is killed, and the page returns to the first.
      chats[0] = await startChat(endpoints, { port: chats[0]!.port, instanceId: INSTANCES[0], env: GATEWAY_ENV });
      chats[1]!.kill();
      await page.locator(`#chat[data-state="connected"][data-instance="${INSTANCES[0]}"]`).waitFor({ timeout: 120_000 });
      const fourth = await ask(page, "Sorry, one more: do you ship to Norway?");
      await replyFor(page, fourth).waitFor({ timeout: SHOWN_MS });
      await screenshot(page, "chat-failover-5-back-on-instance-1");
      expect(await replies(page).count()).toBe(5);
      const all = frames.replies.map((f) => f.id);
      expect(new Set(all).size, `reply frames sent more than once: ${JSON.stringify(frames.replies)}`).toBe(all.length);
    } finally {
      await context.close();
    }
    for (const check of afterChecks.splice(0)) check();
  }, 900_000);

  it("an integration's session in the fragment; the same session opened in a second tab; an expired session replaced by a guest one", async () => {
    // The instances were killed and restarted by the test before: whichever answers serves these pages.
    const chat = (await until(async () => {
      for (const candidate of chats) if (await fetch(`${candidate.url}/healthz`).then((r) => r.ok, () => false)) return candidate;
      return undefined;
    }, 60_000)) ?? expect.fail("no chat gateway instance is healthy");
    const customer = testChatToken({ id: `c-${run}`, name: "Noor", tier: "premium" });
    const { context, page } = await chatPage();
    try {
      await page.goto(`${chat.url}/chat#token=${customer.token}`);
      await page.locator('#chat[data-state="connected"]').waitFor({ timeout: 60_000 });
      expect(await root(page).getAttribute("data-session-id")).toBe(customer.sessionId);
      // Taken from the address at once: not in the history, nor in what a person would copy.
      expect(new URL(page.url()).hash).toBe("");
      expect(await page.locator("#name-row").isHidden()).toBe(true);

      // The same conversation in a second tab (its own sessionStorage, the same token): the gateway
      // hands the session to the newer socket; the first tab stops and offers to take it back.
      const second = await context.newPage();
      await second.goto(`${chat.url}/chat#token=${customer.token}`);
      await second.locator('#chat[data-state="connected"]').waitFor({ timeout: 60_000 });
      await page.locator('#chat[data-state="elsewhere"]').waitFor({ timeout: 60_000 });
      await screenshot(page, "chat-6-open-elsewhere");
      await page.getByRole("button", { name: "Continue here" }).click();
      await page.locator('#chat[data-state="connected"]').waitFor({ timeout: 60_000 });
      await second.locator('#chat[data-state="elsewhere"]').waitFor({ timeout: 60_000 });
      const inquiryId = await ask(page, "Is my premium support plan still active?");
      expect(inquiryId).toBeTruthy();
      await second.close();
    } finally {
      await context.close();
    }

    // A token that has expired: the page says so and starts a guest session with the next message.
    const expired = testChatToken({ id: `c-${run}-old` }, 1);
    const { exp } = JSON.parse(Buffer.from(expired.token.split(".")[1]!, "base64url").toString("utf8")) as { exp: number };
    await until(async () => (Date.now() > exp * 1000 ? true : undefined), 10_000, 100);
    const { context: later, page: again } = await chatPage();
    try {
      await again.goto(`${chat.url}/chat#token=${expired.token}`);
      await again.locator(".chat-notice").filter({ hasText: "expired" }).waitFor({ timeout: 60_000 });
      expect(await root(again).getAttribute("data-state")).toBe("idle");
      const inquiryId = await ask(again, "Hello again, I was away for a while.");
      expect(inquiryId).toBeTruthy();
      const sessionId = await root(again).getAttribute("data-session-id");
      expect(sessionId).not.toBe(expired.sessionId);
      await screenshot(again, "chat-7-expired-replaced");
    } finally {
      await later.close();
    }
    for (const check of afterChecks.splice(0)) check();
  }, 300_000);

  it("an idle page whose gateway hangs (SIGSTOP: no close, no FIN) notices by its own ping, reconnects to the other instance and shows the reply written meanwhile, once", async () => {
    // Two instances of their own, announcing a short ping interval: silent for 2 s the page pings, unanswered for 2 s more it gives up.
    const quick = await Promise.all(
      [1, 2].map(async (n) => startChat(endpoints, { port: await freePort(), instanceId: `test-chat-${run}-quick-${n}`, env: { ...GATEWAY_ENV, SWITCHBOARD_CHAT_PAGE_PING_MS: "2000" } })),
    );
    const [hung, other] = quick as [(typeof quick)[0], (typeof quick)[0]];
    const { context, page, frames } = await chatPage();
    // Every frame of every socket the page opens, in the order each socket saw them.
    const traffic: { socket: number; url: string; way: "sent" | "received"; type: string }[] = [];
    let sockets = 0;
    page.on("websocket", (socket) => {
      const n = ++sockets;
      const log = (way: "sent" | "received") => ({ payload }: { payload: string | Buffer }) =>
        traffic.push({ socket: n, url: socket.url(), way, type: (JSON.parse(String(payload)) as { type: string }).type });
      socket.on("framesent", log("sent"));
      socket.on("framereceived", log("received"));
    });
    try {
      await page.goto(`${hung.url}/chat?gateways=${hung.wsUrl},${other.wsUrl}`);
      const question = await ask(page, "Hi, my parcel says delivered but it is not here. Can someone check?");
      await replyFor(page, question).waitFor({ timeout: SHOWN_MS });
      expect(await root(page).getAttribute("data-instance")).toBe(hung.instanceId);
      const sessionId = (await root(page).getAttribute("data-session-id"))!;
      // Idle now: the page pings its gateway when it has heard nothing for 2 s, and is answered.
      const onHung = () => traffic.filter((t) => t.url === hung.wsUrl);
      const answered = await until(async () => {
        const seen = onHung();
        const ping = seen.findIndex((t) => t.way === "sent" && t.type === "ping");
        return ping >= 0 && seen.slice(ping).some((t) => t.way === "received" && t.type === "pong") ? true : undefined;
      }, 60_000, 100);
      expect(answered, `a ping answered with a pong on the first socket (frames: ${JSON.stringify(onHung().slice(-10))})`).toBe(true);
      expect(await root(page).getAttribute("data-instance")).toBe(hung.instanceId);
      await screenshot(page, "chat-hung-1-idle");

      // The instance hangs: its socket stays open, nothing is sent or closed on it. An agent answers meanwhile.
      hung.freeze();
      const sinceFreeze = traffic.length;
      const agentReply: AgentReply = {
        reply_id: randomUUID(),
        inquiry_id: question,
        envelope: (await drafted(question)).envelope,
        text: "This is Priya from support: the courier left it with your neighbour at number 12.",
        agent: "priya",
        edited: true,
        sent_at: Date.now(),
      };
      const producer = pipeline.kafka.producer();
      await producer.connect();
      await producer.send({ topic: "inquiries.replies", messages: [{ key: question, value: pipeline.codec.encode("inquiries.replies", agentReply) }] });
      await producer.disconnect();

      // Nobody types: the page finds the connection dead by itself, moves to the other instance and resumes.
      await page.locator(`#chat[data-state="connected"][data-instance="${other.instanceId}"]`).waitFor({ timeout: 120_000 });
      await replyFor(page, question, "agent").waitFor({ timeout: SHOWN_MS });
      expect(await replyFor(page, question, "agent").locator(".msg-text").textContent()).toBe(agentReply.text);
      await screenshot(page, "chat-hung-2-reconnected");

      // What gave the hung socket up was a ping that nothing answered: after it, the socket received nothing.
      const hungAfter = traffic.slice(sinceFreeze).filter((t) => t.url === hung.wsUrl);
      const lastPing = hungAfter.map((t) => t.way === "sent" && t.type === "ping").lastIndexOf(true);
      expect(lastPing, `a ping on the hung socket after the freeze (frames: ${JSON.stringify(hungAfter)})`).toBeGreaterThanOrEqual(0);
      expect(hungAfter.slice(lastPing + 1).filter((t) => t.way === "received")).toEqual([]);
      expect(traffic.filter((t) => t.way === "sent" && t.type === "message")).toHaveLength(1);
      expect(await page.locator(".msg.customer").count()).toBe(1);
      // Each reply shown once, the agent's over the other instance's socket, and no reply frame twice.
      expect(await replyFor(page, question).count()).toBe(1);
      expect(await replyFor(page, question, "agent").count()).toBe(1);
      expect(frames.replies.filter((f) => f.author === "agent").map((f) => f.socket)).toEqual([other.wsUrl]);
      const ids = frames.replies.map((f) => f.id);
      expect(new Set(ids).size, `reply frames sent more than once: ${JSON.stringify(frames.replies)}`).toBe(ids.length);
      expect((await store.readAfter(sessionId, "0-0", 100)).map((e) => e.id).sort()).toEqual([...ids].sort());
    } finally {
      await context.close();
      hung.thaw();
      await Promise.all(quick.map((chat) => chat.stop().catch(() => undefined)));
    }
    for (const check of afterChecks.splice(0)) check();
  }, 600_000);
});
