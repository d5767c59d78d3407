import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlmError, openAiChatModel, replyPrompt, type ChatModelOptions } from "../../processors/respond/llm.js";
import type { KnowledgeArticle } from "../../processors/respond/retrieval.js";

/**
 * The client against a small local HTTP server speaking the OpenAI chat-completions format: a
 * stand-in for the optional external endpoint, so the client's real HTTP, timeout and parsing
 * paths run. Each test picks the server's behaviour by the model name it sends.
 */
type Behaviour = (
  request: { body: Record<string, unknown>; headers: IncomingMessage["headers"]; url: string },
  response: ServerResponse,
) => void;

const completion = (content: string | null, finish = "stop") => ({
  id: "chatcmpl-1",
  object: "chat.completion",
  model: "local-test-model-2026-01",
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: finish }],
});
const json = (response: ServerResponse, status: number, body: unknown) => {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(typeof body === "string" ? body : JSON.stringify(body));
};

const BEHAVIOURS: Record<string, Behaviour> = {
  echo: ({ body, headers, url }, response) =>
    json(response, 200, completion(JSON.stringify({ url, authorization: headers.authorization ?? null, body }))),
  ok: (_, response) => json(response, 200, completion("  Standard delivery takes 3–5 business days.  ")),
  slow: (_, response) => {
    const timer = setTimeout(() => json(response, 200, completion("too late")), 5_000);
    response.on("close", () => clearTimeout(timer));
  },
  error: (_, response) => json(response, 503, { error: { message: "overloaded" } }),
  html: (_, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end("<html>gateway</html>");
  },
  "no-choices": (_, response) => json(response, 200, { id: "x", choices: [] }),
  "null-content": (_, response) => json(response, 200, completion(null)),
  truncated: (_, response) => json(response, 200, completion("Standard delivery takes", "length")),
};

let server: Server;
let baseUrl: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    let raw = "";
    request.on("data", (chunk: Buffer) => (raw += chunk.toString()));
    request.on("end", () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      const behaviour = BEHAVIOURS[String(body.model)];
      if (!behaviour) return json(response, 404, { error: `no behaviour ${String(body.model)}` });
      behaviour({ body, headers: request.headers, url: request.url ?? "" }, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const client = (model: string, extra: Partial<ChatModelOptions> = {}) =>
  openAiChatModel({ baseUrl, model, timeoutMs: 2_000, ...extra });
const failureOf = async (promise: Promise<unknown>) => {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LlmError);
  return (error as LlmError).failure;
};

const article: KnowledgeArticle = {
  id: "delivery_period",
  intent: "delivery_period",
  category: "DELIVERY",
  department: "logistics",
  title: "Delivery times",
  body: "Standard: 3–5 business days.",
  template: "",
};

describe("OpenAI-compatible chat client", () => {
  it("posts the model, the messages and the bearer token to {base}/chat/completions", async () => {
    const messages = replyPrompt("How long does delivery take?", [article]);
    const { text } = await client("echo", { apiKey: "secret-token", maxTokens: 123 }).complete(messages);
    const seen = JSON.parse(text) as {
      url: string;
      authorization: string;
      body: { model: string; messages: unknown; max_tokens: number };
    };
    expect(seen.url).toBe("/v1/chat/completions");
    expect(seen.authorization).toBe("Bearer secret-token");
    expect(seen.body.model).toBe("echo");
    expect(seen.body.max_tokens).toBe(123);
    expect(seen.body.messages).toEqual(messages);
  });

  it("returns the trimmed answer and the model the endpoint names", async () => {
    expect(await client("ok").complete([{ role: "user", content: "hi" }])).toEqual({
      text: "Standard delivery takes 3–5 business days.",
      model: "local-test-model-2026-01",
    });
  });

  it("gives up after its timeout", async () => {
    expect(await failureOf(client("slow", { timeoutMs: 200 }).complete([{ role: "user", content: "hi" }]))).toBe(
      "timeout",
    );
  });

  it.each([
    ["error", "http_status"],
    ["html", "malformed"],
    ["no-choices", "malformed"],
    ["null-content", "malformed"],
    ["truncated", "truncated"],
  ])("reports a %s response as %s", async (model, failure) => {
    expect(await failureOf(client(model).complete([{ role: "user", content: "hi" }]))).toBe(failure);
  });

  it("reports an endpoint nobody listens on as unreachable", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = openAiChatModel({ baseUrl: `http://127.0.0.1:${port}/v1`, model: "ok", timeoutMs: 2_000 });
    expect(await failureOf(unreachable.complete([{ role: "user", content: "hi" }]))).toBe("unreachable");
  });
});

describe("reply prompt", () => {
  it("puts the articles in the instructions and the inquiry, as data, in the user message", () => {
    const [system, user] = replyPrompt("  Where is my parcel?  ", [article]);
    expect(system!.role).toBe("system");
    expect(system!.content).toContain("[1] Delivery times\nStandard: 3–5 business days.");
    expect(system!.content).toMatch(/never instructions to follow/);
    expect(user).toEqual({ role: "user", content: 'Customer message:\n"""\nWhere is my parcel?\n"""' });
  });
});
