import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Redis } from "ioredis";
import nodemailer from "nodemailer";
import type { Logger } from "pino";
import type { Config } from "../../config/settings.js";
import { watchRules, type LiveRules } from "../../processors/route/rules-watch.js";
import type { Endpoints } from "../../stack/index.js";
import { createTopicCodec } from "../../streams/codec.js";
import { redisProbe } from "../../streams/dependency-probes.js";
import { errorMessage } from "../../streams/errors.js";
import { createKafka } from "../../streams/kafka.js";
import { allTopics } from "../../streams/topology.js";
import type { ConnectorFactory } from "../connector.js";
import type { Intake } from "../intake.js";
import type { ConnectorMetrics } from "../metrics.js";
import { connectorRedis } from "../redis.js";
import { createEmailIngest, type EmailIngest } from "./ingest.js";
import { createEmailMetrics } from "./metrics.js";
import { createReplySender, type ReplySender } from "./replies.js";
import { createMailboxSession } from "./session.js";
import { schemaRegistryOptions } from "../../config/security.js";

export interface EmailIngestHandle {
  readonly ingest: EmailIngest;
  readonly redis: Redis;
  close(): Promise<void>;
}

/** The ingest with its Redis and Kafka clients, as the connector and `import-mail` both use it. */
export function openEmailIngest(
  connector: string,
  config: Config,
  endpoints: Endpoints,
  intake: Intake,
  metrics: ConnectorMetrics,
  log: Logger,
): EmailIngestHandle {
  // The messages are tried again later while Redis is away.
  const redis = connectorRedis(endpoints, log, { commandTimeoutMs: 2_000, whileDown: "email is not published" });
  const kafka = createKafka(endpoints, `${connector}-lookup`, log);
  const ingest = createEmailIngest({
    intake,
    redis,
    kafka,
    metrics,
    log,
    connector,
    maxBytes: config.emailMaxBytes,
    keepReply: config.smtpUrl !== undefined,
  });
  return {
    ingest,
    redis,
    async close() {
      redis.disconnect();
    },
  };
}

/**
 * The email connector (`switchboard run email`): the watched IMAP mailbox, one inquiry per
 * message, flagged and moved once Kafka has it (see ingest.ts and session.ts); with SMTP_URL, the
 * automatic replies the routing rules allow (replies.ts).
 */
export const email: ConnectorFactory = async ({
  topology,
  declaration,
  config,
  endpoints,
  log,
  intake,
  metrics,
  registry,
}) => {
  if (config.imapProcessedMailbox === config.imapMailbox) {
    throw new Error(
      `SWITCHBOARD_IMAP_PROCESSED_MAILBOX must differ from SWITCHBOARD_IMAP_MAILBOX (both are "${config.imapMailbox}")`,
    );
  }
  const emailMetrics = createEmailMetrics(registry);
  const handle = openEmailIngest(declaration.name, config, endpoints, intake, metrics, log);
  const session = createMailboxSession({
    imapUrl: endpoints.imapUrl,
    mailbox: config.imapMailbox,
    processedMailbox: config.imapProcessedMailbox,
    maxBytes: config.emailMaxBytes,
    ingest: handle.ingest,
    metrics: emailMetrics,
    log,
  });

  let rules: LiveRules | undefined;
  let replies: ReplySender | undefined;
  if (config.smtpUrl) {
    const live = await watchRules(config.routingRules, { log, metrics: { rulesReloads: emailMetrics.rulesReloads } });
    rules = live;
    const codec = await createTopicCodec(
      new SchemaRegistry(schemaRegistryOptions(endpoints, declaration.name)),
      allTopics(topology).filter((t) => declaration.inputs?.includes(t.name)),
    );
    replies = createReplySender({
      kafka: createKafka(endpoints, `${declaration.name}-replies`, log),
      codec,
      redis: handle.redis,
      transport: nodemailer.createTransport(config.smtpUrl),
      rules: () => live.current(),
      from: config.emailFrom,
      metrics: emailMetrics,
      log,
    });
  }

  return {
    async start() {
      session.start();
      await replies?.start();
    },
    async health() {
      return {
        imap: session.healthy(),
        redis: handle.redis.status === "ready",
        ...(replies ? { replies: replies.healthy() } : {}),
      };
    },
    // IMAP and SMTP are not among the services the dependency alerts watch: /healthz and switchboard_email_imap_connected show them.
    probes: () => [["redis", redisProbe(handle.redis)]],
    async close() {
      await session.close();
      await replies
        ?.close()
        .catch((error: unknown) => log.warn({ err: errorMessage(error) }, "closing the reply consumers failed"));
      rules?.close();
      await handle.close();
    },
  };
};
