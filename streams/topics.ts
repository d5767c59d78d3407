import type { Kafka } from "kafkajs";
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
        waitForLeaders: true,
        topics: missing.map((t) => ({
          topic: t.name,
          numPartitions: t.partitions,
          replicationFactor,
          configEntries: topicConfig(t),
        })),
      });
    }
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
