/*
 * The customer chat widget. Plain ES module, no build, no framework. It speaks the chat gateway's
 * WebSocket protocol (connectors/chat/; README "Chat gateway"):
 *
 *   page → gateway: hello {token, resume_after}, message {client_id, text}, typing, received {id}, ping
 *   gateway → page: welcome {ping_after_ms, …}, ack {client_id, inquiry_id}, typing {on}, reply {id, …}, error {code, …}, pong
 *
 * Liveness: a browser cannot see WebSocket ping frames, and a connection that died without a
 * close (a NAT timeout, a laptop asleep, a proxy that dropped it) reports nothing. So once the
 * page has received nothing for the welcome's ping_after_ms it sends a ping, which the gateway
 * answers at once; no frame at all within as long again, the socket is given up and the page
 * reconnects and resumes as after any drop (what it missed comes once, from the mailbox).
 *
 * What it keeps in sessionStorage (this tab only, so a reload resumes and a new tab starts
 * afresh): the session's token, the id of the last reply shown (sent as resume_after, so the
 * gateway delivers only what this page has not seen), and the conversation as shown, with the
 * customer's messages not yet acknowledged. Those are sent again after every (re)connect with
 * the same client_id: the gateway gives a resent client_id the inquiry it already made, so a
 * message is never sent twice and never lost on a dropped socket.
 *
 * Reconnects: with exponential back-off and jitter, moving to the next gateway URL on each
 * attempt, so a page whose instance died fails over to another by itself. The URLs come from
 * `?gateways=ws://a/chat/socket,ws://b/chat/socket` in the page's address, else from
 * config.json's `gateways`, else the instance that served the page.
 */

const STORE_KEY = "switchboard.chat.v1";
/** Conversation entries kept for a reload; older ones are dropped (the gateway keeps nothing shown). */
const MAX_ITEMS = 300;
const WELCOME_TIMEOUT_MS = 10_000;
/** A message not acknowledged within this on an open socket means a stuck connection: reconnect and resend. */
const ACK_TIMEOUT_MS = 20_000;
const TYPING_EVERY_MS = 3_000;
const TYPING_SHOWN_MAX_MS = 60_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/** Close codes the gateway uses (connectors/chat/): what each means for this page. */
const CLOSE = { badToken: 4001, expired: 4002, noHello: 4003, slow: 4008, elsewhere: 4009, ended: 4010, tooBig: 1009, goingAway: 1001 };

const DEFAULT_CONFIG = { gateways: [], guest_sessions: true, max_message_bytes: 16_384, max_text_chars: 4_000 };
const here = import.meta.url;
const encoder = new TextEncoder();

const $ = (id) => document.getElementById(id);
const ui = {
  root: $("chat"),
  status: $("status"),
  newConversation: $("new-conversation"),
  intro: $("intro"),
  body: document.querySelector(".chat-body"),
  log: $("log"),
  typing: $("typing"),
  alert: $("alert"),
  announcer: $("announcer"),
  composer: $("composer"),
  nameRow: $("name-row"),
  name: $("name"),
  message: $("message"),
  send: $("send"),
  bytesLeft: $("bytes-left"),
};

// ---------------------------------------------------------------------------------------------
// Stored state

/** @returns {{ session: null | { token: string, session_id?: string, expires_at?: string }, lastReplyId: string | null, items: any[] }} */
function load() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? "null");
    if (stored && Array.isArray(stored.items)) return stored;
  } catch {
    // Storage disabled or the entry unreadable: start afresh, the page still works for this visit.
  }
  return { session: null, lastReplyId: null, items: [] };
}

let store = load();

function save() {
  if (store.items.length > MAX_ITEMS) store.items = store.items.slice(-MAX_ITEMS);
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(store));
  } catch {
    // Quota or private mode: the conversation lives as long as the page.
  }
}

/** An integration hands its customer a session in the fragment (#token=…): never sent to a server, removed at once. */
function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (!token) return;
  if (store.session?.token !== token) store = { session: { token }, lastReplyId: null, items: [] };
  history.replaceState(null, "", location.pathname + location.search);
  save();
}

const expired = (session) => session?.expires_at !== undefined && Date.parse(session.expires_at) <= Date.now();

// ---------------------------------------------------------------------------------------------
// Configuration and the gateway list

let config = null;

