import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Kafka, logLevel } from "kafkajs";
import { REPO_ROOT } from "../../config/settings.js";
import { CommandError, run } from "../exec.js";
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

/** The SCRAM-SHA-512 user of the local broker's SASL_PLAINTEXT listener. */
export const LOCAL_SCRAM_USER = "switchboard";
export const localScramPasswordFile = (stackHome: string) => path.join(stackHome, "secrets", "kafka-scram-password");

/**
 * The local SCRAM user's password: made once, kept in `<stack home>/secrets/` (mode 600) beside
 * the local API key, so that it survives restarts and the broker's credential stays valid.
 */
export function localScramPassword(stackHome: string): string {
  const file = localScramPasswordFile(stackHome);
  if (existsSync(file)) {
    const kept = readFileSync(file, "utf8").trim();
    if (kept) return kept;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Hex: nothing that needs quoting in the credential's `[password=...]` syntax.
  const password = randomBytes(24).toString("hex");
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return password;
}

function serverProperties(ctx: ServiceContext): string {
  const { kafka, kafkaController, kafkaSasl } = ctx.ports;
  return [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.voters=1@127.0.0.1:${kafkaController}`,
    // PLAINTEXT is what every process of the stack uses; SASL_PLAINTEXT is there to test the SASL path.
    `listeners=PLAINTEXT://127.0.0.1:${kafka},CONTROLLER://127.0.0.1:${kafkaController},SASL_PLAINTEXT://127.0.0.1:${kafkaSasl}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${kafka},SASL_PLAINTEXT://127.0.0.1:${kafkaSasl}`,
    "controller.listener.names=CONTROLLER",
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
    "inter.broker.listener.name=PLAINTEXT",
    "sasl.enabled.mechanisms=SCRAM-SHA-512",
    // A broker-side SCRAM login needs no credentials of its own: users live in the cluster metadata.
    "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
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

  /**
   * Makes sure the SCRAM user authenticates on the SASL listener with the kept password. A
   * credential is cluster metadata: added once here (the data directory may predate the
   * listener, so not at format time), through the plaintext listener, by Kafka's own
   * ConfigCommand from the broker's jars; later starts find it working and do nothing.
   */
  async afterStart(ctx) {
    const port = ctx.ports.kafkaSasl;
    if (!(await listening(port))) {
      // A broker started before the listener was configured: it gets it at its next start.
      ctx.log.warn(
        { port },
        "the running broker has no SASL_PLAINTEXT listener yet; it opens when kafka restarts (`switchboard stack down kafka && switchboard stack up`)",
      );
      return;
    }
    const password = localScramPassword(ctx.paths.home);
    if (await scramAuthenticates(ctx, password)) return;
    // In a file, not on the command line: arguments show in `ps` and in a failed command's error.
    const credential = path.join(ctx.paths.data, "scram-credential.properties");
    // A properties file: the value without the brackets the command line's syntax wants.
    await writeFile(credential, `SCRAM-SHA-512=iterations=8192,password=${password}\n`, { mode: 0o600 });
    try {
      await runRedacted(password, "java", [
        "-cp",
        await classpath(ctx),
        `-Dlog4j.configuration=file:${path.join(ctx.paths.data, "log4j.properties")}`,
        "kafka.admin.ConfigCommand",
        "--bootstrap-server",
        kafkaBrokers(ctx.ports).join(","),
        "--alter",
        "--entity-type",
        "users",
        "--entity-name",
        LOCAL_SCRAM_USER,
        "--add-config-file",
        credential,
      ]);
    } finally {
      await rm(credential, { force: true });
    }
    // The credential reaches the listener through the metadata log: moments.
    const deadline = Date.now() + 30_000;
    while (!(await scramAuthenticates(ctx, password))) {
      if (Date.now() > deadline)
        throw new Error(
          `SCRAM user ${LOCAL_SCRAM_USER} still refused on 127.0.0.1:${port} 30 s after its credential was set; see ${ctx.paths.log}`,
        );
      await sleep(500);
    }
    ctx.log.info({ port, user: LOCAL_SCRAM_USER }, "SCRAM-SHA-512 credential set");
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

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, timeout: 1000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.once("timeout", () => done(false));
  });
}

async function scramAuthenticates(ctx: ServiceContext, password: string): Promise<boolean> {
  const admin = new Kafka({
    clientId: "switchboard-stack-scram",
    brokers: [`127.0.0.1:${ctx.ports.kafkaSasl}`],
    sasl: { mechanism: "scram-sha-512", username: LOCAL_SCRAM_USER, password },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 2000,
  }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** `run`, with a secret the command's output may echo (ConfigCommand prints a credential it refuses) taken out of its error. */
async function runRedacted(secret: string, command: string, args: readonly string[]): Promise<string> {
  try {
    return await run(command, args);
  } catch (error) {
    if (error instanceof CommandError)
      throw new CommandError(
        error.command.replaceAll(secret, "<secret>"),
        error.exitCode,
        error.output.replaceAll(secret, "<secret>"),
      );
    throw error;
  }
}
