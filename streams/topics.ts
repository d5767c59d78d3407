import { setTimeout as sleep } from "node:timers/promises";
import type { Admin, Kafka } from "kafkajs";
import type { Logger } from "pino";
import { SETTINGS } from "../config/settings.js";
import { allTopics, type TopicDeclaration, type Topology } from "./topology.js";

function topicConfig(topic: TopicDeclaration): { name: string; value: string }[] {
  return [
    { name: "cleanup.policy", value: topic.compacted ? "compact" : "delete" },
    { name: "retention.ms", value: topic.retentionMs === "forever" ? "-1" : String(topic.retentionMs) },
  ];
}

/**
 * Why the co-partitioned topics (one inquiry's records meet in one partition number across them)
 * would not be co-partitioned: existing ones that disagree, or missing ones that would be made
 * with a count the existing ones do not have. Undefined when they are fine.
 */
export function coPartitioningProblem(wanted: readonly TopicDeclaration[], actual: ReadonlyMap<string, number>): string | undefined {
  const setting = SETTINGS.inquiryPartitions.env;
  const keyed = wanted.filter((t) => t.coPartitioned);
  const existing = keyed.flatMap((t) => (actual.has(t.name) ? [{ name: t.name, partitions: actual.get(t.name)! }] : []));
  const counts = new Set(existing.map((t) => t.partitions));
  if (counts.size > 1) {
    return `the inquiry topics have different partition counts (${existing.map((t) => `${t.name}: ${t.partitions}`).join(", ")}), so one inquiry's records are in different partitions and joins miss them; bring them to one count by hand`;
  }
  const missing = keyed.filter((t) => !actual.has(t.name));
  const [count] = counts;
  const configured = missing[0]?.partitions;
  if (count !== undefined && configured !== undefined && configured !== count) {
    return `cannot create ${missing.map((t) => t.name).join(", ")} with ${configured} partitions: the existing inquiry topics have ${count}, and all must share one count; set ${setting}=${count}`;
  }
  return undefined;
}

/**
 * Creates every topic a topology declares (and its DLQs) with the declared partitions and
 * retention. Idempotent: existing topics are left as they are, and reported when their
 * partition count differs from the declaration; never repartitioned, since more partitions send
 * a key elsewhere. Throws, creating nothing, when the result would not be co-partitioned.
 */
export async function createTopics(kafka: Kafka, topology: Topology, log: Logger, replicationFactor = 1): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = allTopics(topology);
    const present = wanted.filter((t) => existing.has(t.name));
    const actual = new Map<string, number>();
    if (present.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: present.map((t) => t.name) });
      for (const topic of metadata.topics) actual.set(topic.name, topic.partitions.length);
    }
    const problem = coPartitioningProblem(wanted, actual);
    if (problem) throw new Error(`${topology.name} topics: ${problem}`);
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
    for (const declared of present) {
      const partitions = actual.get(declared.name);
      if (partitions === undefined || partitions === declared.partitions) continue;
      log.warn({ topic: declared.name, partitions, configured: declared.partitions }, partitionMismatch(declared, partitions));
    }
    for (const t of missing) log.info({ topic: t.name, partitions: t.partitions }, "topic created");
    return missing.map((t) => t.name);
  } finally {
    await admin.disconnect();
  }
}

function partitionMismatch(declared: TopicDeclaration, partitions: number): string {
  const what = declared.coPartitioned ? `${SETTINGS.inquiryPartitions.env}=${declared.partitions}` : `the topology's ${declared.partitions}`;
  if (partitions < declared.partitions) {
    return `${declared.name} has ${partitions} partitions, fewer than ${what}; not increased: more partitions send keys to other partitions (an inquiry's records already written would no longer meet the rest), so that is done by hand, with the pipeline drained, for every inquiry topic at once`;
  }
  return `${declared.name} has ${partitions} partitions, more than ${what}; a topic's partitions cannot be reduced${declared.coPartitioned ? `: set ${SETTINGS.inquiryPartitions.env}=${partitions}` : ""}`;
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
