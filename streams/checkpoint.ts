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
  /** The batch's kafkajs heartbeat: fails once the consumer is no longer the group member that was assigned the partition. */
  readonly heartbeat: () => Promise<void>;
}

export interface CheckpointDependencies {
  /** The task's name: the `processor` label of its metrics. */
  readonly name: string;
  readonly groupId: string;
  /** The transactional producer of the moment (the lifecycle replaces it on recovery). */
  readonly producer: () => Producer;
  /** When the consumer's latest answered Heartbeat or SyncGroup request was sent: its group coordinator heard from it then. */
  readonly groupHeardAt: () => number | undefined;
  /** The consumer's: an answer asked for more than a third of the session ago no longer vouches for the membership. */
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
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

  /**
   * A consumer that lost its group membership (its process stalled past the session timeout) no
   * longer owns its partitions: the new owner redoes them from the committed offsets, so this
   * transaction must not commit as well. The broker does not refuse it by itself: the
   * transactional id is the instance's, not the partition's, and kafkajs's TxnOffsetCommit carries
   * no generation or member id (no KIP-447). So a heartbeat goes first. kafkajs rejoins only once
   * every handler of a fetch returned, so it names the member and generation that assigned these
   * partitions; after a lost session it fails with UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION, rethrown
   * as is so that kafkajs rejoins at once. REBALANCE_IN_PROGRESS still means a member of that
   * generation (the partitions move once it rejoins): it commits, as in a graceful hand-over.
   * kafkajs sends no heartbeat within one heartbeat interval of its last success, which it stamps
   * when it reads the answer: one answered just before a stall would vouch for the member after
   * it. So the answer must also have been asked for less than a third of the session timeout ago
   * (normally under one heartbeat interval); if not, it asks again once the interval has passed,
   * and aborts if that answer is no fresher. isStale() cannot tell: it reports only a pending
   * consumer.seek(), which the runtime never calls.
   *
   * Left open: a stall of at least two thirds of the session timeout (4 s of a 6 s session, 20 s of
   * the default 30 s; 5.4 s and 27 s in the usual case) starting in the few ms between this check
   * and the broker writing the commit, or a commit request reaching the broker that much later.
   */
  const stillAssigned = async (parts: readonly CheckpointPart[]): Promise<void> => {
    const answerAgeMs = async (): Promise<number> => {
      // kafkajs shares one heartbeat among a consumer's batches: these make one request at most.
      const answers = await Promise.allSettled(parts.map((part) => part.heartbeat()));
      for (const answer of answers) {
        if (answer.status === "rejected" && (answer.reason as { type?: string }).type !== "REBALANCE_IN_PROGRESS") throw answer.reason;
      }
      const heardAt = deps.groupHeardAt();
      return heardAt === undefined ? Infinity : Date.now() - heardAt;
    };
    const freshMs = deps.sessionTimeoutMs / 3;
    let ageMs = await answerAgeMs();
    if (ageMs > freshMs) {
      await sleep(deps.heartbeatIntervalMs);
      ageMs = await answerAgeMs();
    }
    if (ageMs === Infinity) throw new Error(`group ${groupId} has not answered this member yet: its membership is not confirmed`);
    if (ageMs > freshMs) {
      throw new Error(`the latest answer of group ${groupId} to this member was asked for ${ageMs} ms ago, over a third of its ${deps.sessionTimeoutMs} ms session: its membership is not confirmed`);
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
      await timed("membership", () => stillAssigned(parts));
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
