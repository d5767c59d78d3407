import { describe, expect, it } from "vitest";
import { mailboxReplyOf } from "../../connectors/chat/delivery.js";
import { FrameError, MAX_TEXT_CHARS, parseFrame } from "../../connectors/chat/protocol.js";
import { compareReplyIds, parseStored } from "../../connectors/chat/store.js";
import { ChatTokenError, mintChatToken, verifyChatToken } from "../../connectors/chat/tokens.js";
import type { AgentReply, InquiryEnvelope, InquiryResponse } from "../../schemas/types.generated.js";

const SECRET = "a test secret of at least thirty-two characters";

const refusal = (call: () => unknown) => {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error("expected a refusal");
};

describe("chat tokens", () => {
  it("verify what they were minted with: session, customer, expiry, guest or not", () => {
    const { token, session } = mintChatToken(SECRET, { customer: { id: "c-1", name: "Dana" }, ttlSeconds: 60, guest: false, now: 1_800_000_000_000 });
    expect(verifyChatToken(SECRET, token, 1_800_000_030_000)).toEqual(session);
    expect(session).toMatchObject({ customer: { id: "c-1", name: "Dana", email: null, tier: null }, expiresAt: 1_800_000_060_000, guest: false });
    expect(session.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(mintChatToken(SECRET, { ttlSeconds: 60, guest: true }).session.sessionId).not.toBe(session.sessionId);
  });

  it("refuse an expired token as expired, and a forged, altered, truncated or garbled one as invalid", () => {
    const { token } = mintChatToken(SECRET, { ttlSeconds: 60, guest: true, now: 1_800_000_000_000 });
    expect(refusal(() => verifyChatToken(SECRET, token, 1_800_000_060_000))).toMatchObject({ reason: "expired" });
    const [version, payload, signature] = token.split(".") as [string, string, string];
    const altered = Buffer.from(Buffer.from(payload, "base64url").toString().replace('"g":true', '"g":false')).toString("base64url");
    for (const bad of [
      `${version}.${altered}.${signature}`,
      `${version}.${payload}.${signature.slice(0, -2)}`,
      `${version}.${payload}.`,
      `v2.${payload}.${signature}`,
      mintChatToken("another secret, also thirty-two characters long", { ttlSeconds: 60, guest: true }).token,
      "garbage",
      "",
      42,
      null,
      "x".repeat(10_000),
    ]) {
      const error = refusal(() => verifyChatToken(SECRET, bad, 1_800_000_000_000));
      expect(error, String(bad).slice(0, 40)).toBeInstanceOf(ChatTokenError);
      expect((error as ChatTokenError).reason).toBe("invalid");
    }
  });
});

describe("chat frames", () => {
  it("read hello, message, typing, received and ping", () => {
    expect(parseFrame('{"type":"hello","token":"t","resume_after":null}')).toEqual({ type: "hello", token: "t", resumeAfter: null });
    expect(parseFrame('{"type":"hello","token":"t","resume_after":"1700000000000-3"}')).toMatchObject({ resumeAfter: "1700000000000-3" });
    expect(parseFrame('{"type":"hello","token":"t"}')).toMatchObject({ resumeAfter: null });
    expect(parseFrame('{"type":"message","client_id":"5f0c-uuid","text":"Where is\\n my order?"}')).toEqual({ type: "message", clientId: "5f0c-uuid", text: "Where is\n my order?" });
    expect(parseFrame('{"type":"typing"}')).toEqual({ type: "typing" });
    expect(parseFrame('{"type":"received","id":"1-0"}')).toEqual({ type: "received", id: "1-0" });
    // A ping says nothing but that the client is there: whatever else it carries is not read.
    expect(parseFrame('{"type":"ping"}')).toEqual({ type: "ping" });
    expect(parseFrame('{"type":"ping","at":1700000000000}')).toEqual({ type: "ping" });
  });

  it("refuse what is not a frame, with the code and the client id when there is one", () => {
    const cases: [string, string, string | undefined][] = [
      ["not json", "invalid_message", undefined],
      ["[1,2]", "invalid_message", undefined],
      ['{"type":"wave"}', "invalid_message", undefined],
      ['{"type":"pong"}', "invalid_message", undefined],
      ['{"type":"PING"}', "invalid_message", undefined],
      ['{"type":"hello","token":"t","resume_after":"yesterday"}', "invalid_message", undefined],
      ['{"type":"message","text":"no id"}', "invalid_message", undefined],
      ['{"type":"message","client_id":"has space","text":"x"}', "invalid_message", undefined],
      ['{"type":"message","client_id":"m1","text":"  \\n "}', "invalid_message", "m1"],
      ['{"type":"message","client_id":"m1","text":7}', "invalid_message", "m1"],
      ['{"type":"message","client_id":"m1","text":"bell \\u0007"}', "invalid_message", "m1"],
      ['{"type":"message","client_id":"m1","text":"half \\ud83d pair"}', "invalid_message", "m1"],
      [JSON.stringify({ type: "message", client_id: "m2", text: "x".repeat(MAX_TEXT_CHARS + 1) }), "too_long", "m2"],
      ['{"type":"received","id":"abc"}', "invalid_message", undefined],
    ];
    for (const [frame, code, clientId] of cases) {
      const error = refusal(() => parseFrame(frame)) as FrameError;
      expect(error, frame.slice(0, 60)).toBeInstanceOf(FrameError);
      expect([error.code, error.clientId], frame.slice(0, 60)).toEqual([code, clientId]);
    }
    expect(parseFrame(JSON.stringify({ type: "message", client_id: "m3", text: "😀".repeat(MAX_TEXT_CHARS / 2) }))).toMatchObject({ clientId: "m3" });
  });
});

describe("mailbox", () => {
  it("orders reply ids as Redis streams do, past the precision of a double", () => {
    expect(compareReplyIds("1-2", "1-10")).toBeLessThan(0);
    expect(compareReplyIds("2-0", "1-99")).toBeGreaterThan(0);
    expect(compareReplyIds("5-5", "5-5")).toBe(0);
    expect(compareReplyIds("18446744073709551615-1", "18446744073709551615-0")).toBeGreaterThan(0);
  });

  it("reads a message claim in each of its states", () => {
    expect(parseStored("p|tok|inq-1|1700|1900")).toEqual({ state: "pending", raw: "p|tok|inq-1|1700|1900", inquiryId: "inq-1", receivedAt: 1700, claimedAt: 1900 });
    expect(parseStored("d|inq-1|1700")).toMatchObject({ state: "done", inquiryId: "inq-1", receivedAt: 1700 });
    expect(parseStored("f|inq-1|1700")).toMatchObject({ state: "failed", inquiryId: "inq-1" });
  });

  it("takes the replies to chat sessions, keyed for dedupe by inquiry (drafts) or reply id (agents), and nothing else", () => {
    const envelope: InquiryEnvelope = {
      channel: "chat",
      source_id: "s:m1",
      thread_id: "s",
      customer: { id: null, email: null, name: null, tier: null },
      received_at: 1_000,
      reply_to: "session-1",
      metadata: {},
    };
    const response: InquiryResponse = { inquiry_id: "i-1", envelope, strategy: "retrieval", text: "Hi", sources: [], department: "orders", model: null, responded_at: 2_000 };
    expect(mailboxReplyOf(response)).toEqual({
      sessionId: "session-1",
      dedupeKey: "draft:i-1",
      reply: { inquiry_id: "i-1", text: "Hi", author: "assistant", agent: null, strategy: "retrieval", sent_at: 2_000, received_at: 1_000 },
    });
    const reply: AgentReply = { reply_id: "r-9", inquiry_id: "i-1", envelope, text: "Hello", agent: "Ada", edited: true, sent_at: 3_000 };
    expect(mailboxReplyOf(reply)).toMatchObject({ sessionId: "session-1", dedupeKey: "agent:r-9", reply: { author: "agent", agent: "Ada", strategy: null, sent_at: 3_000 } });
    expect(mailboxReplyOf({ ...response, envelope: { ...envelope, channel: "email" } })).toEqual({ skip: "not_chat" });
    expect(mailboxReplyOf({ ...response, envelope: { ...envelope, reply_to: null } })).toEqual({ skip: "not_chat" });
  });
});