async function ensureConfig() {
  if (config) return config;
  const response = await fetch(new URL("config.json", here), { headers: { accept: "application/json" } });
  if (!response.ok) throw new ChatError(`the chat configuration answered ${response.status}`);
  config = { ...DEFAULT_CONFIG, ...(await response.json()) };
  ui.nameRow.hidden = !config.guest_sessions || store.session !== null;
  return config;
}

const sameOrigin = () => {
  const url = new URL("socket", here);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
};

/** The WebSocket URLs to try, in order: the page address's ?gateways=, else config.json's, else the serving instance. */
function gateways() {
  const listed = (new URLSearchParams(location.search).get("gateways") ?? "")
    .split(",")
    .map((url) => url.trim())
    .filter((url) => /^wss?:\/\/\S+$/.test(url));
  if (listed.length > 0) return listed;
  const configured = (config?.gateways ?? []).filter((url) => typeof url === "string" && /^wss?:\/\/\S+$/.test(url));
  return configured.length > 0 ? configured : [sameOrigin()];
}

class ChatError extends Error {
  constructor(message, retryAfterMs) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

/** A guest session from the gateway that served the page, unless one is stored and unexpired. */
async function ensureSession() {
  if (store.session && !expired(store.session)) return store.session;
  if (store.session) dropSession("Your chat session expired; your next message starts a new one.");
  if (!config.guest_sessions) throw new ChatError("This chat needs a session from the site you came from: open it from there again.", Infinity);
  const name = ui.name.value.trim();
  const response = await fetch(new URL("sessions", here), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(name ? { name } : {}),
  });
  if (response.status === 429) {
    const seconds = Number(response.headers.get("retry-after"));
    throw new ChatError("Too many new chats from your network just now; trying again shortly.", Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined);
  }
  if (!response.ok) throw new ChatError(`Could not start a chat (the service answered ${response.status}).`);
  const { session_id, token, expires_at } = await response.json();
  store.session = { session_id, token, expires_at };
  store.lastReplyId = null;
  save();
  ui.nameRow.hidden = true;
  ui.newConversation.hidden = false;
  return store.session;
}

function dropSession(notice) {
  store.session = null;
  store.lastReplyId = null;
  ui.nameRow.hidden = !(config?.guest_sessions ?? true);
  if (notice) addItem({ kind: "notice", text: notice, at: Date.now() });
  save();
}

// ---------------------------------------------------------------------------------------------
// The connection

let socket = null;
let welcomed = false;
let wanted = false;
let everConnected = false;
let attempt = 0;
let gatewayIndex = 0;
let reconnectTimer = 0;
/** Consecutive refusals of a fresh session's token: more than one means something is wrong server-side. */
let tokenRefusals = 0;

function setState(state, detail = "") {
  ui.root.dataset.state = state;
  const words = {
    idle: "Not connected yet",
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    offline: "Offline; waiting for the network…",
    elsewhere: "Open elsewhere",
    failed: "Cannot reach the chat service",
  };
  ui.status.textContent = detail ? `${words[state]} ${detail}` : words[state];
}

/** Wants a connection: opens one now unless one is open, opening, or waiting for its back-off. */
function connect() {
  wanted = true;
  if (!socket && !reconnectTimer && !opening) void open();
}

/** Set while open() waits for the configuration or a session: two quick messages make one session, one socket. */
let opening = false;

async function open() {
  reconnectTimer = 0;
  if (!wanted || socket || opening) return;
  if (navigator.onLine === false) {
    setState("offline");
    return; // the online event connects
  }
  opening = true;
  try {
    await ensureConfig();
    await ensureSession();
  } catch (error) {
    const retryAfter = error instanceof ChatError ? error.retryAfterMs : undefined;
    showAlert(error instanceof ChatError ? error.message : "Cannot reach the chat service; retrying.");
    if (retryAfter === Infinity) {
      wanted = false;
      setState("failed");
    } else retryLater(retryAfter);
    return;
  } finally {
    opening = false;
  }
  if (!wanted || socket) return;
  const urls = gateways();
  const url = urls[gatewayIndex % urls.length];
  setState(everConnected || attempt > 0 ? "reconnecting" : "connecting");
  let ws;
  try {
    ws = new WebSocket(url);
  } catch {
    retryLater(); // a malformed URL in the list: the next one is tried
    return;
  }
  socket = ws;
  welcomed = false;
  pingAfterMs = 0;
  // No welcome in time: an upgraded socket whose gateway hangs would wait a minute for its close.
  const welcomeTimer = setTimeout(() => abandon(ws), WELCOME_TIMEOUT_MS);
  ws.addEventListener("open", () => {
    ws.send(JSON.stringify({ type: "hello", token: store.session.token, resume_after: store.lastReplyId ?? null }));
  });
  ws.addEventListener("message", (event) => {
    if (ws !== socket) return;
    let frame = null;
    try {
      frame = JSON.parse(event.data);
    } catch {
      // Not ours to understand (the protocol sends JSON only), but it came: the connection is alive.
    }
    if (frame?.type === "welcome") clearTimeout(welcomeTimer);
    if (frame) onFrame(frame, url);
    heard(ws);
  });
  ws.addEventListener("close", (event) => {
    clearTimeout(welcomeTimer);
    if (ws !== socket) return;
    socket = null;
    welcomed = false;
    clearTimeout(livenessTimer);
    hideTyping();
    onClose(event.code);
  });
}

