import { randomUUID } from "node:crypto";
import type { Kafka, KafkaMessage } from "kafkajs";
import type { Logger } from "pino";
import { describeDlqRecord, toReplayMessage, type DlqRecordView } from "./dlq.js";
import { dlqTopicName } from "./topology.js";

/** Offsets each partition must reach to have read everything present now. */
async function endOffsets(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Consumes a topic from its group's position (or the beginning) up to what it held when called,
 * handing each partition's batch to `handle`; resolves once every partition is caught up.
 */
async function consumeToEnd(
  kafka: Kafka,
  topic: string,
  groupId: string,
  handle: (partition: number, messages: KafkaMessage[]) => Promise<void>,
): Promise<void> {
  const targets = await endOffsets(kafka, topic);
  const admin = kafka.admin();
  await admin.connect();
  const committed = await admin.fetchOffsets({ groupId, topics: [topic] }).finally(() => admin.disconnect());
  const remaining = new Set(
    [...targets].filter(([partition, end]) => {
      const position = committed[0]?.partitions.find((p) => p.partition === partition)?.offset ?? "-1";
      return end > 0n && BigInt(position) < end;
    }).map(([partition]) => partition),
  );
  if (remaining.size === 0) return;

  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    // Completion is judged on every batch kafkajs finishes, including those holding only
    // transaction markers, which never reach eachBatch but do count in the high watermark.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic !== topic) return;
      if (BigInt(payload.lastOffset) + 1n >= (targets.get(payload.partition) ?? 0n)) remaining.delete(payload.partition);
      if (remaining.size === 0) resolve();
    });
    consumer
      .run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
          const end = targets.get(batch.partition) ?? 0n;
          const wanted = batch.messages.filter((m) => BigInt(m.offset) < end);
          if (wanted.length > 0) {
            await handle(batch.partition, wanted);
            resolveOffset(wanted[wanted.length - 1]!.offset);
          }
          await heartbeat();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
}

/** Every record in `<topic>.dlq`, with why it failed. Reads without committing anything. */
export async function listDlq(kafka: Kafka, topic: string): Promise<DlqRecordView[]> {
  const records: DlqRecordView[] = [];
  await consumeToEnd(kafka, dlqTopicName(topic), `switchboard-dlq-list-${randomUUID()}`, async (_, messages) => {
    records.push(...messages.map(describeDlqRecord));
  });
  return records;
}

/**
 * Re-injects `<topic>.dlq` records into `<topic>` once their cause is fixed. The replay group's
 * offsets are committed in the same transaction as the re-injected records, so each DLQ record
 * is replayed exactly once however often the command runs.
 */
export async function replayDlq(kafka: Kafka, topic: string, log: Logger): Promise<number> {
  const dlqTopic = dlqTopicName(topic);
  const groupId = `switchboard-dlq-replay.${topic}`;
  const producer = kafka.producer({ transactionalId: groupId, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let replayed = 0;
  try {
    await consumeToEnd(kafka, dlqTopic, groupId, async (partition, messages) => {
      const transaction = await producer.transaction();
      try {
        await transaction.send({ topic, messages: messages.map((m) => toReplayMessage(dlqTopic, m)) });
        await transaction.sendOffsets({
          consumerGroupId: groupId,
          topics: [{ topic: dlqTopic, partitions: [{ partition, offset: (BigInt(messages[messages.length - 1]!.offset) + 1n).toString() }] }],
        });
        await transaction.commit();
      } catch (error) {
        await transaction.abort().catch(() => undefined);
        throw error;
      }
      replayed += messages.length;
      log.info({ dlqTopic, topic, partition, records: messages.length }, "replayed");
    });
  } finally {
    await producer.disconnect();
  }
  return replayed;
}
