import type { IHeaders, KafkaMessage, Message } from "kafkajs";
import { errorClass, errorMessage } from "./errors.js";
import { dlqTopicName } from "./topology.js";

/** Headers the runtime adds to a DLQ record; the original headers are kept beside them. */
export const DLQ_HEADERS = {
  errorClass: "switchboard.error.class",
  errorMessage: "switchboard.error.message",
  processor: "switchboard.processor",
  attempts: "switchboard.attempts",
  sourceTopic: "switchboard.source.topic",
  sourcePartition: "switchboard.source.partition",
  sourceOffset: "switchboard.source.offset",
  failedAt: "switchboard.failed_at",
} as const;

/** Added when a DLQ record is re-injected, so a second failure can be traced to its replay. */
export const REPLAYED_FROM_HEADER = "switchboard.replayed_from";

const RUNTIME_HEADERS = new Set<string>([...Object.values(DLQ_HEADERS), REPLAYED_FROM_HEADER]);

export interface DlqEntry {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** The DLQ record for an input: its original key, bytes and headers, plus why it failed. */
export function toDlqMessage(
  source: DlqEntry & { message: KafkaMessage },
  processor: string,
  error: unknown,
  attempts: number,
): { topic: string; message: Message } {
  const headers: IHeaders = {
    ...source.message.headers,
    [DLQ_HEADERS.errorClass]: errorClass(error),
    [DLQ_HEADERS.errorMessage]: errorMessage(error).slice(0, 4096),
    [DLQ_HEADERS.processor]: processor,
    [DLQ_HEADERS.attempts]: String(attempts),
    [DLQ_HEADERS.sourceTopic]: source.topic,
    [DLQ_HEADERS.sourcePartition]: String(source.partition),
    [DLQ_HEADERS.sourceOffset]: source.offset,
    [DLQ_HEADERS.failedAt]: new Date().toISOString(),
  };
  return {
    topic: dlqTopicName(source.topic),
    message: { key: source.message.key, value: source.message.value, headers, timestamp: source.message.timestamp },
  };
}

export interface DlqRecordView {
  readonly offset: string;
  readonly key: string | null;
  readonly bytes: number;
  readonly errorClass: string;
  readonly errorMessage: string;
  readonly processor: string;
  readonly attempts: number;
  readonly source: string;
  readonly failedAt: string;
}

const header = (headers: IHeaders | undefined, name: string): string => {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? "" : first.toString();
};

export function describeDlqRecord(message: KafkaMessage): DlqRecordView {
  return {
    offset: message.offset,
    key: message.key?.toString() ?? null,
    bytes: message.value?.length ?? 0,
    errorClass: header(message.headers, DLQ_HEADERS.errorClass),
    errorMessage: header(message.headers, DLQ_HEADERS.errorMessage),
    processor: header(message.headers, DLQ_HEADERS.processor),
    attempts: Number(header(message.headers, DLQ_HEADERS.attempts)),
    source: `${header(message.headers, DLQ_HEADERS.sourceTopic)}[${header(message.headers, DLQ_HEADERS.sourcePartition)}]@${header(message.headers, DLQ_HEADERS.sourceOffset)}`,
    failedAt: header(message.headers, DLQ_HEADERS.failedAt),
  };
}

/** The original record to re-inject: same key, bytes and headers, marked with where it was replayed from. */
export function toReplayMessage(dlqTopic: string, message: KafkaMessage): Message {
  const headers: IHeaders = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (!RUNTIME_HEADERS.has(name) && value !== undefined) headers[name] = value;
  }
  headers[REPLAYED_FROM_HEADER] = `${dlqTopic}@${message.offset}`;
  return { key: message.key, value: message.value, headers };
}
