import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Admin, Consumer, EachBatchPayload, Kafka, Producer, RequestEvent, RequestTimeoutEvent } from "kafkajs";
import type { Logger } from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { backoffDelay } from "./backoff.js";
import { createCheckpoint, type CheckpointPart } from "./checkpoint.js";
import { createTopicCodec } from "./codec.js";
import { errorMessage } from "./errors.js";
import { createGroupCommit } from "./group-commit.js";
import { measureConsumerLag } from "./lag.js";
import { createLifecycle } from "./lifecycle.js";
import { createLimiter } from "./limiter.js";
import type { RuntimeMetrics } from "./metrics.js";
import type { ProcessorImplementation } from "./processor.js";
import { createRecordPath, type Outcome, type Outgoing, type RecordPathOptions } from "./record-path.js";
import { processorTask, taskTopics, type StreamTask } from "./task.js";
import { allTopics, type ProcessorDeclaration, type Topology } from "./topology.js";

/** How often a batch with records in flight heartbeats (kafkajs sends at most one per heartbeat interval). */
const HEARTBEAT_WHILE_WAITING_MS = 1_000;
/** How often the consumer lag is measured, and how long a measurement may take: about one per scrape. */
const LAG_SAMPLE_MS = 5_000;
const LAG_SAMPLE_TIMEOUT_MS = 3_000;

