import os from "node:os";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Command } from "commander";
import { schemaRegistryOptions } from "../config/security.js";
import { RegistryReader } from "../retrain/registry.js";
import type { RetrainRequest } from "../schemas/types.generated.js";
import { resolveEndpoints } from "../stack/index.js";
import { createPool } from "../storage/postgres.js";
import { createTopicCodec } from "../streams/codec.js";
import { createKafka } from "../streams/kafka.js";
import { TRIAGE, findTopic } from "../streams/topology.js";
import { ReportedError, type CliContext } from "./context.js";

const TOPIC = "models.retrain";

/**
 * `switchboard retrain --model M [--reason TEXT]`: asks the `retrain` processor for a retraining
 * of M, as a models.retrain record (key: the model) acknowledged by every in-sync replica. The
 * processor coalesces it with a job of M already open; `switchboard models --decisions --model M`
 * and models.lifecycle show what came of it.
 */
export function retrainCommand(program: Command, { config, log }: CliContext): void {
  program
    .command("retrain")
    .description("ask the retrain processor to retrain a model (train with the labelled feedback, gate, shadow evaluation, promote or reject)")
    .requiredOption("--model <model>", "registry model: intent, category, sentiment, urgency, ...")
    .option("--reason <text>", "why, recorded in the new version's lineage", "requested with switchboard retrain")
    .action(async ({ model, reason }: { model: string; reason: string }) => {
      const endpoints = resolveEndpoints(config);
      const pool = createPool(endpoints, "switchboard-retrain");
      try {
        if (!(await new RegistryReader(pool, config.registrySchema).known(model))) {
          throw new ReportedError(`the registry (${config.registrySchema}) has no model ${model}: train it first (switchboard train --model ${model})`);
        }
      } finally {
        await pool.end();
      }
      const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints, "switchboard-retrain")), [findTopic(TRIAGE, TOPIC)]);
      const request: RetrainRequest = { model, reason, requested_by: os.userInfo().username, requested_at: Date.now() };
      const producer = createKafka(endpoints, "switchboard-retrain", log).producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      try {
        const [written] = await producer.send({ topic: TOPIC, acks: -1, messages: [{ key: model, value: codec.encode(TOPIC, request) }] });
        console.log(`retraining of ${model} requested (${TOPIC} partition ${written?.partition ?? "?"}, offset ${written?.baseOffset ?? "?"}): ${reason}`);
      } finally {
        await producer.disconnect();
      }
    });
}
