import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ResponseStrategyValues } from "../../schemas/types.generated.js";
import { get, post, startApi, testKey, until, type ApiProcess } from "../support/api.js";
import { startChat, testChatSecret, testChatToken, type ChatProcess } from "../support/chat.js";
import { ChatClient } from "../support/chat-client.js";
import { preparePipeline, startPipeline, type Pipeline } from "./pipeline.js";

/**
 * A chat customer through the whole triage chain: the message goes from the gateway to
 * inquiries.received, the chain (as `up` deploys it) drafts the reply on inquiries.responses, and
 * the gateway's delivery consumer brings it back on the customer's socket. Then an agent answers
 * the same customer from the console's API, and that reply arrives on the socket too.
 */

const endpoints = inject("endpoints");
let pipeline: Pipeline;
let chat: ChatProcess;
let api: ApiProcess;

beforeAll(async () => {
  await preparePipeline(endpoints);
  pipeline = await startPipeline(endpoints, {}, "chained");
  chat = await startChat(endpoints, { instanceId: `chat-e2e-${randomUUID().slice(0, 8)}` });
  api = await startApi(endpoints, { SWITCHBOARD_CHAT_TOKEN_SECRET: testChatSecret() });
}, 1_800_000);

afterAll(async () => {
  await api?.stop();
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

  it("an agent's reply sent from the console's API reaches the customer's socket, after the drafted one", { timeout: 240_000 }, async () => {
    const { token } = testChatToken({ name: "Sam Okafor" });
    const agentName = `agent-${randomUUID().slice(0, 8)}`;
    const agent = await testKey(endpoints, ["read", "agent"], agentName);
    const client = await ChatClient.session(chat.wsUrl, token);
    try {
      const clientId = client.message("I would like to talk to a real person about my account, please.");
      const inquiryId = (await client.next((f) => f.type === "ack" && f.client_id === clientId)).inquiry_id as string;
      await client.until(() => (client.replies().some((r) => r.inquiry_id === inquiryId) ? true : undefined), 150_000);

      // The reply endpoint reads the inquiry's envelope from the archive, which the archive sink fills.
      const archived = await until(async () => ((await get(`${api.url}/v1/inquiries/${inquiryId}/review`, agent.token)).ok ? true : undefined), 60_000);
      expect(archived).toBe(true);
      const text = "Hello Sam, this is a person from the support team: I have your account open and will help you now.";
      const sent = await post(`${api.url}/v1/inquiries/${inquiryId}/replies`, agent.token, { text });
      expect(sent.status).toBe(202);
      const { reply_id: replyId } = (await sent.json()) as { reply_id: string };
      expect(replyId).toBeTruthy();

      await client.until(() => (client.replies().some((r) => r.author === "agent") ? true : undefined), 60_000);
      const mine = client.replies().filter((r) => r.inquiry_id === inquiryId);
      expect(mine.map((r) => r.author)).toEqual(["assistant", "agent"]);
      expect(mine[1]).toMatchObject({ author: "agent", agent: agentName, text, strategy: null });
    } finally {
      client.close();
    }
  });
});
