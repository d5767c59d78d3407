import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort, setupServices, startApi, until, type ApiProcess } from "../support/api.js";
import { startChat, type ChatProcess } from "../support/chat.js";
import { imapClient, killEmailConnectors, startEmailConnector, testMailboxes } from "../support/email.js";
import { chainFixture, startWorker, stopChild } from "../support/topics.js";
import { metricValue, waitHealthy } from "../support/worker-process.js";

/**
 * Each connector process reports the services it uses (switchboard_dependency_up), as the stream
 * tasks do: what KafkaDown, RedisDown & co. read from where the connectors' users are.
 */

const endpoints = inject("endpoints");

/** The dependency gauges on a connector's /metrics, once every one of `expected` is there. */
async function dependencyGauges(url: string, expected: readonly string[]): Promise<Record<string, number>> {
  const gauges = await until(async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const present = expected.filter((dependency) => new RegExp(`^switchboard_dependency_up\\{[^}]*dependency="${dependency}"`, "m").test(text));
    return present.length === expected.length ? Object.fromEntries(expected.map((d) => [d, metricValue(text, "switchboard_dependency_up", { dependency: d })])) : undefined;
  }, 30_000);
  if (!gauges) throw new Error(`${url}/metrics did not show switchboard_dependency_up for ${expected.join(", ")} within 30 s`);
  return gauges;
}

beforeAll(async () => {
  await setupServices(endpoints);
});

describe("connectors' dependency gauges", () => {
  let api: ApiProcess | undefined;
  let chat: ChatProcess | undefined;
  afterAll(async () => {
    await api?.stop();
    await chat?.stop();
    await killEmailConnectors();
  });

  it("the API reports Kafka, the schema registry, Redis, PostgreSQL and Elasticsearch; an Elasticsearch on a closed port is 0", async () => {
    api = await startApi(endpoints, { ELASTICSEARCH_URL: `http://127.0.0.1:${await freePort()}` });
    expect(await dependencyGauges(api.url, ["kafka", "schema_registry", "redis", "postgres", "elasticsearch"])).toEqual({
      kafka: 1,
      schema_registry: 1,
      redis: 1,
      postgres: 1,
      elasticsearch: 0,
    });
    const text = await (await fetch(`${api.url}/metrics`)).text();
    expect(text).toMatch(/^switchboard_dependency_up\{dependency="kafka",connector="api"\} 1$/m);
  });

  it("the chat gateway and the email connector report Kafka, the schema registry and Redis, all 1 with the stack up", async () => {
    chat = await startChat(endpoints, { instanceId: `deps-${randomUUID().slice(0, 8)}` });
    expect(await dependencyGauges(chat.url, ["kafka", "schema_registry", "redis"])).toEqual({ kafka: 1, schema_registry: 1, redis: 1 });
    const { mailbox, processed } = testMailboxes(randomUUID().slice(0, 8));
    const imap = await imapClient(endpoints.imapUrl);
    await imap.mailboxCreate(mailbox);
    await imap.logout();
    const email = await startEmailConnector(endpoints, mailbox, processed);
    expect(await dependencyGauges(`http://127.0.0.1:${email.port}`, ["kafka", "schema_registry", "redis"])).toEqual({ kafka: 1, schema_registry: 1, redis: 1 });
    await email.stop();
  });

  it("a stream task reports Kafka and the schema registry through the same checks", async () => {
    const fixture = await chainFixture("deps", endpoints);
    const port = await freePort();
    const worker = startWorker(fixture, { SWITCHBOARD_METRICS_PORT: String(port) });
    try {
      await waitHealthy(worker, port);
      expect(await dependencyGauges(`http://127.0.0.1:${port}`, ["kafka", "schema_registry"])).toEqual({ kafka: 1, schema_registry: 1 });
    } finally {
      await stopChild(worker);
    }
  });
});