function onClose(code) {
  if (!wanted) return;
  if (code === CLOSE.badToken || code === CLOSE.expired) {
    tokenRefusals++;
    const pending = store.items.some((i) => i.kind === "customer" && i.status === "sending");
    const why = code === CLOSE.expired ? "Your chat session expired" : "The chat service did not accept this session";
    if (tokenRefusals > 1 || !config?.guest_sessions) {
      dropSession(`${why}.`);
      wanted = false;
      setState("failed");
      showAlert(config?.guest_sessions ? "The chat service refuses new sessions just now. Please reload the page in a while." : "Please open the chat again from the site you came from.");
      return;
    }
    // A new guest session: at once for the messages waiting to go, else with the next one.
    dropSession(pending ? `${why}; a new one has started.` : `${why}; your next message starts a new one.`);
    if (pending) retryLater(0);
    else {
      wanted = false;
      setState("idle");
    }
    return;
  }
  if (code === CLOSE.ended) {
    // The site ended the session (the customer signed out): never reopened; a guest's next message starts anew.
    wanted = false;
    dropSession("This conversation was ended.");
    if (config?.guest_sessions) setState("idle");
    else {
      setState("failed");
      showAlert("Please open the chat again from the site you came from.");
    }
    return;
  }
  if (code === CLOSE.elsewhere) {
    // The same session was opened on another socket (another tab or window): do not fight over it.
    wanted = false;
    setState("elsewhere");
    showAlert("This conversation is open in another window.", { label: "Continue here", action: () => connect() });
    return;
  }
  retryLater();
}

/** The next attempt, on the next gateway: right away after a first drop, then backing off with jitter. */
function retryLater(minDelayMs) {
  const urls = gateways();
  gatewayIndex = (gatewayIndex + 1) % urls.length;
  const backoff = attempt === 0 ? Math.random() * 300 : Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
  const delay = Math.max(backoff, minDelayMs ?? 0);
  attempt++;
  setState(everConnected ? "reconnecting" : "connecting", delay >= 1_000 ? `(next try in ${Math.round(delay / 1000)} s)` : "");
  reconnectTimer = setTimeout(() => void open(), delay);
}

function send(frame) {
  if (!socket || !welcomed || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

/**
 * Forgets the current socket and closes it without waiting for its close event: on a dead
 * connection close() waits for a closing handshake that never comes (a minute, in Chromium).
 */
function letGo() {
  const lost = socket;
  socket = null;
  welcomed = false;
  clearTimeout(livenessTimer);
  hideTyping();
  lost?.close();
}

/** Gives up on a socket that stopped answering, and reconnects (resuming) now rather than after its close. */
function abandon(ws) {
  if (ws !== socket) return;
  letGo();
  retryLater();
}

/** How long the socket may be silent before a ping, as the gateway's welcome said (0: it said nothing, and is not pinged). */
let pingAfterMs = 0;
let livenessTimer = 0;
/** When the current socket last received a frame. */
let heardAt = 0;

/** A frame came on `ws`, so its connection is alive: the next ping is due after pingAfterMs more of silence. */
function heard(ws) {
  heardAt = Date.now();
  clearTimeout(livenessTimer);
  if (ws !== socket || !pingAfterMs) return;
  livenessTimer = setTimeout(() => probe(ws), pingAfterMs);
}

/** Pings `ws`; the gateway answers at once, so nothing at all for pingAfterMs is a dead connection. */
function probe(ws) {
  clearTimeout(livenessTimer);
  if (ws !== socket || !send({ type: "ping" })) return;
  livenessTimer = setTimeout(() => abandon(ws), pingAfterMs);
}

// A background tab's timers are throttled (to once a minute in Chromium), so a page shown again
// asks at once whether a socket that has been silent for a while is still there.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && socket && welcomed && pingAfterMs && Date.now() - heardAt >= pingAfterMs) probe(socket);
});