export interface RuntimeOptions extends RecordPathOptions {
  /** Stable per instance: a restarted instance with the same id fences its predecessor's open transaction. */
  readonly instanceId: string;
  /** A consumer that stops heartbeating is out of the group after this long (and its partitions move). */
  readonly sessionTimeoutMs: number;
  /** What a fetch's processing has produced commits after this long; the rest of the fetch goes into the next transaction. */
  readonly commitIntervalMs: number;
  /** Where a new consumer group starts; `earliest` so that nothing produced before the first start is skipped. */
  readonly fromBeginning?: boolean;
  /** How often the consumer lag is measured (lag.ts); 5 s unless a test needs it sooner. */
  readonly lagSampleMs?: number;
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

/**
 * Runs one processor on its own: a task of one member.
 */
export function startProcessor(
  topology: Topology,
  declaration: ProcessorDeclaration,
  implementation: ProcessorImplementation,
  deps: RuntimeDependencies,
  options: RuntimeOptions,
): Promise<RunningProcessor> {
  return startTask(topology, processorTask(declaration, implementation), deps, options);
}

/**
 * Runs a task (a processor, or a chain of them): consume → process → produce inside one Kafka
 * transaction per fetch, with the consumed offsets committed in the same transaction (exactly
 * once for read_committed readers). Poison input goes to `<topic>.dlq` inside that transaction
 * too, so it is never lost and never processed twice. The record path (record-path.ts), the
 * checkpoint (checkpoint.ts) and the clients' lifecycle (lifecycle.ts) are their own modules;
 * this one feeds fetches through them.
 */
export async function startTask(
  topology: Topology,
  task: StreamTask,
  deps: RuntimeDependencies,
  options: RuntimeOptions,
): Promise<RunningProcessor> {
  const { kafka, metrics } = deps;
  const log = deps.log.child({ processor: task.name });
  const topics = taskTopics(task);
  const codec = await createTopicCodec(deps.registry, allTopics(topology).filter((t) => topics.has(t.name)));
  const groupId = task.name;
  const inputPartitions = allTopics(topology)
    .filter((t) => task.inputs.includes(t.name))
    .reduce((sum, t) => sum + t.partitions, 0);
  const transactionalId = `${task.name}.${options.instanceId}`;
  const heartbeatIntervalMs = Math.max(500, Math.floor(options.sessionTimeoutMs / 10));
  const lifecycle = createLifecycle(log);
  const processRecord = createRecordPath(task, { codec, metrics, log }, options);

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
      heartbeatInterval: heartbeatIntervalMs,
      allowAutoTopicCreation: false,
    }),
  });
  // Made by connect(), anew on every reconnect.
  let producer!: Producer;
  let consumer!: Consumer;

  const limiter = createLimiter(task.concurrency);
  const sinks = task.members.flatMap((m) => (m.implementation.flush ? [m.implementation.flush] : []));
  const checkpoint = createCheckpoint({
    name: task.name,
    groupId,
    producer: () => producer,
    groupHeardAt: () => groupHeardAt,
    sessionTimeoutMs: options.sessionTimeoutMs,
    heartbeatIntervalMs,
    flushSinks: () => limiter.exclusive(async () => void (await Promise.all(sinks.map((flush) => flush())))),
    metrics,
    log,
  });
  const groupCommit = createGroupCommit<CheckpointPart>(checkpoint, task.minCommitIntervalMs);
  const lag = measureConsumerLag(kafka, groupId, metrics.consumerLag, log, {
    intervalMs: options.lagSampleMs ?? LAG_SAMPLE_MS,
    timeoutMs: LAG_SAMPLE_TIMEOUT_MS,
    fromBeginning: options.fromBeginning ?? true,
  });

  /**
   * Processes a partition batch in chunks of at most `commitIntervalMs` of work, each committed
   * in the transaction it shares with the other partitions' chunks of the same moment: a large
   * fetch (a backlog) or slow records then still commit every few hundred ms, instead of in one
   * transaction of minutes that a rebalance would throw away.
   */
  const processBatch = async (payload: EachBatchPayload, committed: (offset: string) => void) => {
    // Records held back while a service is away (record-path.ts) may wait minutes: the consumer
    // heartbeats meanwhile, so that waiting for the service does not cost it the group membership.
    // A failed heartbeat (a rebalance) is for the chunks' own heartbeat to report.
    const beating = setInterval(() => void payload.heartbeat().catch(() => undefined), HEARTBEAT_WHILE_WAITING_MS);
    try {
      await processChunks(payload, committed);
    } finally {
      clearInterval(beating);
    }
  };
  const processChunks = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload, committed: (offset: string) => void) => {
    const messages = batch.messages;
    const concurrency = task.concurrency;
    let next = 0;
    while (next < messages.length && isRunning() && !isStale()) {
      const ticket = groupCommit.begin();
      const outgoing: Outgoing[] = [];
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
          const result = limiter.run(() => processRecord(batch.topic, batch.partition, message));
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
      await ticket.join({ topic: batch.topic, partition: batch.partition, outgoing, lastOffset, heartbeat });
      committed(lastOffset);
      resolveOffset(lastOffset);
      const now = Date.now();
      for (const message of messages.slice(first, next)) {
        metrics.recordAgeSeconds.observe({ processor: task.name, topic: batch.topic }, (now - Number(message.timestamp)) / 1000);
      }
      metrics.recordsIn.inc({ processor: task.name, topic: batch.topic }, next - first);
      for (const { topic } of outgoing) metrics.recordsOut.inc({ processor: task.name, topic });
      // Whatever follows the last record in the fetch (its transaction's marker) is passed too.
      if (next === messages.length) lag.passed(batch.topic, batch.partition, BigInt(lastOffset) + 1n, BigInt(batch.lastOffset()) + 1n);
      await heartbeat();
    }
  };

  /**
   * A committed transaction's offsets become readable a few ms after the commit returns, and
   * kafkajs reads a group's offsets without asking for settled ones (no KIP-447): a partition
   * handed to another instance right after a commit could be read at the older offset and its
   * last chunk redone. So a handler that committed and is about to give its partition up (the
   * task stopping, or a rebalance under way) returns only once the offset reads back.
   */
  let rebalancing = false;
  const eachBatch = async (payload: EachBatchPayload) => {
    let last: string | undefined;
    await processBatch(payload, (offset) => (last = offset));
    if (last !== undefined && (lifecycle.state === "stopping" || rebalancing)) {
      await untilCommittedOffsetReads(kafka, groupId, payload.batch.topic, payload.batch.partition, BigInt(last) + 1n, log);
    }
  };

  let resolveDone!: () => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });

  let restarts = 0;
  let adopted = false;
  const processor = task.name;
  metrics.consumerGroupJoins.inc({ processor }, 0);
  metrics.consumerCrashes.inc({ processor }, 0);
  for (const client of ["producer", "consumer"]) metrics.kafkaRequestTimeouts.inc({ processor, client }, 0);
  for (const outcome of ["commit", "abort"]) metrics.transactions.inc({ processor, outcome }, 0);
  // For the checkpoint's membership check (checkpoint.ts): a new consumer has not been heard yet.
  let groupHeardAt: number | undefined;
  const connect = async (): Promise<void> => {
    ({ producer, consumer } = createClients());
    groupHeardAt = undefined;
    const requested = (client: string) => ({ payload }: RequestEvent) =>
      metrics.kafkaRequestSeconds.observe({ processor, client, broker: payload.broker, api: payload.apiName }, payload.duration / 1000);
    const timedOut = (client: string) => ({ payload }: RequestTimeoutEvent) => metrics.kafkaRequestTimeouts.inc({ processor, client, broker: payload.broker });
    producer.on(producer.events.REQUEST, requested("producer"));
    producer.on(producer.events.REQUEST_TIMEOUT, timedOut("producer"));
    consumer.on(consumer.events.REQUEST, requested("consumer"));
    consumer.on(consumer.events.REQUEST_TIMEOUT, timedOut("consumer"));
    consumer.on(consumer.events.REQUEST, ({ payload }) => {
      if (payload.apiName === "Heartbeat" || payload.apiName === "SyncGroup") groupHeardAt = payload.sentAt;
    });
    consumer.on(consumer.events.REBALANCING, () => (rebalancing = true));
    // A fetch of markers or aborted records only never reaches eachBatch: kafkajs passes it by itself.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize === 0 && payload.firstOffset != null) {
        lag.passed(payload.topic, payload.partition, BigInt(payload.firstOffset), BigInt(payload.lastOffset) + 1n);
      }
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      metrics.consumerGroupJoins.inc({ processor });
      lag.hold(payload.memberAssignment);
      rebalancing = false;
      if (lifecycle.state === "connecting") lifecycle.to("running");
      restarts = 0;
    });
    consumer.on(consumer.events.CRASH, (event) => {
      metrics.consumerCrashes.inc({ processor });
      const { error, restart } = event.payload;
      log.error({ error: error.message, restart }, "consumer crashed");
      if (lifecycle.ending) return;
      if (isFenced(error)) {
        lifecycle.to("fenced", { error: error.message });
        void Promise.allSettled([consumer.disconnect(), producer.disconnect(), lag.stop()]).then(() => lifecycle.to("stopped"));
        rejectDone(new Error(`${task.name}: another instance took over ${transactionalId}: ${error.message}`, { cause: error }));
      } else if (restart) {
        // kafkajs restarts the consumer itself; it is back once it rejoins its group.
        if (lifecycle.state === "running") lifecycle.to("recovering", { error: error.message });
        lifecycle.to("connecting");
      } else {
        void recover(error);
      }
    });
    await producer.connect();
    if (!adopted) {
      await adoptOffsets(kafka, producer, task, log);
      adopted = true;
    }
    await consumer.connect();
    for (const topic of task.inputs) await consumer.subscribe({ topic, fromBeginning: options.fromBeginning ?? true });
    // Every assigned partition's batch is handled at once so that one transaction covers the whole fetch.
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: inputPartitions, eachBatch });
  };
  /**
   * kafkajs gives up on errors it deems fatal, such as the group coordinator staying away while
   * the broker restarts; a processor must outlive that, so it reconnects with backoff.
   */
  const recover = async (cause: unknown): Promise<void> => {
    if (lifecycle.ending) return;
    lifecycle.to("recovering", { error: errorMessage(cause) });
    restarts++;
    const delayMs = backoffDelay(restarts, { initialMs: 1_000, maxMs: 30_000 });
    log.warn({ restarts, delayMs }, "reconnecting the processor's Kafka clients");
    await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
    await sleep(delayMs);
    if (lifecycle.ending) return;
    lifecycle.to("connecting");
    try {
      await connect();
    } catch (error) {
      log.error({ error: errorMessage(error) }, "reconnect failed");
      void recover(error);
    }
  };

  try {
    await connect();
  } catch (error) {
    await lag.stop();
    throw error;
  }
  log.info({ inputs: task.inputs, members: task.members.map((m) => m.declaration.name), transactionalId }, "processor started");

  let stopping: Promise<void> | undefined;
  return {
    healthy: () => lifecycle.state === "running",
    done,
    stop() {
      stopping ??= (async () => {
        if (lifecycle.ending) return;
        lifecycle.to("stopping");
        await consumer.stop();
        await consumer.disconnect();
        await lag.stop();
        await handOver(kafka, producer, task, log).catch((error: unknown) =>
          log.warn({ error: errorMessage(error) }, "could not hand over to the members' groups; run alone, they would redo what the chain did"),
        );
        await producer.disconnect();
        for (const member of task.members) await member.implementation.close?.();
        lifecycle.to("stopped");
        log.info("processor stopped");
        resolveDone();
      })();
      return stopping;
    },
  };
}

