import type { IHeaders, KafkaMessage, Message } from "kafkajs";
import type { Logger } from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "./backoff.js";
import type { TopicCodec } from "./codec.js";
import { toDlqMessage } from "./dlq.js";
import { InvalidOutputError, OversizedRecordError, errorClass, errorMessage, isRecordError, isUnavailable } from "./errors.js";
import type { RuntimeMetrics } from "./metrics.js";
import type { InputRecord, OutputRecord, Process } from "./processor.js";
import type { StreamTask, TaskMember } from "./task.js";

export interface RecordPathOptions {
  readonly maxAttempts: number;
  readonly retryBackoffMs: number;
  readonly maxRecordBytes: number;
}

/** A record to write in the transaction. */
export interface Outgoing {
  readonly topic: string;
  readonly message: Message;
}

/** What one consumed record produced: its outputs (and those of the chain behind it), or its DLQ record. */
export interface Outcome {
  readonly messages: readonly Outgoing[];
  /** Some member refused a record of this input: its DLQ record is among the messages. */
  readonly dlq: boolean;
}

export type RecordPath = (topic: string, partition: number, message: KafkaMessage) => Promise<Outcome>;

/** Header of a DLQ record a chain member refused: the topic of the record it refused, handed on inside the chain. */
export const CHAINED_TOPIC_HEADER = "switchboard.chained.topic";

const REFUSED = Symbol("refused");

/** The longest wait between two tries of a record held back by a service that is away. */
const UNAVAILABLE_MAX_BACKOFF_MS = 5_000;

/**
 * The record path of a task: decode → process → encode, with retries and the DLQ, through every
 * member of a chain. Each call of a member is retried on its own (a transient failure of route
 * does not clean the inquiry again); a record error, or retries exhausted, sends the consumed
 * record to its DLQ, naming the member and the error, while what the other members produced is
 * still written (route routes with what is known, as it would on a timeout when run alone). The
 * DLQ holds the consumed record, not the refused in-chain one, so that a replay runs the whole
 * chain again.
 */
