import { randomUUID } from "node:crypto";
import { Kafka, logLevel, type Consumer } from "kafkajs";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import { resolveEndpoints } from "../../stack/index.js";
import { LOCAL_SCRAM_USER, localScramPassword } from "../../stack/services/kafka.js";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import { TRIAGE, type Topology } from "../../streams/topology.js";

const config = loadConfig();
const localKafka = !config.kafkaBrokers && inject("endpoints").kafkaBrokers.join() === `127.0.0.1:${config.kafkaPort}`;

/** The environment of a process pointed at the local broker's SCRAM listener, as an operator would set it for a secured cluster. */
const saslEnv = (password: string): NodeJS.ProcessEnv => ({
  SWITCHBOARD_STACK_HOME: config.stackHome,
  KAFKA_BROKERS: `127.0.0.1:${config.kafkaSaslPort}`,
  KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
  KAFKA_SASL_USERNAME: LOCAL_SCRAM_USER,
  KAFKA_SASL_PASSWORD: password,
});

/** Log lines written while a client runs, to show that no secret is among them. */
function recordingLog(): { log: pino.Logger; text: () => string } {
  const lines: string[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
  return { log, text: () => lines.join("") };
}

describe.runIf(localKafka)(
  "Kafka over SASL/SCRAM-SHA-512 (the local broker's SASL_PLAINTEXT listener, configured by settings)",
  () => {
    const id = randomUUID().slice(0, 8);
    const topic = `test.sasl.${id}`;
    const topology: Topology = {
      ...TRIAGE,
      name: `test-sasl-${id}`,
      topics: [
        {
          name: topic,
          description: "SASL test",
          partitions: 3,
          retentionMs: 3_600_000,
          compacted: false,
          valueSchema: "raw",
        },
      ],
      processors: [],
      connectors: [],
    };
    const { log, text } = recordingLog();
    let kafka: Kafka;
    let consumer: Consumer | undefined;

    beforeAll(() => {
      const endpoints = resolveEndpoints(loadConfig(saslEnv(localScramPassword(config.stackHome))));
      expect(endpoints.kafkaBrokers).toEqual([`127.0.0.1:${config.kafkaSaslPort}`]);
      expect(endpoints.security.kafka.sasl).toMatchObject({ mechanism: "scram-sha-512", username: LOCAL_SCRAM_USER });
      kafka = createKafka(endpoints, `sasl-test-${id}`, log);
    });
    afterAll(async () => {
      await consumer?.disconnect();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    });

    it("creates a topic, then produces and consumes transactionally: committed records read, aborted ones not", async () => {
      expect(await createTopics(kafka, topology, log)).toEqual([topic]);

      const producer = kafka.producer({ transactionalId: `sasl-test-${id}`, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const committed = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `committed-${i}` }));
      let transaction = await producer.transaction();
      await transaction.send({ topic, messages: committed });
      await transaction.commit();
      transaction = await producer.transaction();
      await transaction.send({ topic, messages: [{ key: "k0", value: "aborted" }] });
      await transaction.abort();
      // A last committed record, so that reading up to it proves the aborted one was passed over.
      transaction = await producer.transaction();
      await transaction.send({ topic, messages: [{ key: "k0", value: "last" }] });
      await transaction.commit();
      await producer.disconnect();

      consumer = kafka.consumer({ groupId: `sasl-test-${id}`, readUncommitted: false });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const seen: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${seen.length} of 21 records in 60 s`)), 60_000);
        void consumer!.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value!.toString());
            if (seen.length === committed.length + 1) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      expect(seen.sort()).toEqual([...committed.map((m) => m.value), "last"].sort());
      expect(text()).not.toContain(localScramPassword(config.stackHome));
    });

    it("refuses a wrong password with an error that says so, and logs no password", async () => {
      const wrong = `wrong-${randomUUID()}`;
      const recorded = recordingLog();
      const admin = createKafka(
        resolveEndpoints(loadConfig(saslEnv(wrong))),
        `sasl-test-wrong-${id}`,
        recorded.log,
      ).admin();
      const started = Date.now();
      await expect(admin.connect()).rejects.toThrow(/SASL SCRAM SHA512 authentication failed.*invalid credentials/i);
      // Not retried for a minute as if the broker were away: a bad credential fails at once.
      expect(Date.now() - started).toBeLessThan(10_000);
      await admin.disconnect();
      expect(recorded.text()).not.toContain(wrong);
    });

    it("refuses a client without SASL on that listener: the port takes only authenticated clients", async () => {
      const admin = new Kafka({
        clientId: `sasl-test-plain-${id}`,
        brokers: [`127.0.0.1:${config.kafkaSaslPort}`],
        logLevel: logLevel.NOTHING,
        retry: { retries: 0 },
        connectionTimeout: 2_000,
        requestTimeout: 5_000,
      }).admin();
      await expect(admin.connect().then(() => admin.listTopics())).rejects.toThrow();
      await admin.disconnect();
    });
  },
);
