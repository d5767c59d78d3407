import { Kafka, logLevel, type LogEntry, type logCreator } from "kafkajs";
import type { Logger } from "pino";

const LEVELS: Record<number, "error" | "warn" | "info" | "debug"> = {
  [logLevel.ERROR]: "error",
  [logLevel.WARN]: "warn",
  [logLevel.INFO]: "info",
  [logLevel.DEBUG]: "debug",
};

/** kafkajs logs through pino, so every line is structured JSON like the rest. */
function pinoLogCreator(log: Logger): logCreator {
  return () =>
    ({ level, log: entry }: LogEntry) => {
      const { message, ...fields } = entry;
      log[LEVELS[level] ?? "info"]({ kafka: fields }, message);
    };
}

export function createKafka(brokers: readonly string[], clientId: string, log: Logger): Kafka {
  return new Kafka({
    clientId,
    brokers: [...brokers],
    logLevel: logLevel.WARN,
    logCreator: pinoLogCreator(log.child({ component: "kafkajs" })),
    retry: { initialRetryTime: 300, retries: 10, maxRetryTime: 10_000 },
  });
}
