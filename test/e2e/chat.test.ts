import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ResponseStrategyValues } from "../../schemas/types.generated.js";
import { startChat, testChatToken, type ChatProcess } from "../support/chat.js";
import { ChatClient } from "../support/chat-client.js";
import { preparePipeline, startPipeline, type Pipeline } from "./pipeline.js";

/**
 * A chat customer through the whole triage chain: the message goes from the gateway to
 * inquiries.received, the chain (as `up` deploys it) drafts the reply on inquiries.responses, and
 * the gateway's delivery consumer brings it back on the customer's socket.
 */

const endpoints = inject("endpoints");
let pipeline: Pipeline;
let chat: ChatProcess;

beforeAll(async () => {
  await preparePipeline(endpoints);
  pipeline = await startPipeline(endpoints, {}, "chained");
  chat = await startChat(endpoints, { instanceId: `chat-e2e-${randomUUID().slice(0, 8)}` });
}, 1_800_000);

afterAll(async () => {
  await chat?.stop();
  await pipeline?.stop();
});

describe("chat, end to end", () => {
  it("a customer's question is answered on the same socket with the drafted reply, typing in between", { timeout: 180_000 }, async () => {
    const { token } = testChatToken({ name: "Dana Whitfield", tier: "premium" });
    const client = await ChatClient.session(chat.wsUrl, token);
    try {
      const questions = ["Hi, my order 48213 still has not arrived after two weeks. Where is it?", "How do I return a lamp that does not fit my desk?"];
      const clientIds = questions.map((text) => client.message(text));
      const acks = await Promise.all(clientIds.map((id) => client.next((f) => f.type === "ack" && f.client_id === id)));
      const inquiries = acks.map((ack) => ack.inquiry_id as string);
      expect(client.frames).toContainEqual({ type: "typing", on: true });
      await client.until(() => (client.replies().length >= inquiries.length ? true : undefined), 150_000);
      const replies = client.replies();
      expect(replies.map((r) => r.inquiry_id).sort()).toEqual([...inquiries].sort());
      for (const reply of replies) {
        expect(reply).toMatchObject({ author: "assistant", agent: null });
        expect(ResponseStrategyValues).toContain(reply.strategy);
        expect(String(reply.text).length).toBeGreaterThan(20);
      }
      await client.next((f) => f.type === "typing" && f.on === false);
      const metrics = await (await fetch(`${chat.url}/metrics`)).text();
      expect(metrics).toMatch(/switchboard_chat_reply_latency_seconds_count\{[^}]*author="assistant"[^}]*\} [1-9]/);
    } finally {
      client.close();
    }
  });
});
