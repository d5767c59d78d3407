import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Message, Producer } from "kafkajs";
import type { Logger } from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "./backoff.js";
import { createTopicCodec } from "./codec.js";
import { createGroupCommit } from "./group-commit.js";
import { createLimiter } from "./limiter.js";
import { splitIntoRequests } from "./produce-requests.js";
import { toDlqMessage } from "./dlq.js";
import { InvalidOutputError, OversizedRecordError, errorClass, errorMessage, isRecordError } from "./errors.js";
import type { RuntimeMetrics } from "./metrics.js";
import type { InputRecord, ProcessorImplementation } from "./processor.js";
import { allTopics, type ProcessorDeclaration, type Topology } from "./topology.js";

export interface RuntimeOptions {
  readonly maxAttempts: number;
  readonly retryBackoffMs: number;
  readonly maxRecordBytes: number;
  /** Stable per instance: a restarted instance with the same id fences its predecessor's open transaction. */
  readonly instanceId: string;
  /** A consumer that stops heartbeating is out of the group after this long (and its partitions move). */
  readonly sessionTimeoutMs: number;
  /** What a fetch's processing has produced commits after this long; the rest of the fetch goes into the next transaction. */
  readonly commitIntervalMs: number;
  /** Where a new consumer group starts; `earliest` so that nothing produced before the first start is skipped. */
  readonly fromBeginning?: boolean;
}

export interface RuntimeDependencies {
  readonly kafka: Kafka;
  readonly registry: SchemaRegistry;
  readonly metrics: RuntimeMetrics;
  readonly log: Logger;
}

export interface RunningProcessor {
  /** True while the consumer is in its group and fetching. */
  healthy(): boolean;
  /** Finishes the batch in flight, commits it, leaves the group and disconnects. */
  stop(): Promise<void>;
  /** Resolves when the processor stops for good, or rejects if it crashed beyond recovery. */
  readonly done: Promise<void>;
}

type Outcome = { readonly messages: readonly { topic: string; message: Message }[]; readonly dlq: boolean };

/**
 * Runs one processor: consume → process → produce inside one Kafka transaction per fetch, with
 * the consumed offsets committed in the same transaction (exactly once for read_committed
 * readers). Poison input goes to `<topic>.dlq` inside that transaction too, so it is never lost
 * and never processed twice.
 */
