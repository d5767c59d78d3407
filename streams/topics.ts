import { setTimeout as sleep } from "node:timers/promises";
import type { Admin, Kafka } from "kafkajs";
import type { Logger } from "pino";
import { allTopics, type TopicDeclaration, type Topology } from "./topology.js";

function topicConfig(topic: TopicDeclaration): { name: string; value: string }[] {
  return [
    { name: "cleanup.policy", value: topic.compacted ? "compact" : "delete" },
    { name: "retention.ms", value: topic.retentionMs === "forever" ? "-1" : String(topic.retentionMs) },
  ];
}

/**
 * Creates every topic a topology declares (and its DLQs) with the declared partitions and
 * retention. Idempotent: existing topics are left as they are, and reported when their
 * partition count differs from the declaration.
 */
export async function createTopics(kafka: Kafka, topology: Topology, log: Logger, replicationFactor = 1): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = allTopics(topology);
    const missing = wanted.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      await admin.createTopics({
        // kafkajs's own leader wait fails on a burst of new topics; waitForLeaders below retries instead.
        waitForLeaders: false,
        topics: missing.map((t) => ({
          topic: t.name,
          numPartitions: t.partitions,
          replicationFactor,
          configEntries: topicConfig(t),
        })),
      });
    }
    await waitForLeaders(admin, missing.map((t) => t.name));
    const present = wanted.filter((t) => existing.has(t.name));
    if (present.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: present.map((t) => t.name) });
      for (const topic of metadata.topics) {
        const declared = present.find((t) => t.name === topic.name);
        if (declared && topic.partitions.length !== declared.partitions) {
          log.warn({ topic: topic.name, declared: declared.partitions, actual: topic.partitions.length }, "partition count differs from the topology");
        }
      }
    }
    for (const t of missing) log.info({ topic: t.name, partitions: t.partitions }, "topic created");
    return missing.map((t) => t.name);
  } finally {
    await admin.disconnect();
  }
}

/** Polls metadata until every partition of the new topics has a leader (30 s at most). */
async function waitForLeaders(admin: Admin, topics: readonly string[]): Promise<void> {
  if (topics.length === 0) return;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
      if (metadata.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`new topics have no leader after 30 s: ${(error as Error).message}`, { cause: error });
    }
    if (Date.now() > deadline) throw new Error(`new topics have no leader after 30 s: ${topics.join(", ")}`);
    await sleep(250);
  }
}