/**
 * A chain and its members run alone take turns on the same records: each starts where the other
 * stopped. At start, a task takes, per partition of an input, the offset of the group it takes
 * over from (a chain from the member reading that input, a member from its chain) when that is
 * further on than its own; at a graceful stop, a chain hands over: its members' groups are moved
 * to where it stopped (its own offsets for its inputs, the ends of the topics it handed on), so
 * that they can run alone without redoing what it did. Switch deployments with graceful stops.
 */
async function adoptOffsets(kafka: Kafka, producer: Producer, task: StreamTask, log: Logger): Promise<void> {
  if (task.adoptsOffsetsOf.size === 0) return;
  const commits: GroupOffsets[] = [];
  await withAdmin(kafka, async (admin) => {
    for (const [topic, previous] of task.adoptsOffsetsOf) {
      const [own] = await admin.fetchOffsets({ groupId: task.name, topics: [topic] });
      const [theirs] = await admin.fetchOffsets({ groupId: previous, topics: [topic] });
      const mine = new Map((own?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      const ahead = (theirs?.partitions ?? []).filter((p) => p.offset !== "-1" && BigInt(p.offset) > (mine.get(p.partition) ?? -1n));
      if (ahead.length === 0) continue;
      commits.push({ groupId: task.name, topic, partitions: ahead.map(({ partition, offset }) => ({ partition, offset })) });
      log.info({ topic, from: previous, partitions: ahead.length }, "consumer group starts where the group it takes over from stopped");
    }
  });
  await commitGroupOffsets(producer, commits);
}

async function handOver(kafka: Kafka, producer: Producer, task: StreamTask, log: Logger): Promise<void> {
  if (task.members.length < 2) return;
  const commits: GroupOffsets[] = [];
  await withAdmin(kafka, async (admin) => {
    for (const [topic, member] of task.adoptsOffsetsOf) {
      const [own] = await admin.fetchOffsets({ groupId: task.name, topics: [topic] });
      const partitions = (own?.partitions ?? []).filter((p) => p.offset !== "-1").map(({ partition, offset }) => ({ partition, offset }));
      if (partitions.length > 0) commits.push({ groupId: member, topic, partitions });
    }
    for (const topic of task.handedOn) {
      const ends = (await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => ({ partition, offset: high }));
      for (const member of task.members.filter((m) => m.declaration.inputs.includes(topic))) {
        commits.push({ groupId: member.declaration.name, topic, partitions: ends });
      }
    }
  });
  await commitGroupOffsets(producer, commits);
  log.info({ members: task.members.map((m) => m.declaration.name) }, "members' consumer groups moved to where the chain stopped");
}

interface GroupOffsets {
  readonly groupId: string;
  readonly topic: string;
  readonly partitions: { partition: number; offset: string }[];
}

/**
 * Sets groups' committed offsets in one transaction of the task's producer: a transactional
 * offset commit needs no member of the group (the admin client's setOffsets joins the group
 * with a consumer of its own, 5 s each).
 */
async function commitGroupOffsets(producer: Producer, commits: readonly GroupOffsets[]): Promise<void> {
  if (commits.length === 0) return;
  const transaction = await producer.transaction();
  try {
    for (const { groupId, topic, partitions } of commits) {
      await transaction.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions }] });
    }
    await transaction.commit();
  } catch (error) {
    await transaction.abort().catch(() => undefined);
    throw error;
  }
}

async function untilCommittedOffsetReads(kafka: Kafka, groupId: string, topic: string, partition: number, offset: bigint, log: Logger): Promise<void> {
  const deadline = Date.now() + 5_000;
  await withAdmin(kafka, async (admin) => {
    while (Date.now() < deadline) {
      const [read] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const committed = read?.partitions.find((p) => p.partition === partition)?.offset;
      if (committed !== undefined && committed !== "-1" && BigInt(committed) >= offset) return;
      await sleep(5);
    }
    log.warn({ topic, partition, offset: offset.toString() }, "committed offset not readable yet; the next owner of the partition may redo its last chunk");
  });
}

async function withAdmin(kafka: Kafka, work: (admin: Admin) => Promise<void>): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await work(admin);
  } finally {
    await admin.disconnect();
  }
}

/** A producer fenced by a newer one with the same transactional id must stop, not retry. */
function isFenced(error: Error): boolean {
  const type = (error as { type?: string }).type ?? (error.cause as { type?: string } | undefined)?.type;
  return type === "INVALID_PRODUCER_EPOCH" || type === "PRODUCER_FENCED" || /fenced/i.test(error.message);
}
