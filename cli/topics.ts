import type { Command } from "commander";
import type { Config } from "../config/settings.js";
import { resolveEndpoints } from "../stack/index.js";
import { createKafka } from "../streams/kafka.js";
import { createTopics } from "../streams/topics.js";
import { TOPOLOGIES, allTopics, withPartitions, type Topology } from "../streams/topology.js";
import type { CliContext } from "./context.js";

/** The topologies as this configuration makes them: the inquiry topics with SWITCHBOARD_INQUIRY_PARTITIONS partitions. */
export function configuredTopologies(config: Pick<Config, "inquiryPartitions">): Topology[] {
  return TOPOLOGIES.map((topology) => withPartitions(topology, config.inquiryPartitions));
}

export function topicCommands(program: Command, { config, log }: CliContext): void {
  const topics = program.command("topics").description("Kafka topics of the topology");
  topics
    .command("create")
    .description("create every declared topic and DLQ (idempotent)")
    .action(async () => {
      const kafka = createKafka(resolveEndpoints(config), "switchboard-cli", log);
      for (const topology of configuredTopologies(config)) {
        const created = await createTopics(kafka, topology, log);
        console.log(`${topology.name}: ${created.length} created, ${allTopics(topology).length - created.length} already present`);
      }
    });
  topics
    .command("list")
    .description("the declared topics with partitions, retention and schema")
    .action(() => {
      console.table(
        configuredTopologies(config).flatMap((topology) =>
          allTopics(topology).map((t) => ({
            topology: topology.name,
            topic: t.name,
            partitions: t.partitions,
            retention: t.retentionMs === "forever" ? "forever" : `${t.retentionMs / 86_400_000}d`,
            compacted: t.compacted,
            schema: t.valueSchema,
          })),
        ),
      );
    });
}