// ---------------------------------------------------------------------------------------------
// Frames from the gateway

function onFrame(frame, url) {
  switch (frame.type) {
    case "welcome":
      welcomed = true;
      everConnected = true;
      attempt = 0;
      tokenRefusals = 0;
      if (frame.session_id && store.session) {
        store.session.session_id = frame.session_id;
        save();
      }
      pingAfterMs = Number.isFinite(frame.ping_after_ms) && frame.ping_after_ms > 0 ? frame.ping_after_ms : 0;
      ui.root.dataset.instance = frame.instance ?? "";
      ui.root.dataset.gateway = url;
      ui.root.dataset.sessionId = frame.session_id ?? "";
      setState("connected");
      hideAlert();
      resendPending();
      return;
    case "ack":
      return onAck(frame);
    case "typing":
      return frame.on ? showTyping() : hideTyping();
    case "reply":
      return onReply(frame);
    case "error":
      return onError(frame);
  }
}

function onAck({ client_id, inquiry_id }) {
  const item = customerItem(client_id);
  if (!item) return;
  item.status = "sent";
  item.inquiry_id = inquiry_id;
  delete item.failure;
  clearTimeout(ackTimers.get(client_id));
  ackTimers.delete(client_id);
  save();
  renderUpdate(item);
  if (!alertAction) hideAlert(); // a message went through: whatever the alert said is over
}

function onReply(reply) {
  // Seen already (delivered again after a reconnect whose acknowledgement was lost): confirm, show nothing.
  if (!store.items.some((i) => i.kind === "reply" && i.id === reply.id)) {
    const item = {
      kind: "reply",
      id: reply.id,
      inquiry_id: reply.inquiry_id,
      text: String(reply.text ?? ""),
      author: reply.author === "agent" ? "agent" : "assistant",
      agent: reply.agent ?? null,
      at: Date.parse(reply.sent_at) || Date.now(),
    };
    if (laterId(reply.id, store.lastReplyId)) store.lastReplyId = reply.id;
    addItem(item);
    // The typing indicator stays as the gateway says: other questions may still be awaiting their replies.
    announce(`${authorName(item)} replied: ${item.text}`);
  }
  send({ type: "received", id: reply.id });
}

const FAILURES = {
  rate_limited: "Not sent: too many messages at once.",
  too_long: "Not sent: the message is too long.",
  invalid_message: "Not sent: the message could not be read.",
};

function onError({ code, message, client_id, retry_after_ms }) {
  const item = client_id ? customerItem(client_id) : undefined;
  if (code === "unavailable") {
    // The gateway could not hand the message on: it stays pending and is sent again shortly.
    showAlert("The chat service is busy; your message will be sent again in a moment.");
    if (item) setTimeout(() => item.status === "sending" && sendMessage(item), retry_after_ms ?? 3_000);
    return;
  }
  if (!item) {
    showAlert(message || "Something went wrong in the chat.");
    return;
  }
  item.status = "failed";
  item.failure = FAILURES[code] ?? `Not sent: ${message || code}.`;
  item.retryAt = retry_after_ms ? Date.now() + retry_after_ms : undefined;
  save();
  renderUpdate(item);
  announce(item.failure);
}

function resendPending() {
  for (const item of store.items) if (item.kind === "customer" && item.status === "sending") sendMessage(item);
}

const ackTimers = new Map();

function sendMessage(item) {
  if (!send({ type: "message", client_id: item.client_id, text: item.text })) return connect();
  clearTimeout(ackTimers.get(item.client_id));
  const sentOn = socket;
  ackTimers.set(
    item.client_id,
    setTimeout(() => {
      ackTimers.delete(item.client_id);
      // Still unacknowledged on the socket it went out on: that connection is stuck; a new one resends it.
      if (item.status === "sending") abandon(sentOn);
    }, ACK_TIMEOUT_MS),
  );
}

// ---------------------------------------------------------------------------------------------
// The conversation

