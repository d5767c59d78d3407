import type { Producer } from "kafkajs";
import type { Logger } from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "./backoff.js";
import { errorMessage } from "./errors.js";
import type { RuntimeMetrics } from "./metrics.js";
import { splitIntoRequests } from "./produce-requests.js";
import type { Outgoing } from "./record-path.js";

/** What one partition's chunk of a fetch hands to the shared transaction. */
export interface CheckpointPart {
  readonly topic: string;
  readonly partition: number;
  readonly outgoing: readonly Outgoing[];
  readonly lastOffset: string;
}

export interface CheckpointDependencies {
  /** The task's name: the `processor` label of its metrics. */
  readonly name: string;
  readonly groupId: string;
  /** The transactional producer of the moment (the lifecycle replaces it on recovery). */
  readonly producer: () => Producer;
  /** Makes the sinks' buffered writes durable; runs before the transaction, alone. */
  readonly flushSinks: () => Promise<void>;
  readonly metrics: RuntimeMetrics;
  readonly log: Logger;
}

/**
 * The checkpoint: one Kafka transaction holding a group of partition chunks' outputs and their
 * consumed offsets, after the sinks flushed what those records buffered. Either all of it
 * commits or none: on abort, the chunks' records are redelivered and produce again.
 */
export function createCheckpoint(deps: CheckpointDependencies): (parts: readonly CheckpointPart[]) => Promise<void> {
  const { name, groupId, metrics, log } = deps;

  /** Times one step of committing, so a slow hop shows where its time goes. */
  const timed = async <T>(phase: string, step: () => Promise<T>): Promise<T> => {
    const end = metrics.transactionPhaseSeconds.startTimer({ processor: name, phase });
    try {
      return await step();
    } finally {
      end();
    }
  };

  return async (parts) => {
    try {
      await timed("flush", deps.flushSinks);
    } catch (error) {
      metrics.transactions.inc({ processor: name, outcome: "abort" });
      log.error({ error: errorMessage(error) }, "flush failed; the batches will be retried");
      throw error;
    }
    const transaction = await timed("begin", () => deps.producer().transaction());
    try {
      for (const topicMessages of splitIntoRequests(parts.flatMap((p) => p.outgoing))) {
        await timed("produce", () => transaction.sendBatch({ topicMessages }));
      }
      const offsets = new Map<string, { partition: number; offset: string }[]>();
      for (const part of parts) {
        const next = (BigInt(part.lastOffset) + 1n).toString();
        offsets.set(part.topic, [...(offsets.get(part.topic) ?? []), { partition: part.partition, offset: next }]);
      }
      const topics = [...offsets].map(([topic, partitions]) => ({ topic, partitions }));
      await timed("offsets", () => whileCoordinatorBusy(() => transaction.sendOffsets({ consumerGroupId: groupId, topics })));
      await timed("commit", () => transaction.commit());
      metrics.transactions.inc({ processor: name, outcome: "commit" });
    } catch (error) {
      metrics.transactions.inc({ processor: name, outcome: "abort" });
      await transaction.abort().catch((abortError: Error) => log.error({ error: abortError.message }, "abort failed"));
      const where = parts.map((p) => `${p.topic}[${p.partition}]`).join(", ");
      log.error({ partitions: where, error: errorMessage(error) }, "transaction aborted; its batches will be retried");
      throw error;
    }
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