export function createRecordPath(
  task: StreamTask,
  deps: { readonly codec: TopicCodec; readonly metrics: RuntimeMetrics; readonly log: Logger },
  options: RecordPathOptions,
): RecordPath {
  const { codec, metrics, log } = deps;
  const readersOf = (topic: string): TaskMember[] => task.members.filter((m) => m.declaration.inputs.includes(topic));
  const readers = new Map<string, TaskMember[]>();
  for (const topic of [...task.inputs, ...task.handedOn]) readers.set(topic, readersOf(topic));
  // Each member's errors, retries and DLQ'd records of each topic it reads at 0, with no error class yet:
  // a rate or increase over them is 0, not absent, until the first refusal (dashboards, DLQGrowing).
  for (const [topic, members] of readers) {
    for (const member of members) {
      metrics.errors.inc({ processor: member.declaration.name }, 0);
      metrics.retries.inc({ processor: member.declaration.name }, 0);
      metrics.dlqRecords.inc({ processor: member.declaration.name, topic }, 0);
    }
  }
  const afterInput = task.members.filter((m) => m.implementation.afterInput);

  return async (topic, partition, message) => {
    const messages: Outgoing[] = [];
    let dlq = false;
    const source = { topic, partition, offset: message.offset, message };
    const first = readers.get(topic)?.[0];
    if (!first) throw new Error(`${task.name} consumed ${topic}, which none of its members reads`);

    /** Runs `work` for `member`, retrying transient failures; a refusal becomes the consumed record's DLQ record. */
    const attempt = async <T>(member: string, work: () => Promise<T>, refused?: string): Promise<T | typeof REFUSED> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await work();
        } catch (error) {
          metrics.errors.inc({ processor: member, error_class: errorClass(error) });
          const where = { topic, partition, offset: message.offset, member, refused, attempt, errorClass: errorClass(error), error: errorMessage(error) };
          // A service away is no fault of the record: it waits for the service instead of spending its attempts.
          const unavailable = !isRecordError(error) && isUnavailable(error);
          if (isRecordError(error) || (!unavailable && attempt >= options.maxAttempts)) {
            metrics.dlqRecords.inc({ processor: member, topic, error_class: errorClass(error) });
            // Two members refusing records of one input still make one DLQ record: a replay runs it once.
            if (dlq) {
              log.warn(where, "record refused; its input is already in the DLQ");
              return REFUSED;
            }
            log.warn(where, "record sent to the DLQ");
            const record = toDlqMessage(source, member, error, attempt);
            if (refused) record.message.headers = { ...record.message.headers, [CHAINED_TOPIC_HEADER]: refused };
            messages.push(record);
            dlq = true;
            return REFUSED;
          }
          metrics.retries.inc({ processor: member });
          log.warn(where, unavailable ? "a service is unavailable; holding the record until it is back" : "transient error; retrying");
          // While a service is away the backoff stays short, so that records move soon after it is back.
          await sleep(backoffDelay(attempt, { initialMs: options.retryBackoffMs, maxMs: unavailable ? UNAVAILABLE_MAX_BACKOFF_MS : 30_000 }));
        }
      }
    };

    /** Runs `process` of `member` on `record`, writes its outputs, and hands on those a later member reads. */
    const run = async (member: TaskMember, process: Process, record: InputRecord): Promise<void> => {
      const { name, outputs: allowed } = member.declaration;
      const chained = record.topic === topic ? undefined : record.topic;
      const encoded = await attempt(
        name,
        async () => {
          const started = performance.now();
          const outputs = await process(record, { log });
          const written = outputs.map((output) => encode(name, allowed, record, output));
          metrics.processingSeconds.observe({ processor: name }, (performance.now() - started) / 1000);
          return written;
        },
        chained,
      );
      if (encoded === REFUSED) return;
      messages.push(...encoded);
      await Promise.all(encoded.filter((o) => task.handedOn.has(o.topic)).map((o) => deliver(handOn(o, record))));
    };

    const deliver = async (record: InputRecord): Promise<void> => {
      await Promise.all((readers.get(record.topic) ?? []).map((member) => run(member, member.implementation.process, record)));
    };

    const input = await attempt(first.declaration.name, async (): Promise<InputRecord> => {
      if ((message.value?.length ?? 0) > options.maxRecordBytes) {
        throw new OversizedRecordError(`${message.value?.length} bytes exceeds the limit of ${options.maxRecordBytes}`);
      }
      return {
        topic,
        partition,
        offset: message.offset,
        key: message.key?.toString() ?? null,
        value: await codec.decode(topic, message.value),
        headers: message.headers ?? {},
        timestamp: Number(message.timestamp),
      };
    });
    if (input === REFUSED) return { messages, dlq };
    await deliver(input);
    for (const member of afterInput) await run(member, member.implementation.afterInput!, input);
    return { messages, dlq };
  };

  function encode(processor: string, allowed: readonly string[], input: InputRecord, output: OutputRecord): Outgoing {
    if (!allowed.includes(output.topic)) {
      throw new InvalidOutputError(`${processor} may not write to ${output.topic} (outputs: ${allowed.join(", ")})`);
    }
    return {
      topic: output.topic,
      message: { key: output.key ?? input.key, value: codec.encode(output.topic, output.value), headers: output.headers },
    };
  }

  /**
   * The record a later member reads, as it would read it from Kafka: decoded from the bytes
   * written (so it sees exactly what a member run alone would), in the input's partition (topics
   * that hand on are co-partitioned by key), its offset unknown until the transaction commits.
   */
  function handOn(output: Outgoing, from: InputRecord): InputRecord {
    const value = output.message.value as Buffer;
    return {
      topic: output.topic,
      partition: from.partition,
      offset: "",
      key: output.message.key?.toString() ?? null,
      value: codec.decodeOwn(output.topic, value),
      headers: (output.message.headers ?? {}) as IHeaders,
      timestamp: Date.now(),
    };
  }
}
