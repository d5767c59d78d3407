import { randomUUID } from "node:crypto";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Command } from "commander";
import { schemaRegistryOptions } from "../config/security.js";
import type { ModelDrift, ModelLifecycle } from "../schemas/types.generated.js";
import { resolveEndpoints } from "../stack/index.js";
import { createTopicCodec } from "../streams/codec.js";
import { createKafka } from "../streams/kafka.js";
import { TRIAGE, findTopic } from "../streams/topology.js";
import type { CliContext } from "./context.js";

/** One line a drift record: when, which version, what moved and by how much. */
export function driftLine(d: ModelDrift): string {
  const what = d.severity === "info" ? "cleared" : `${d.severity.toUpperCase()} drift`;
  return `${new Date(d.detected_at).toISOString()}  ${d.model}  ${what} of ${d.feature}: ${d.statistic} ${d.value.toPrecision(4)} (threshold ${d.threshold.toPrecision(4)}, ${d.sample_size} rows)`;
}

/** One line a lifecycle record: the step, the stage after it, the figures that decided it. */
export function lifecycleLine(l: ModelLifecycle): string {
  const figures = Object.entries(l.metrics)
    .filter(([name]) => /accuracy|macro_f1|gain|confidence|latency|n$/.test(name) && !name.startsWith("policy"))
    .slice(0, 6)
    .map(([name, value]) => `${name} ${Number.isInteger(value) ? value : value.toFixed(4)}`)
    .join(", ");
  const lineage = l.lineage["trigger"] ? ` [${l.lineage["trigger"]}]` : "";
  return `${new Date(l.occurred_at).toISOString()}  ${l.model}  ${l.event.toUpperCase()}${l.stage ? ` -> ${l.stage}` : ""}${lineage}${l.reason ? `: ${l.reason}` : ""}${figures ? ` (${figures})` : ""}`;
}

/**
 * `switchboard watch [--from-beginning]`: the learning loop as it happens, one line per
 * `models.drift` and `models.lifecycle` record (drift raised and cleared; trained, evaluated,
 * shadow started, promoted, rejected, rolled back), until Ctrl-C. A consumer group of its own
 * that never commits: watching takes nothing from the processors.
 */
export function watchCommand(program: Command, { config, log }: CliContext): void {
  program
    .command("watch")
    .description("print drift events and model lifecycle steps (trained, evaluated, shadow started, promoted, rejected, rolled back) as they happen")
    .option("--from-beginning", "start with the records already on the topics", false)
    .action(async ({ fromBeginning }: { fromBeginning: boolean }) => {
      const endpoints = resolveEndpoints(config);
      const topics = [findTopic(TRIAGE, "models.drift"), findTopic(TRIAGE, "models.lifecycle")];
      const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints, "switchboard-watch")), topics);
      const consumer = createKafka(endpoints, "switchboard-watch", log).consumer({ groupId: `switchboard-watch-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 200 });
      await consumer.connect();
      for (const topic of topics) await consumer.subscribe({ topic: topic.name, fromBeginning });
      const stop = () => void consumer.disconnect().finally(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      console.log(`watching ${topics.map((t) => t.name).join(" and ")} (Ctrl-C to stop)`);
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ topic, message }) => {
          const value = await codec.decode(topic, message.value);
          console.log(topic === "models.drift" ? driftLine(value as ModelDrift) : lifecycleLine(value as ModelLifecycle));
        },
      });
      await new Promise<never>(() => undefined);
    });
}
