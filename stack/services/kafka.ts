import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { REPO_ROOT } from "../../config/settings.js";
import { run } from "../exec.js";
import { mavenClasspath } from "../maven.js";
import type { ServiceContext, ServiceDefinition, StackPorts } from "../service.js";

/** A fixed id keeps `format` idempotent: the data directory always belongs to this one cluster. */
const CLUSTER_ID = "c3dpdGNoYm9hcmQtbG9jYWw";

const LOG4J = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.controller=WARN
`;

export function kafkaBrokers(ports: StackPorts): string[] {
  return [`127.0.0.1:${ports.kafka}`];
}

function serverProperties(ctx: ServiceContext): string {
  const { kafka, kafkaController } = ctx.ports;
  return [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.voters=1@127.0.0.1:${kafkaController}`,
    `listeners=PLAINTEXT://127.0.0.1:${kafka},CONTROLLER://127.0.0.1:${kafkaController}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${kafka}`,
    "controller.listener.names=CONTROLLER",
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    `log.dirs=${path.join(ctx.paths.data, "log")}`,
    // Single node: every internal topic has one replica.
    "offsets.topic.replication.factor=1",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "group.initial.rebalance.delay.ms=0",
    // Topics come from the topology declaration only, never from a typo in a producer.
    "auto.create.topics.enable=false",
    "num.partitions=3",
    "",
  ].join("\n");
}

/** The broker's jars, resolved by Maven once and cached. */
async function classpath(ctx: ServiceContext): Promise<string> {
  const lib = await mavenClasspath(ctx, path.join(REPO_ROOT, "stack/jvm/kafka/pom.xml"), "kafka");
  return `${lib}/*`;
}

export const kafka: ServiceDefinition = {
  name: "kafka",
  dependsOn: [],
  startTimeoutSeconds: 90,
  port: (ports) => ports.kafka,

  async install(ctx) {
    await classpath(ctx);
  },

  async prepare(ctx) {
    const config = path.join(ctx.paths.data, "server.properties");
    await writeFile(config, serverProperties(ctx));
    await writeFile(path.join(ctx.paths.data, "log4j.properties"), LOG4J);
    if (existsSync(path.join(ctx.paths.data, "log", "meta.properties"))) return;
    await run("java", [
      "-cp",
      await classpath(ctx),
      `-Dlog4j.configuration=file:${path.join(ctx.paths.data, "log4j.properties")}`,
      "kafka.tools.StorageTool",
      "format",
      "--ignore-formatted",
      "-t",
      CLUSTER_ID,
      "-c",
      config,
    ]);
  },

  async launch(ctx) {
    return {
      command: "java",
      args: [
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        `-Dlog4j.configuration=file:${path.join(ctx.paths.data, "log4j.properties")}`,
        "-cp",
        await classpath(ctx),
        "kafka.Kafka",
        path.join(ctx.paths.data, "server.properties"),
      ],
    };
  },

  async healthy(ctx) {
    const admin = new Kafka({
      clientId: "switchboard-stack-health",
      brokers: kafkaBrokers(ctx.ports),
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
      connectionTimeout: 1000,
    }).admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      return cluster.brokers.length > 0;
    } catch {
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  },
};
