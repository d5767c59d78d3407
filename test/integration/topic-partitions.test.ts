import { randomUUID } from "node:crypto";
import pino from "pino";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createKafka } from "../../streams/kafka.js";
import { createTopics } from "../../streams/topics.js";
import { TRIAGE, withPartitions, type TopicDeclaration, type Topology } from "../../streams/topology.js";
import { quietLog } from "../support/topics.js";

/** Warnings createTopics logs, to read what it said. */
function warnings(): { log: pino.Logger; messages: () => { topic?: string; partitions?: number; msg: string }[] } {
  const lines: string[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
  return {
    log,
    messages: () => lines.map((l) => JSON.parse(l) as { topic?: string; partitions?: number; msg: string }),
  };
}

describe("topics create and SWITCHBOARD_INQUIRY_PARTITIONS on a real broker", () => {
  const endpoints = inject("endpoints");
  const kafka = createKafka(endpoints, `topic-partitions-${randomUUID().slice(0, 8)}`, quietLog);
  const id = randomUUID().slice(0, 8);
  const keyed = (name: string): TopicDeclaration => ({
    name: `test.partitions.${id}.${name}`,
    description: name,
    partitions: 2,
    retentionMs: 3_600_000,
    compacted: false,
    valueSchema: "raw",
    coPartitioned: true,
  });
  const topology = (topics: TopicDeclaration[]): Topology => ({
    ...TRIAGE,
    name: `test-partitions-${id}`,
    topics,
    processors: [],
    connectors: [],
  });
  const [a, b, c] = [keyed("a"), keyed("b"), keyed("c")];

  afterAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`test.partitions.${id}.`));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
    await admin.disconnect();
  });

  async function partitionCounts(): Promise<Record<string, number>> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const existing = (await admin.listTopics()).filter((t) => t.startsWith(`test.partitions.${id}.`));
      const { topics } = await admin.fetchTopicMetadata({ topics: existing });
      return Object.fromEntries(topics.map((t) => [t.name.split(".").at(-1)!, t.partitions.length]));
    } finally {
      await admin.disconnect();
    }
  }

  it("leaves existing topics with fewer partitions as they are and says why; refuses a new one that would not co-partition", async () => {
    expect(await createTopics(kafka, topology([a, b]), quietLog)).toEqual([a.name, b.name]);

    // The setting raised to 4: nothing is repartitioned, each topic is reported.
    const raised = warnings();
    expect(await createTopics(kafka, withPartitions(topology([a, b]), 4), raised.log)).toEqual([]);
    expect(await partitionCounts()).toEqual({ a: 2, b: 2 });
    expect(raised.messages()).toEqual([
      expect.objectContaining({
        topic: a.name,
        partitions: 2,
        msg: expect.stringMatching(
          /has 2 partitions, fewer than SWITCHBOARD_INQUIRY_PARTITIONS=4; not increased: more partitions send keys to other partitions/,
        ),
      }),
      expect.objectContaining({ topic: b.name, partitions: 2 }),
    ]);

    // A third inquiry topic at 4 beside two at 2 would not co-partition: refused, nothing made.
    await expect(createTopics(kafka, withPartitions(topology([a, b, c]), 4), quietLog)).rejects.toThrow(
      `cannot create ${c.name} with 4 partitions: the existing inquiry topics have 2, and all must share one count; set SWITCHBOARD_INQUIRY_PARTITIONS=2`,
    );
    expect(await partitionCounts()).toEqual({ a: 2, b: 2 });

    // With the count the cluster has, it is made.
    expect(await createTopics(kafka, withPartitions(topology([a, b, c]), 2), quietLog)).toEqual([c.name]);
    expect(await partitionCounts()).toEqual({ a: 2, b: 2, c: 2 });
  });
});
