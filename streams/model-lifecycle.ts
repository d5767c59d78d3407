import { randomUUID } from "node:crypto";
import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka } from "kafkajs";
import type { Logger } from "pino";
import type { ServedModel } from "../models/index.js";
import type { LifecycleEvent, ModelLifecycle } from "../schemas/types.generated.js";
import { createTopicCodec } from "./codec.js";
import { errorMessage } from "./errors.js";
import type { TopicDeclaration } from "./topology.js";

/** Events after which a model may have another production version (promoted, rolled_back) or shadow (shadow_started, promoted, rejected). */
const SERVING_EVENTS: ReadonlySet<LifecycleEvent> = new Set(["promoted", "rolled_back", "shadow_started", "rejected"]);

export interface LifecycleFollower {
  /** From now on, each of the model's serving lifecycle records makes it read the registry. */
  follow(model: ServedModel): void;
  stop(): Promise<void>;
}

export interface LifecycleFollowerOptions {
  readonly kafka: Kafka;
  readonly registry: SchemaRegistry;
  /** The models.lifecycle topic (a test's own, elsewhere). */
  readonly topic: TopicDeclaration;
  /** Names the consumer group (with a random suffix: each process reads every record). */
  readonly clientName: string;
  readonly log: Logger;
}

/**
 * One consumer of models.lifecycle per process, for every model it serves: a record of a served
 * model wakes it up to read the registry, which decides what to serve (so a record delivered
 * twice, or one about a version already served, changes nothing). Its group is its own and never
 * commits: it starts at the end of the topic, read_committed, and on joining refreshes every
 * model once, which covers what came before it joined (or while it was away). A record it cannot
 * decode refreshes every model.
 */
export async function followLifecycle(options: LifecycleFollowerOptions): Promise<LifecycleFollower> {
  const { topic, log } = options;
  const codec = await createTopicCodec(options.registry, [topic]);
  const followed = new Map<string, ServedModel>();
  const refreshAll = () => {
    for (const model of followed.values()) void model.refresh("lifecycle");
  };
  const consumer = options.kafka.consumer({
    groupId: `${options.clientName}.lifecycle.${randomUUID()}`,
    readUncommitted: false,
    maxWaitTimeInMs: 500,
    allowAutoTopicCreation: false,
  });
  consumer.on(consumer.events.GROUP_JOIN, () => {
    log.info({ topic: topic.name, models: [...followed.keys()] }, "following the model lifecycle");
    refreshAll();
  });
  consumer.on(consumer.events.CRASH, ({ payload }) =>
    log.warn({ topic: topic.name, error: errorMessage(payload.error), restart: payload.restart }, "model lifecycle consumer crashed; the registry poll still follows"),
  );

  try {
    await consumer.connect();
    await consumer.subscribe({ topic: topic.name, fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message, partition }) => {
        let record: ModelLifecycle;
        try {
          record = (await codec.decode(topic.name, message.value)) as ModelLifecycle;
        } catch (error) {
          log.warn({ topic: topic.name, partition, offset: message.offset, error: errorMessage(error) }, "unreadable model lifecycle record; every served model reads the registry");
          refreshAll();
          return;
        }
        if (!SERVING_EVENTS.has(record.event)) return;
        const model = followed.get(record.model.split("@")[0]!);
        if (!model) return;
        log.info({ model: record.model, event: record.event, stage: record.stage }, "model lifecycle record; reading the registry");
        // Not awaited: a model's refreshes queue on their own, and a slow load must not hold the consumer up.
        void model.refresh("lifecycle");
      },
    });
  } catch (error) {
    await consumer.disconnect().catch(() => undefined);
    throw new Error(`cannot follow the model lifecycle on ${topic.name}: ${errorMessage(error)}`, { cause: error });
  }

  return {
    follow(model) {
      followed.set(model.name, model);
    },
    async stop() {
      await consumer.disconnect();
    },
  };
}
