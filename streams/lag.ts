import type { Kafka } from "kafkajs";
import type { Logger } from "pino";
import type { Gauge } from "prom-client";
import { errorMessage } from "./errors.js";

export interface ConsumerLagOptions {
  readonly intervalMs: number;
  /** A sample not answered by then counts as failed; the next starts only once it settled. */
  readonly timeoutMs: number;
  /** Where the group starts on a partition it never committed (the runtime's `fromBeginning`). */
  readonly fromBeginning: boolean;
}

/** What the runtime tells the lag sampler about its consumer. */
export interface ConsumerLag {
  /** The partitions the consumer holds since its last group join; the series of the others go. */
  hold(assignment: Readonly<Record<string, readonly number[]>>): void;
  /**
   * Offsets [from, to) of a partition hold no record the task reads (transaction markers,
   * aborted records): a committed offset among them is as good as `to`.
   */
  passed(topic: string, partition: number, from: bigint, to: bigint): void;
  /** Removes the task's series and disconnects. */
  stop(): Promise<void>;
}

/**
 * The consumer lag of a task, measured apart from its processing: every `intervalMs`, the
 * group's committed offsets against the last stable offsets of the partitions the consumer
 * holds. A task waiting out an outage commits nothing, so its lag grows with every record that
 * arrives meanwhile; one whose batch finishes only after minutes would otherwise show the last
 * value it set. A committed transaction's marker follows its records and is never committed past
 * (the consumer skips it without a transaction of its own): the markers the task passed are not
 * counted, so a task that has read everything shows 0. While Kafka does not answer, the gauges
 * keep their last values (KafkaDown says why) and one sample at a time is out.
 */
export function measureConsumerLag(
  kafka: Kafka,
  groupId: string,
  gauge: Gauge<"processor" | "topic" | "partition">,
  log: Logger,
  options: ConsumerLagOptions,
): ConsumerLag {
  // The next sample is the retry.
  const admin = kafka.admin({ retry: { retries: 0 } });
  let connected: Promise<void> | undefined;
  let held = new Map<string, ReadonlySet<number>>();
  const skips = new Map<string, { readonly from: bigint; readonly to: bigint }>();
  const key = (topic: string, partition: number) => `${topic}:${partition}`;
  const labels = (topic: string, partition: number) => ({ processor: groupId, topic, partition: String(partition) });

  const sample = async () => {
    const topics = [...held].filter(([, partitions]) => partitions.size > 0).map(([topic]) => topic);
    if (topics.length === 0) return;
    connected ??= admin.connect().catch((error: unknown) => {
      connected = undefined;
      throw error;
    });
    await connected;
    const [committed, ends] = await Promise.all([
      admin.fetchOffsets({ groupId, topics }),
      Promise.all(topics.map(async (topic) => ({ topic, partitions: await admin.fetchTopicOffsets(topic) }))),
    ]);
    const committedAt = new Map(committed.flatMap(({ topic, partitions }) => partitions.map((p) => [key(topic, p.partition), p.offset] as const)));
    for (const { topic, partitions } of ends) {
      for (const { partition, high, low } of partitions) {
        // Held no more (a rebalance while the sample was out): its series is gone and stays so.
        if (!held.get(topic)?.has(partition)) continue;
        const stored = committedAt.get(key(topic, partition));
        let position = BigInt(stored === undefined || stored === "-1" ? (options.fromBeginning ? low : high) : stored);
        const skip = skips.get(key(topic, partition));
        if (skip && position >= skip.from && position < skip.to) position = skip.to;
        const end = BigInt(high);
        gauge.set(labels(topic, partition), Number(end > position ? end - position : 0n));
      }
    }
  };

  let sampling: Promise<void> | undefined;
  let failing = false;
  const tick = async () => {
    if (sampling) return;
    const run = sample();
    sampling = run.catch(() => undefined).finally(() => (sampling = undefined));
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        run,
        new Promise<never>((_, reject) => {
          timeout = setTimeout(() => reject(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
        }),
      ]);
      if (failing) log.info("consumer lag measured again");
      failing = false;
    } catch (error) {
      if (!failing) log.warn({ error: errorMessage(error) }, "consumer lag not measured; its gauges keep their last values until Kafka answers");
      failing = true;
    } finally {
      clearTimeout(timeout);
    }
  };
  const timer = setInterval(() => void tick(), options.intervalMs);
  timer.unref();

  const forget = (keep: ReadonlyMap<string, ReadonlySet<number>>) => {
    for (const [topic, partitions] of held) {
      for (const partition of partitions) {
        if (keep.get(topic)?.has(partition)) continue;
        gauge.remove(labels(topic, partition));
        skips.delete(key(topic, partition));
      }
    }
  };

  return {
    hold(assignment) {
      const next = new Map(Object.entries(assignment).map(([topic, partitions]) => [topic, new Set(partitions)] as const));
      forget(next);
      held = next;
      void tick();
    },
    passed(topic, partition, from, to) {
      if (to > from) skips.set(key(topic, partition), { from, to });
    },
    async stop() {
      clearInterval(timer);
      forget(new Map());
      held = new Map();
      await sampling;
      await admin.disconnect().catch(() => undefined);
    },
  };
}