function uuid() {
  // crypto.randomUUID needs a secure context; getRandomValues does not (a plain-http deployment).
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Reply ids are ordered per session ("<ms>-<seq>", Redis stream ids): the resume cursor only moves forward. */
function laterId(id, than) {
  const a = /^(\d+)-(\d+)$/.exec(id ?? "");
  const b = /^(\d+)-(\d+)$/.exec(than ?? "");
  if (!a || !b) return true;
  return BigInt(a[1]) > BigInt(b[1]) || (a[1] === b[1] && BigInt(a[2]) > BigInt(b[2]));
}

const customerItem = (clientId) => store.items.find((i) => i.kind === "customer" && i.client_id === clientId);
const authorName = (item) => (item.author === "agent" ? item.agent || "Support agent" : "Assistant");
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const rendered = new Map();

function addItem(item) {
  store.items.push(item);
  save();
  render(item);
}

function render(item) {
  ui.intro.hidden = true;
  const nearBottom = ui.body.scrollHeight - ui.body.scrollTop - ui.body.clientHeight < 80;
  const li = document.createElement("li");
  if (item.kind === "notice") {
    li.className = "chat-notice";
    li.textContent = item.text;
  } else {
    li.className = item.kind === "customer" ? "msg customer" : `msg reply ${item.author}`;
    const text = document.createElement("p");
    text.className = "msg-text";
    text.textContent = item.text;
    const meta = document.createElement("div");
    meta.className = "msg-meta";
    li.append(text, meta);
    if (item.kind === "customer") li.dataset.clientId = item.client_id;
    else {
      li.dataset.replyId = item.id;
      li.dataset.inquiryId = item.inquiry_id;
    }
  }
  ui.log.append(li);
  rendered.set(item.kind === "reply" ? `r:${item.id}` : item.kind === "customer" ? `c:${item.client_id}` : `n:${rendered.size}`, li);
  if (item.kind !== "notice") renderUpdate(item);
  if (nearBottom || item.kind === "customer") ui.body.scrollTop = ui.body.scrollHeight;
}

function renderUpdate(item) {
  const li = rendered.get(item.kind === "reply" ? `r:${item.id}` : `c:${item.client_id}`);
  if (!li) return;
  const meta = li.querySelector(".msg-meta");
  meta.replaceChildren();
  const time = document.createElement("time");
  time.dateTime = new Date(item.at).toISOString();
  time.textContent = timeFormat.format(item.at);
  if (item.kind === "reply") {
    const author = document.createElement("span");
    author.className = "msg-author";
    author.textContent = authorName(item);
    meta.append(author, time);
    return;
  }
  li.dataset.status = item.status;
  if (item.inquiry_id) li.dataset.inquiryId = item.inquiry_id;
  const state = document.createElement("span");
  state.className = "msg-state";
  if (item.status === "failed") {
    state.className = "msg-state msg-failure";
    state.textContent = item.failure;
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "msg-retry";
    retry.textContent = "Retry";
    const wait = (item.retryAt ?? 0) - Date.now();
    if (wait > 0) {
      retry.disabled = true;
      setTimeout(() => (retry.disabled = false), wait);
    }
    retry.addEventListener("click", () => {
      item.status = "sending";
      delete item.failure;
      save();
      renderUpdate(item);
      sendMessage(item);
    });
    meta.append(time, state, retry);
  } else {
    state.textContent = item.status === "sent" ? "Sent ✓" : "Sending…";
    meta.append(time, state);
  }
}

let typingTimer = 0;
function showTyping() {
  ui.typing.hidden = false;
  clearTimeout(typingTimer);
  // A typing event whose "off" was lost with a dropped socket must not spin forever.
  typingTimer = setTimeout(hideTyping, TYPING_SHOWN_MAX_MS);
  ui.body.scrollTop = ui.body.scrollHeight;
}
function hideTyping() {
  clearTimeout(typingTimer);
  ui.typing.hidden = true;
}

let alertAction = null;
function showAlert(text, action) {
  ui.alert.replaceChildren(document.createTextNode(text));
  alertAction = action ?? null;
  if (action) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = action.label;
    button.addEventListener("click", () => {
      hideAlert(true);
      action.action();
    });
    ui.alert.append(button);
  }
  ui.alert.hidden = false;
}
/** Hides the alert; one that offers an action stays until connected again, unless `force`d. */
function hideAlert(force = false) {
  if (alertAction && !force && ui.root.dataset.state !== "connected") return;
  ui.alert.hidden = true;
  ui.alert.replaceChildren();
  alertAction = null;
}

