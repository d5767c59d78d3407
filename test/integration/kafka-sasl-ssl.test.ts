import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Kafka, logLevel } from "kafkajs";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import { resolveEndpoints } from "../../stack/index.js";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import { TRIAGE, type Topology } from "../../streams/topology.js";
import { freePort } from "../support/api.js";
import { testCertificates } from "../support/certificates.js";
import { quietLog } from "../support/topics.js";

const config = loadConfig();
/** The local stack's broker jars (the stack has run once on this machine). */
const JARS = path.join(config.stackHome, "cache", "kafka", "lib");

/**
 * The README's external SASL_SSL cluster, for real: a broker of this test's own (the stack's
 * jars) with a SASL_SSL listener, SCRAM-SHA-512 and a certificate from a private CA, reached
 * through the settings (KAFKA_TLS, KAFKA_TLS_CA_FILE, KAFKA_SASL_*) → config/security.ts → kafkajs.
 */
describe.runIf(existsSync(path.join(JARS, ".complete")))(
  "Kafka over SASL_SSL with a private CA (a broker of the test's own)",
  () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-kafka-ssl-"));
    const file = (name: string) => path.join(dir, name);
    const password = randomBytes(16).toString("hex");
    let broker: ChildProcess | undefined;
    let sslPort: number;
    const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
      KAFKA_BROKERS: `localhost:${sslPort}`,
      KAFKA_TLS: "true",
      KAFKA_SASL_MECHANISM: "scram-sha-512",
      KAFKA_SASL_USERNAME: "switchboard",
      KAFKA_SASL_PASSWORD: password,
      ...extra,
    });

    beforeAll(async () => {
      testCertificates(dir, { name: "broker" });
      // Kafka's PEM keystore wants an encrypted PKCS#8 key, in a scheme the JVM reads.
      execFileSync(
        "openssl",
        [
          "pkcs8",
          "-topk8",
          "-in",
          "broker.key",
          "-out",
          "broker-key.pem",
          "-passout",
          "pass:keystore",
          "-v1",
          "PBE-SHA1-3DES",
        ],
        { cwd: dir, stdio: "pipe" },
      );
      writeFileSync(
        file("keystore.pem"),
        readFileSync(file("broker-key.pem"), "utf8") + readFileSync(file("broker.pem"), "utf8"),
      );

      const [plainPort, controllerPort] = [await freePort(), await freePort()];
      sslPort = await freePort();
      writeFileSync(
        file("server.properties"),
        [
          "process.roles=broker,controller",
          "node.id=1",
          `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
          `listeners=SASL_SSL://localhost:${sslPort},PLAINTEXT://127.0.0.1:${plainPort},CONTROLLER://127.0.0.1:${controllerPort}`,
          `advertised.listeners=SASL_SSL://localhost:${sslPort},PLAINTEXT://127.0.0.1:${plainPort}`,
          "controller.listener.names=CONTROLLER",
          "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
          "inter.broker.listener.name=PLAINTEXT",
          "sasl.enabled.mechanisms=SCRAM-SHA-512",
          "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
          "ssl.keystore.type=PEM",
          `ssl.keystore.location=${file("keystore.pem")}`,
          "ssl.key.password=keystore",
          `log.dirs=${file("log")}`,
          "offsets.topic.replication.factor=1",
          "transaction.state.log.replication.factor=1",
          "transaction.state.log.min.isr=1",
          "group.initial.rebalance.delay.ms=0",
          "auto.create.topics.enable=false",
          "",
        ].join("\n"),
      );
      writeFileSync(
        file("log4j.properties"),
        "log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n",
      );
      const java = ["-cp", `${JARS}/*`, `-Dlog4j.configuration=file:${file("log4j.properties")}`];
      // A new cluster, so the SCRAM user can be made with it.
      execFileSync(
        "java",
        [
          ...java,
          "kafka.tools.StorageTool",
          "format",
          "-t",
          "c3dpdGNoYm9hcmQtc3NsLXRlc3Q",
          "-c",
          file("server.properties"),
          "--add-scram",
          `SCRAM-SHA-512=[name=switchboard,password=${password}]`,
        ],
        { stdio: "pipe" },
      );
      const out = openSync(file("broker.log"), "a");
      broker = spawn("java", ["-Xmx512m", ...java, "kafka.Kafka", file("server.properties")], {
        stdio: ["ignore", out, out],
      });

      const admin = new Kafka({
        clientId: "ssl-test-wait",
        brokers: [`127.0.0.1:${plainPort}`],
        logLevel: logLevel.NOTHING,
        retry: { retries: 0 },
        connectionTimeout: 1000,
      }).admin();
      const deadline = Date.now() + 90_000;
      for (;;) {
        try {
          await admin.connect();
          await admin.describeCluster();
          await admin.disconnect();
          return;
        } catch {
          if (Date.now() > deadline || broker.exitCode !== null)
            throw new Error(
              `the SASL_SSL test broker did not start: ${readFileSync(file("broker.log"), "utf8").slice(-2000)}`,
            );
          await sleep(500);
        }
      }
    });
    afterAll(async () => {
      if (broker && broker.exitCode === null) {
        broker.kill("SIGTERM");
        for (let i = 0; i < 100 && broker.exitCode === null; i++) await sleep(100);
        if (broker.exitCode === null) broker.kill("SIGKILL");
      }
      rmSync(dir, { recursive: true, force: true });
    });

    it("connects with KAFKA_TLS_CA_FILE, creates a topic, produces in a transaction and reads it back", async () => {
      const endpoints = resolveEndpoints(loadConfig(env({ KAFKA_TLS_CA_FILE: file("ca.pem") })));
      expect(endpoints.security.kafka).toMatchObject({ tls: true, ca: readFileSync(file("ca.pem"), "utf8") });
      const kafka = createKafka(endpoints, "ssl-test", quietLog);
      const topic = `test.ssl.${randomUUID().slice(0, 8)}`;
      const topology: Topology = {
        ...TRIAGE,
        name: "test-ssl",
        topics: [
          {
            name: topic,
            description: "SASL_SSL test",
            partitions: 1,
            retentionMs: 3_600_000,
            compacted: false,
            valueSchema: "raw",
          },
        ],
        processors: [],
        connectors: [],
      };
      expect(await createTopics(kafka, topology, quietLog)).toEqual([topic]);
      const producer = kafka.producer({
        transactionalId: `ssl-test-${topic}`,
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await producer.connect();
      const transaction = await producer.transaction();
      await transaction.send({ topic, messages: [{ key: "k", value: "over SASL_SSL" }] });
      await transaction.commit();
      await producer.disconnect();
      const consumer = kafka.consumer({ groupId: `ssl-test-${topic}` });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const value = await new Promise<string>(
        (resolve) => void consumer.run({ eachMessage: async ({ message }) => resolve(message.value!.toString()) }),
      );
      await consumer.disconnect();
      expect(value).toBe("over SASL_SSL");
    });

    it("refuses the broker's certificate without the CA file (the system CAs do not know it)", async () => {
      const admin = createKafka(
        resolveEndpoints(loadConfig(env())),
        "ssl-test-no-ca",
        pino({ level: "silent" }),
      ).admin();
      await expect(admin.connect()).rejects.toThrow(/unable to verify the first certificate/);
      await admin.disconnect();
    }, 120_000);
  },
);
