import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka, Message, Producer } from "kafkajs";
import type { Logger } from "pino";
import type { AgentReply, InquiryReceived, PredictionFeedback } from "../schemas/types.generated.js";
import type { Endpoints } from "../stack/index.js";
import { createTopicCodec, type TopicCodec } from "../streams/codec.js";
import { errorMessage } from "../streams/errors.js";
import { createKafka } from "../streams/kafka.js";
import { allTopics, type ConnectorDeclaration, type Topology } from "../streams/topology.js";
import { schemaRegistryOptions } from "../config/security.js";

/** Kafka could not take a record now (broker down, timed out); the caller answers 503 or retries later. */
export class IntakeUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "IntakeUnavailableError";
  }
}

/**
 * How a connector hands records to Kafka: encoded against the topic's contract (a record that does
 * not match throws at once, before anything is sent), then written with acks from every in-sync
 * replica by an idempotent producer. A call resolves only once Kafka has acknowledged the record,
 * so a connector acknowledges its source (HTTP 202, an IMAP flag) only after that.
 */
export interface Intake {
  publishInquiry(inquiry: InquiryReceived): Promise<void>;
  publishFeedback(record: PredictionFeedback): Promise<void>;
  /** An agent's reply from the console (inquiries.replies), keyed by its inquiry like every record about it. */
  publishReply(reply: AgentReply): Promise<void>;
  /** False after a failed send until one succeeds again: /healthz reports it. */
  healthy(): boolean;
  close(): Promise<void>;
}

export interface IntakeOptions {
  /** Longest a publish waits for Kafka before failing with IntakeUnavailableError. */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly topic: string;
  readonly message: Message;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export async function createIntake(
  topology: Topology,
  connector: ConnectorDeclaration,
  endpoints: Endpoints,
  log: Logger,
  options: IntakeOptions = {},
): Promise<Intake> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const codec: TopicCodec = await createTopicCodec(
    new SchemaRegistry(schemaRegistryOptions(endpoints, connector.name)),
    allTopics(topology).filter((t) => connector.outputs.includes(t.name)),
  );
  const kafka: Kafka = createKafka(endpoints, connector.name, log);

  // A send that failed may still have been written, and an idempotent producer that goes on after
  // that can mistake its next record for a duplicate of the lost one: a failure retires the
  // producer and the next send starts a fresh one (a new producer id).
  let producer: { readonly client: Producer; readonly ready: Promise<Producer> } | undefined;
  const connected = () => {
    if (!producer) {
      const client = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        // Bounded: an HTTP caller waits for the outcome; the timeout below bounds the whole send.
        retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
      });
      const ready = client.connect().then(() => client);
      ready.catch(() => undefined);
      producer = { client, ready };
    }
    return producer;
  };
  // Disconnected at once, connected or not: a producer still retrying its connect would otherwise
  // go on (and keep the process alive) for its whole retry budget.
  const retire = (failed: NonNullable<typeof producer>) => {
    if (producer !== failed) return;
    producer = undefined;
    void failed.client.disconnect().catch(() => undefined);
  };

  let ok = true;
  let probe: NodeJS.Timeout | undefined;
  // After a failure, health must come back without waiting for traffic: reconnect until Kafka answers.
  const probeUntilConnected = () => {
    if (probe) return;
    probe = setInterval(() => {
      const attempt = connected();
      attempt.ready.then(
        () => {
          ok = true;
          clearInterval(probe);
          probe = undefined;
        },
        () => retire(attempt),
      );
    }, 2_000);
    probe.unref();
  };

  const pending: Pending[] = [];
  let sending = false;

  // Requests that arrive while a send is under way form the next send, so under load the produce
  // requests grow by themselves and an idle connector still sends each record at once.
  const dispatch = async (): Promise<void> => {
    if (sending || pending.length === 0) return;
    sending = true;
    const batch = pending.splice(0, 1_000);
    const current = connected();
    let timer: NodeJS.Timeout | undefined;
    let refused = false;
    try {
      const byTopic = new Map<string, Message[]>();
      for (const { topic, message } of batch) byTopic.set(topic, [...(byTopic.get(topic) ?? []), message]);
      const send = current.ready.then((p) => {
        // A batch its callers were told was refused must not go out later, once a slow connect
        // succeeds: the source would send it again and Kafka would have it twice.
        if (refused) throw new Error("refused before the producer connected");
        return p.sendBatch({
          acks: -1,
          timeout: timeoutMs,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        });
      });
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          refused = true;
          reject(new Error(`no acknowledgement from Kafka within ${timeoutMs} ms`));
        }, timeoutMs);
      });
      await Promise.race([send, timeout]);
      ok = true;
      for (const p of batch) p.resolve();
    } catch (error) {
      ok = false;
      retire(current);
      probeUntilConnected();
      log.warn(
        { connector: connector.name, records: batch.length, err: errorMessage(error) },
        "Kafka did not acknowledge; records refused",
      );
      const unavailable = new IntakeUnavailableError(`Kafka is unavailable: ${errorMessage(error)}`, { cause: error });
      for (const p of batch) p.reject(unavailable);
    } finally {
      clearTimeout(timer);
      sending = false;
      void dispatch();
    }
  };

  // The declared output that carries a kind of record (in the triage topology the topic of that
  // name; a benchmark's or test's topology may name another).
  const outputs = allTopics(topology).filter((t) => connector.outputs.includes(t.name));
  const outputFor = (valueSchema: string): string => {
    const topic = outputs.find((t) => t.valueSchema === valueSchema)?.name;
    if (!topic) throw new Error(`connector ${connector.name} declares no output of ${valueSchema} records`);
    return topic;
  };

  const publish = (topic: string, key: string, value: unknown): Promise<void> => {
    const message: Message = { key, value: codec.encode(topic, value) };
    return new Promise<void>((resolve, reject) => {
      pending.push({ topic, message, resolve, reject });
      setImmediate(() => void dispatch());
    });
  };

  return {
    publishInquiry: (inquiry) => publish(outputFor("inquiries.received"), inquiry.inquiry_id, inquiry),
    publishFeedback: (record) => publish(outputFor("predictions.feedback"), record.inquiry_id, record),
    publishReply: (reply) => publish(outputFor("inquiries.replies"), reply.inquiry_id, reply),
    healthy: () => ok,
    async close() {
      clearInterval(probe);
      const current = producer;
      producer = undefined;
      if (current) await current.client.disconnect().catch(() => undefined);
    },
  };
}