function announce(text) {
  // Emptied first so that the same words twice are read out twice.
  ui.announcer.textContent = "";
  requestAnimationFrame(() => (ui.announcer.textContent = text));
}

// ---------------------------------------------------------------------------------------------
// The composer

const frameBytes = (text) => encoder.encode(JSON.stringify({ type: "message", client_id: "00000000-0000-4000-8000-000000000000", text })).length;
const maxBytes = () => config?.max_message_bytes ?? DEFAULT_CONFIG.max_message_bytes;

const maxChars = () => config?.max_text_chars ?? DEFAULT_CONFIG.max_text_chars;

/**
 * Whether the composer's text fits both of the gateway's limits: characters (the gateway's
 * count, UTF-16 units as a JS string's length) and the frame's bytes. Near either, says how much
 * is left; over it, by how much.
 */
function updateBytesLeft() {
  const text = ui.message.value;
  const charsLeft = maxChars() - text.trim().length;
  // Cheap bound first: a JS string's UTF-8 size is at most 3 bytes per UTF-16 unit (plus JSON escapes).
  const bytesLeft = text.length * 3 + 200 < maxBytes() ? maxBytes() : maxBytes() - frameBytes(text);
  const fits = charsLeft >= 0 && bytesLeft >= 0;
  const near = charsLeft < maxChars() * 0.1 || bytesLeft < maxBytes() * 0.1;
  ui.bytesLeft.hidden = !near;
  ui.bytesLeft.classList.toggle("over", !fits);
  if (near) {
    ui.bytesLeft.textContent =
      charsLeft < 0 ? `Too long by ${-charsLeft} characters.` : bytesLeft < 0 ? `Too long by ${-bytesLeft} bytes.` : `${charsLeft} characters left.`;
  }
  return fits;
}

let lastTypingSent = 0;
let tooLongShown = false;
ui.message.addEventListener("input", () => {
  if (updateBytesLeft() && tooLongShown) {
    tooLongShown = false;
    hideAlert();
  }
  if (Date.now() - lastTypingSent > TYPING_EVERY_MS && send({ type: "typing" })) lastTypingSent = Date.now();
});

ui.message.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.message.value.trim();
  if (!text) return;
  if (!updateBytesLeft()) {
    showAlert(`That message is too long to send (at most ${maxChars()} characters); please shorten it.`);
    tooLongShown = true;
    return;
  }
  const item = { kind: "customer", client_id: uuid(), text, at: Date.now(), status: "sending" };
  addItem(item);
  ui.message.value = "";
  updateBytesLeft();
  lastTypingSent = 0;
  if (ui.root.dataset.state === "elsewhere" || ui.root.dataset.state === "failed") {
    tokenRefusals = 0;
    hideAlert(true);
  }
  sendMessage(item); // sent now if connected; otherwise connect() and it goes out after the welcome
});

ui.newConversation.addEventListener("click", () => {
  wanted = false;
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  const old = socket;
  socket = null;
  old?.close(1000);
  store = { session: null, lastReplyId: null, items: [] };
  save();
  rendered.clear();
  ui.log.replaceChildren();
  ui.intro.hidden = false;
  ui.newConversation.hidden = true;
  ui.nameRow.hidden = !(config?.guest_sessions ?? true);
  hideTyping();
  hideAlert(true);
  setState("idle");
  ui.message.focus();
});

window.addEventListener("online", () => {
  if (wanted && !socket) {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    attempt = 0;
    void open();
  }
});
window.addEventListener("offline", () => {
  if (!wanted) return;
  // The network is gone, and an open socket may never say so (no close arrives until TCP gives
  // up): it is let go now, and the online event resumes the session from its mailbox.
  if (socket) letGo();
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  setState("offline");
});

// ---------------------------------------------------------------------------------------------
// Start: show what this tab had, and resume its session (or wait for the first message to start one).

takeTokenFromFragment();
if (expired(store.session)) dropSession("Your earlier chat session expired; your next message starts a new one.");
for (const item of store.items) render(item);
ui.newConversation.hidden = store.session === null && store.items.length === 0;
ui.nameRow.hidden = store.session !== null;
setState("idle");
ensureConfig().catch(() => undefined); // early, for the size limit; open() asks again if this failed
if (store.session) connect();
