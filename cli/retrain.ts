import os from "node:os";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Command } from "commander";
import type { Logger } from "pino";
import { schemaRegistryOptions } from "../config/security.js";
import { RegistryReader } from "../retrain/registry.js";
import type { RetrainRequest } from "../schemas/types.generated.js";
import { resolveEndpoints, type Endpoints } from "../stack/index.js";
import { createPool } from "../storage/postgres.js";
import { createTopicCodec } from "../streams/codec.js";
import { createKafka } from "../streams/kafka.js";
import { TRIAGE, findTopic, type TopicDeclaration } from "../streams/topology.js";
import { ReportedError, type CliContext } from "./context.js";

/**
 * A retraining request as `switchboard retrain` makes it: refused unless the registry knows the
 * model, then a models.retrain record (key: the model) acknowledged by every in-sync replica.
 * `topic`: the triage topology's models.retrain unless a test names its own.
 */
export async function requestRetraining(
  endpoints: Endpoints,
  registrySchema: string,
  log: Logger,
  request: { readonly model: string; readonly reason: string; readonly requestedBy: string },
  topic: TopicDeclaration = findTopic(TRIAGE, "models.retrain"),
): Promise<{ partition: number; offset: string }> {
  const pool = createPool(endpoints, "switchboard-retrain");
  try {
    if (!(await new RegistryReader(pool, registrySchema).known(request.model))) {
      throw new ReportedError(`the registry (${registrySchema}) has no model ${request.model}: train it first (switchboard train --model ${request.model})`);
    }
  } finally {
    await pool.end();
  }
  const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints, "switchboard-retrain")), [topic]);
  const value: RetrainRequest = { model: request.model, reason: request.reason, requested_by: request.requestedBy, requested_at: Date.now() };
  const producer = createKafka(endpoints, "switchboard-retrain", log).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const [written] = await producer.send({ topic: topic.name, acks: -1, messages: [{ key: request.model, value: codec.encode(topic.name, value) }] });
    return { partition: written?.partition ?? 0, offset: written?.baseOffset ?? "?" };
  } finally {
    await producer.disconnect();
  }
}

/**
 * `switchboard retrain --model M [--reason TEXT]`: asks the `retrain` processor to retrain M. The
 * processor joins the request to a job of M already open; `switchboard models --decisions --model
 * M` and models.lifecycle show what came of it.
 */
export function retrainCommand(program: Command, { config, log }: CliContext): void {
  program
    .command("retrain")
    .description("ask the retrain processor to retrain a model (train with the labelled feedback, gate, shadow evaluation, promote or reject)")
    .requiredOption("--model <model>", "registry model: intent, category, sentiment, urgency, ...")
    .option("--reason <text>", "why, recorded in the new version's lineage", "requested with switchboard retrain")
    .action(async ({ model, reason }: { model: string; reason: string }) => {
      const written = await requestRetraining(resolveEndpoints(config), config.registrySchema, log, { model, reason, requestedBy: os.userInfo().username });
      console.log(`retraining of ${model} requested (models.retrain partition ${written.partition}, offset ${written.offset}): ${reason}`);
    });
}