export async function startProcessor(
  topology: Topology,
  declaration: ProcessorDeclaration,
  implementation: ProcessorImplementation,
  deps: RuntimeDependencies,
  options: RuntimeOptions,
): Promise<RunningProcessor> {
  const { kafka, metrics } = deps;
  const log = deps.log.child({ processor: declaration.name });
  const codec = await createTopicCodec(deps.registry, allTopics(topology).filter((t) => [...declaration.inputs, ...declaration.outputs].includes(t.name)));
  const groupId = declaration.name;
  const inputPartitions = allTopics(topology)
    .filter((t) => declaration.inputs.includes(t.name))
    .reduce((sum, t) => sum + t.partitions, 0);
  const transactionalId = `${declaration.name}.${options.instanceId}`;

  const createClients = (): { producer: Producer; consumer: Consumer } => ({
    producer: kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 30_000,
      // Right after a commit the coordinator is still writing its markers and answers the next
      // transaction's first request with CONCURRENT_TRANSACTIONS for a few ms; the client-wide
      // 300 ms backoff would add that to every hop's latency (the Java client uses 20 ms here).
      retry: { initialRetryTime: 10, multiplier: 2, maxRetryTime: 2_000, retries: 12 },
    }),
    consumer: kafka.consumer({
      groupId,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(options.sessionTimeoutMs / 10)),
      allowAutoTopicCreation: false,
    }),
  });
  let { producer, consumer } = createClients();

  let consuming = false;

  const processOne = async (topic: string, partition: number, message: KafkaMessage): Promise<Outcome> => {
    for (let attempt = 1; ; attempt++) {
      try {
        if ((message.value?.length ?? 0) > options.maxRecordBytes) {
          throw new OversizedRecordError(`${message.value?.length} bytes exceeds the limit of ${options.maxRecordBytes}`);
        }
        const started = performance.now();
        const input: InputRecord = {
          topic,
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: await codec.decode(topic, message.value),
          headers: message.headers ?? {},
          timestamp: Number(message.timestamp),
        };
        const outputs = await implementation.process(input, { log });
        const messages = outputs.map((output) => {
          if (!declaration.outputs.includes(output.topic)) {
            throw new InvalidOutputError(`${declaration.name} may not write to ${output.topic} (outputs: ${declaration.outputs.join(", ")})`);
          }
          return {
            topic: output.topic,
            message: { key: output.key ?? input.key, value: codec.encode(output.topic, output.value), headers: output.headers },
          };
        });
        metrics.processingSeconds.observe({ processor: declaration.name }, (performance.now() - started) / 1000);
        return { messages, dlq: false };
      } catch (error) {
        metrics.errors.inc({ processor: declaration.name, error_class: errorClass(error) });
        const where = { topic, partition, offset: message.offset, attempt, errorClass: errorClass(error), error: errorMessage(error) };
        if (isRecordError(error) || attempt >= options.maxAttempts) {
          log.warn(where, "record sent to the DLQ");
          metrics.dlqRecords.inc({ processor: declaration.name, topic, error_class: errorClass(error) });
          return { messages: [toDlqMessage({ topic, partition, offset: message.offset, message }, declaration.name, error, attempt)], dlq: true };
        }
        metrics.retries.inc({ processor: declaration.name });
        log.warn(where, "transient error; retrying");
        await sleep(backoffDelay(attempt, { initialMs: options.retryBackoffMs, maxMs: 30_000 }));
      }
    }
  };

  const concurrency = declaration.concurrency ?? 1;
  const limiter = createLimiter(concurrency);

  /** What one partition batch hands to the shared transaction. */
  interface BatchPart {
    readonly topic: string;
    readonly partition: number;
    readonly outgoing: readonly { topic: string; message: Message }[];
    readonly lastOffset: string;
  }

  /** Times one step of committing a transaction, so a slow hop shows where its time goes. */
  const timed = async <T>(phase: string, step: () => Promise<T>): Promise<T> => {
    const end = metrics.transactionPhaseSeconds.startTimer({ processor: declaration.name, phase });
    try {
      return await step();
    } finally {
      end();
    }
  };

  const commitParts = async (parts: readonly BatchPart[]): Promise<void> => {
    try {
      await limiter.exclusive(() => timed("flush", async () => implementation.flush?.()));
    } catch (error) {
      metrics.transactions.inc({ processor: declaration.name, outcome: "abort" });
      log.error({ error: errorMessage(error) }, "flush failed; the batches will be retried");
      throw error;
    }
    const transaction = await timed("begin", () => producer.transaction());
    try {
      for (const topicMessages of splitIntoRequests(parts.flatMap((p) => p.outgoing))) {
        await timed("produce", () => transaction.sendBatch({ topicMessages }));
      }
      const offsets = new Map<string, { partition: number; offset: string }[]>();
      for (const part of parts) {
        offsets.set(part.topic, [...(offsets.get(part.topic) ?? []), { partition: part.partition, offset: (BigInt(part.lastOffset) + 1n).toString() }]);
      }
      const topics = [...offsets].map(([topic, partitions]) => ({ topic, partitions }));
      await timed("offsets", () => whileCoordinatorBusy(() => transaction.sendOffsets({ consumerGroupId: groupId, topics })));
      await timed("commit", () => transaction.commit());
      metrics.transactions.inc({ processor: declaration.name, outcome: "commit" });
    } catch (error) {
      metrics.transactions.inc({ processor: declaration.name, outcome: "abort" });
      await transaction.abort().catch((abortError: Error) => log.error({ error: abortError.message }, "abort failed"));
      const where = parts.map((p) => `${p.topic}[${p.partition}]`).join(", ");
      log.error({ partitions: where, error: errorMessage(error) }, "transaction aborted; its batches will be retried");
      throw error;
    }
  };
  const groupCommit = createGroupCommit(commitParts, declaration.minCommitIntervalMs ?? 0);

  /**
   * Processes a partition batch in chunks of at most `commitIntervalMs` of work, each committed
   * in the transaction it shares with the other partitions' chunks of the same moment: a large
   * fetch (a backlog) or slow records then still commit every few hundred ms, instead of in one
   * transaction of minutes that a rebalance would throw away.
   */
  const eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
    const messages = batch.messages;
    let next = 0;
    while (next < messages.length && isRunning() && !isStale()) {
      const ticket = groupCommit.begin();
      const outgoing: { topic: string; message: Message }[] = [];
      const deadline = performance.now() + options.commitIntervalMs;
      const first = next;
      try {
        // Up to `concurrency` records in flight, each started as soon as another finishes (a slow
        // one holds back only its own slot); outputs are collected in input order.
        const results: Promise<Outcome>[] = [];
        const unsettled = new Set<Promise<void>>();
        const more = () => next < messages.length && isRunning() && !isStale() && (next === first || performance.now() <= deadline);
        while (more()) {
          if (unsettled.size >= concurrency) {
            await Promise.race(unsettled);
            // Slow records must not cost the group membership (kafkajs sends at most one per heartbeat interval).
            await heartbeat();
            if (!more()) break;
          }
          const message = messages[next]!;
          const result = limiter.run(() => processOne(batch.topic, batch.partition, message));
          const settled: Promise<void> = result.then(
            () => void unsettled.delete(settled),
            () => void unsettled.delete(settled),
          );
          unsettled.add(settled);
          results.push(result);
          next++;
        }
        for (const outcome of await Promise.all(results)) outgoing.push(...outcome.messages);
      } catch (error) {
        ticket.abandon();
        throw error;
      }
      if (next === first || isStale()) {
        ticket.abandon();
        return;
      }
      const lastOffset = messages[next - 1]!.offset;
      await ticket.join({ topic: batch.topic, partition: batch.partition, outgoing, lastOffset });
      resolveOffset(lastOffset);
      const now = Date.now();
      for (const message of messages.slice(first, next)) {
        metrics.recordAgeSeconds.observe({ processor: declaration.name, topic: batch.topic }, (now - Number(message.timestamp)) / 1000);
      }
      metrics.recordsIn.inc({ processor: declaration.name, topic: batch.topic }, next - first);
      for (const { topic } of outgoing) metrics.recordsOut.inc({ processor: declaration.name, topic });
      metrics.consumerLag.set(
        { processor: declaration.name, topic: batch.topic, partition: String(batch.partition) },
        Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(lastOffset) - 1n)),
      );
      await heartbeat();
    }
  };

  let resolveDone!: () => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });

  let stopped = false;
  let restarts = 0;
  const run = async (): Promise<void> => {
    ({ producer, consumer } = createClients());
    consumer.on(consumer.events.GROUP_JOIN, () => {
      consuming = true;
      restarts = 0;
    });
    consumer.on(consumer.events.STOP, () => (consuming = false));
    consumer.on(consumer.events.CRASH, (event) => {
      consuming = false;
      const { error, restart } = event.payload;
      log.error({ error: error.message, restart }, "consumer crashed");
      if (restart || stopped) return; // kafkajs restarts the consumer itself
      if (isFenced(error)) {
        rejectDone(new Error(`${declaration.name}: another instance took over ${transactionalId}: ${error.message}`, { cause: error }));
      } else {
        void recover();
      }
    });
    await producer.connect();
    await consumer.connect();
    for (const topic of declaration.inputs) await consumer.subscribe({ topic, fromBeginning: options.fromBeginning ?? true });
    // Every assigned partition's batch is handled at once so that one transaction covers the whole fetch.
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: inputPartitions, eachBatch });
  };
  /**
   * kafkajs gives up on errors it deems fatal, such as the group coordinator staying away while
   * the broker restarts; a processor must outlive that, so it reconnects with backoff.
   */
  const recover = async (): Promise<void> => {
    restarts++;
    const delayMs = backoffDelay(restarts, { initialMs: 1_000, maxMs: 30_000 });
    log.warn({ restarts, delayMs }, "reconnecting the processor's Kafka clients");
    await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
    await sleep(delayMs);
    if (stopped) return;
    try {
      await run();
    } catch (error) {
      log.error({ error: errorMessage(error) }, "reconnect failed");
      void recover();
    }
  };

  await run();
  log.info({ inputs: declaration.inputs, outputs: declaration.outputs, transactionalId }, "processor started");

  let stopping: Promise<void> | undefined;
  return {
    healthy: () => consuming,
    done,
    stop() {
      stopping ??= (async () => {
        stopped = true;
        await consumer.stop();
        await consumer.disconnect();
        await producer.disconnect();
        await implementation.close?.();
        log.info("processor stopped");
        resolveDone();
      })();
      return stopping;
    },
  };
}

/**
 * kafkajs retries CONCURRENT_TRANSACTIONS (the coordinator still finishing the previous commit)
 * when adding partitions but not when adding offsets, which is a sink's first request in a
 * transaction; nothing was added when it fails, so trying again is safe.
 */
async function whileCoordinatorBusy<T>(request: () => Promise<T>, attempts = 12): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      if ((error as { type?: string }).type !== "CONCURRENT_TRANSACTIONS" || attempt >= attempts) throw error;
      await sleep(backoffDelay(attempt, { initialMs: 10, maxMs: 1_000, jitter: false }));
    }
  }
}

/** A producer fenced by a newer one with the same transactional id must stop, not retry. */
function isFenced(error: Error): boolean {
  const type = (error as { type?: string }).type ?? (error.cause as { type?: string } | undefined)?.type;
  return type === "INVALID_PRODUCER_EPOCH" || type === "PRODUCER_FENCED" || /fenced/i.test(error.message);
}
