import { randomUUID } from "node:crypto";
import type { Kafka } from "kafkajs";

/** Longest a look-up may take before it fails (the message is then tried again later). */
const LOOKUP_TIMEOUT_MS = 60_000;
/** The attempt's record carries the producer's time, this host's clock like `since`: this covers a step back of it. */
const CLOCK_SLACK_MS = 5_000;
/**
 * A partition holds records in the order they were written, each with its own producer's time: a
 * producer whose clock runs ahead can put a time past the window before the attempt's record.
 * Reading this much further costs little and covers any clock that is kept at all.
 */
const LATE_RECORD_SLACK_MS = 5 * 60_000;

/**
 * Which of these inquiries Kafka already holds in `topic`, looking at the records written between
 * `since` and `until` (the window in which the attempts of unknown outcome could have landed):
 * each partition is read from the offset of `since` until a record is later than `until` or the
 * partition's end as of now. Keyed records, so the inquiry id is the record key. Used only after a
 * publish whose acknowledgement was never recorded (a crash, a timeout): rare, and bounded by the
 * records of that window however long ago it was.
 */
export async function findPublished(
  kafka: Kafka,
  topic: string,
  inquiryIds: ReadonlySet<string>,
  since: number,
  until: number,
): Promise<Set<string>> {
  const found = new Set<string>();
  if (inquiryIds.size === 0) return found;
  const admin = kafka.admin();
  await admin.connect();
  let ranges: Map<number, { start: bigint; end: bigint }>;
  try {
    const starts = await admin.fetchTopicOffsetsByTimestamp(topic, since - CLOCK_SLACK_MS);
    const ends = await admin.fetchTopicOffsets(topic);
    ranges = new Map(
      starts.flatMap(({ partition, offset }) => {
        const end = BigInt(ends.find((e) => e.partition === partition)?.high ?? "0");
        const start = BigInt(offset);
        return start < end ? [[partition, { start, end }] as const] : [];
      }),
    );
  } finally {
    await admin.disconnect();
  }
  if (ranges.size === 0) return found;

  const consumer = kafka.consumer({ groupId: `switchboard-email-lookup-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: false });
    const remaining = new Set(ranges.keys());
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`looking up ${inquiryIds.size} inquiries in ${topic} took longer than ${LOOKUP_TIMEOUT_MS} ms`),
          ),
        LOOKUP_TIMEOUT_MS,
      );
      const finish = (partition: number, nextOffset: bigint) => {
        const range = ranges.get(partition);
        if (range && nextOffset >= range.end) remaining.delete(partition);
        if (remaining.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      // Batches of transaction markers only never reach eachBatch but still move the offset.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (payload.topic === topic) finish(payload.partition, BigInt(payload.lastOffset) + 1n);
      });
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const range = ranges.get(batch.partition);
            if (!range) return;
            for (const message of batch.messages) {
              if (BigInt(message.offset) >= range.end) break;
              if (Number(message.timestamp) > until + LATE_RECORD_SLACK_MS) {
                // Past the window: nothing later can be one of the attempts.
                range.end = BigInt(message.offset);
                break;
              }
              const key = message.key?.toString();
              if (key !== undefined && inquiryIds.has(key)) found.add(key);
            }
          },
        })
        .then(() => {
          for (const [partition, { start }] of ranges) consumer.seek({ topic, partition, offset: start.toString() });
        })
        .catch(reject);
    });
    await done;
  } finally {
    await consumer.disconnect();
  }
  return found;
}
