import { Kafka, logLevel, type LogEntry, type RetryOptions, type logCreator } from "kafkajs";
import type { Logger } from "pino";
import { kafkaSecurityOptions, type ClientSecurity } from "../config/security.js";

const LEVELS: Record<number, "error" | "warn" | "info" | "debug"> = {
  [logLevel.ERROR]: "error",
  [logLevel.WARN]: "warn",
  [logLevel.INFO]: "info",
  [logLevel.DEBUG]: "debug",
};

/**
 * Right after a commit the transaction coordinator answers CONCURRENT_TRANSACTIONS until its
 * markers are written; the producer retries within milliseconds. kafkajs logs each as an error.
 */
const EXPECTED_RETRY = /concurrent operation on the same transaction/;

/**
 * Notices kafkajs logs as warnings whenever a producer is made, about choices made here on
 * purpose: the v2 default partitioner, and bounded retries (a send that keeps failing fails the
 * transaction, which is redone, rather than retrying for ever).
 */
const CONFIGURATION_NOTICE = /switched default partitioner|Limiting retries for the idempotent producer/;

/** kafkajs logs through pino, like the rest (its own time stamp and logger name left out: pino has both). */
function pinoLogCreator(log: Logger): logCreator {
  return () =>
    ({ level, log: entry }: LogEntry) => {
      // eslint-disable-next-line @typescript-eslint/no-unused-vars
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry;
      const expected = EXPECTED_RETRY.test(message) || EXPECTED_RETRY.test(String(fields.error ?? "")) || CONFIGURATION_NOTICE.test(message);
      log[expected ? "debug" : (LEVELS[level] ?? "info")](Object.keys(fields).length > 0 ? { kafka: fields } : {}, message);
    };
}

/** Where a Kafka client connects, and how (TLS, SASL): the endpoints' `kafkaBrokers` and `security`. */
export interface KafkaEndpoint {
  readonly kafkaBrokers: readonly string[];
  readonly security: ClientSecurity;
}

/** Every Kafka client of Switchboard: with the configured TLS and SASL (`config/security.ts`). */
export function createKafka(endpoint: KafkaEndpoint, clientId: string, log: Logger, options: { readonly retry?: RetryOptions } = {}): Kafka {
  return new Kafka({
    clientId,
    brokers: [...endpoint.kafkaBrokers],
    ...kafkaSecurityOptions(endpoint.security),
    logLevel: logLevel.WARN,
    logCreator: pinoLogCreator(log.child({ component: "kafkajs" })),
    retry: options.retry ?? { initialRetryTime: 300, retries: 10, maxRetryTime: 10_000 },
  });
}
