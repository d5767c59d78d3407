import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Kafka } from "kafkajs";
import { datasetInquiries, type DemoDataset } from "../../cli/samples/index.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import type { TopicCodec } from "../../streams/codec.js";

/**
 * A fixed offered load for the long-running and fault tests: `rate` inquiries a second (in 100 ms
 * ticks) onto inquiries.received, each with an id of the run. An inquiry whose send fails (the
 * broker away) stays queued and is sent again, as a connector's client retries: the offered load
 * is kept, and what piles up while Kafka is away is the intake's back-pressure.
 */
export interface OfferedLoad {
  /** Inquiries generated so far (sent or still queued). */
  offered(): number;
  /** Inquiries Kafka acknowledged. */
  sent(): number;
  /** Inquiries waiting to be sent (Kafka away or slow). */
  queued(): number;
  /** Ids whose send failed at least once and was made again (a copy may have landed the first time). */
  readonly resent: ReadonlySet<string>;
  /** When each inquiry was first offered (ms since epoch), until its response is seen. */
  readonly offeredAt: Map<string, number>;
  /** Stops generating; resolves once everything queued was sent. */
  stop(): Promise<void>;
}

export function offerLoad(
  send: (inquiries: readonly InquiryReceived[]) => Promise<void>,
  options: { readonly rate: number; readonly runId: string; readonly dataset?: DemoDataset; readonly onSendError?: (error: unknown) => void },
): OfferedLoad {
  const tickMs = 100;
  const dataset = options.dataset ?? "bitext";
  const pool = datasetInquiries(dataset, 5_000, 7);
  const queue: InquiryReceived[] = [];
  const resent = new Set<string>();
  const offeredAt = new Map<string, number>();
  let offered = 0;
  let sent = 0;
  let running = true;
  const started = performance.now();

  const generator = (async () => {
    for (let tick = 1; running; tick++) {
      const due = Math.floor((tick * tickMs * options.rate) / 1000);
      const now = Date.now();
      for (; offered < due; offered++) {
        const template = pool[offered % pool.length]!;
        const id = `${options.runId}-${offered}`;
        offeredAt.set(id, now);
        queue.push({ ...template, inquiry_id: id, envelope: { ...template.envelope, received_at: now } });
      }
      const wait = started + tick * tickMs - performance.now();
      if (wait > 0) await sleep(wait);
    }
  })();

  const sender = (async () => {
    while (running || queue.length > 0) {
      if (queue.length === 0) {
        await sleep(20);
        continue;
      }
      const batch = queue.slice(0, 500);
      try {
        await send(batch);
        queue.splice(0, batch.length);
        sent += batch.length;
      } catch (error) {
        options.onSendError?.(error);
        for (const inquiry of batch) resent.add(inquiry.inquiry_id);
        await sleep(1_000);
      }
    }
  })();

  return {
    offered: () => offered,
    sent: () => sent,
    queued: () => queue.length,
    resent,
    offeredAt,
    async stop() {
      running = false;
      await generator;
      await sender;
    },
  };
}

export interface ResponseTracker {
  /** Responses per inquiry id (read committed): distinct records, by partition and offset. */
  readonly counts: ReadonlyMap<string, number>;
  /** Each first response: when it was seen and received → seen in ms. */
  readonly answered: { readonly id: string; readonly at: number; readonly ms: number }[];
  close(): Promise<void>;
}

/**
 * Reads inquiries.responses (read committed, from the start: the topic is the run's own) and
 * counts each run inquiry's responses; latency is the response seen minus the inquiry offered.
 * Only the key is needed per record, so values are not decoded. A record the tracker's own
 * consumer reads twice (its group rebalancing) is one response: it has one offset.
 */
export async function trackResponses(kafka: Kafka, load: Pick<OfferedLoad, "offeredAt">, runId: string): Promise<ResponseTracker> {
  const counts = new Map<string, number>();
  const positions = new Map<string, string[]>();
  const answered: { id: string; at: number; ms: number }[] = [];
  const consumer = kafka.consumer({ groupId: `responses-${runId}-${randomUUID().slice(0, 8)}`, readUncommitted: false, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: "inquiries.responses", fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const key = message.key?.toString() ?? "";
      if (!key.startsWith(runId)) return;
      const position = `${partition}:${message.offset}`;
      const seen = positions.get(key) ?? [];
      if (seen.includes(position)) return;
      positions.set(key, [...seen, position]);
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      const offeredAt = load.offeredAt.get(key);
      if (n === 1 && offeredAt !== undefined) {
        const at = Date.now();
        answered.push({ id: key, at, ms: at - offeredAt });
      }
    },
  });
  return { counts, answered, close: () => consumer.disconnect() };
}

/** Sends inquiries with an idempotent producer; the pipeline's codec encodes them. */
export async function inquirySender(kafka: Kafka, codec: TopicCodec) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 3 } });
  await producer.connect();
  return {
    send: async (inquiries: readonly InquiryReceived[]) => {
      await producer.send({ topic: "inquiries.received", messages: inquiries.map((i) => ({ key: i.inquiry_id, value: codec.encode("inquiries.received", i) })) });
    },
    close: () => producer.disconnect(),
  };
}

/** Offered ids with no response, and with more than one (a re-sent inquiry's copies reported apart). */
export function answeredOnce(load: OfferedLoad, tracker: ResponseTracker, runId: string, offered: number) {
  const missing: string[] = [];
  const duplicated: string[] = [];
  const duplicatedResent: string[] = [];
  for (let i = 0; i < offered; i++) {
    const id = `${runId}-${i}`;
    const n = tracker.counts.get(id) ?? 0;
    if (n === 0) missing.push(id);
    else if (n > 1) (load.resent.has(id) ? duplicatedResent : duplicated).push(id);
  }
  return { missing, duplicated, duplicatedResent };
}
