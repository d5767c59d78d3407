import { randomUUID } from "node:crypto";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { libpqDatabaseUrl, schemaRegistryOptions } from "../config/security.js";
import { ensurePythonEnv, pythonEnvOptions } from "../cli/python-env.js";
import { JobStore } from "../retrain/jobs.js";
import { JOB_STATES, createRetrainMetrics } from "../retrain/metrics.js";
import { parseModelVersion, RegistryReader } from "../retrain/registry.js";
import { createLifecycleRelay } from "../retrain/relay.js";
import { createJobRunner } from "../retrain/runner.js";
import { trainingCli } from "../retrain/training-cli.js";
import type { DriftSeverity, ModelDrift, RetrainRequest } from "../schemas/types.generated.js";
import { createTopicCodec } from "../streams/codec.js";
import { InvalidInputError } from "../streams/errors.js";
import { createKafka } from "../streams/kafka.js";
import type { InputRecord, ProcessorDependencies, ProcessorImplementation } from "../streams/processor.js";
import { findTopic, type ProcessorDeclaration } from "../streams/topology.js";

const SEVERITY_RANK: Readonly<Record<DriftSeverity, number>> = { info: 0, warning: 1, critical: 2 };

/**
 * `retrain`: records retraining requests (drift of enough severity about a production version,
 * `switchboard retrain`, and — from its own timer — enough new labels) in PostgreSQL and returns;
 * its job runner trains, has the gate judge, watches the shadow evaluation and promotes or
 * rejects, all through the training CLI; its lifecycle relay turns every registry decision into
 * a models.lifecycle record. Nothing it produces goes through the runtime's transactions: the
 * registry's outbox is the source of models.lifecycle (see retrain/relay.ts).
 */
export async function retrain(declaration: ProcessorDeclaration, deps: ProcessorDependencies): Promise<ProcessorImplementation> {
  const { config, endpoints, topology, resources } = deps;
  const log = deps.log.child({ component: "retrain" });
  const schemaOf = (topic: string) => findTopic(topology, topic).valueSchema;
  const lifecycleTopics = declaration.outputs.filter((t) => schemaOf(t) === "models.lifecycle");
  if (lifecycleTopics.length !== 1) throw new Error(`${declaration.name} needs exactly one output carrying models.lifecycle; it declares ${declaration.outputs.join(", ")}`);
  const lifecycleTopic = lifecycleTopics[0]!;
  for (const input of declaration.inputs) {
    if (!["models.drift", "models.retrain"].includes(schemaOf(input))) throw new Error(`${declaration.name} reads models.drift and models.retrain; ${input} carries ${schemaOf(input)}`);
  }

  const pool = await resources.postgres();
  const metrics = createRetrainMetrics();
  const registrySchema = config.registrySchema;
  const registry = new RegistryReader(pool, registrySchema);
  let python: Promise<string> | undefined;
  const cli = trainingCli(
    () =>
      (python ??= ensurePythonEnv({ ...pythonEnvOptions(config, log), quietWhenReady: true, write: (line) => log.info(line) }).then(
        (env) => env.python,
        (error: unknown) => {
          python = undefined;
          throw error;
        },
      )),
    {
      DATABASE_URL: libpqDatabaseUrl(endpoints.databaseUrl, config.postgresCaFile),
      SWITCHBOARD_MODELS_DIR: config.modelsDir,
      SWITCHBOARD_REGISTRY_SCHEMA: registrySchema,
      LOG_LEVEL: config.logLevel,
    },
    log,
  );
  // Every production model's job states at 0 (no job), so that a job's state is a change, not a new series.
  for (const { model } of await registry.productions()) for (const state of JOB_STATES) metrics.jobState.set({ model, state }, 0);
  const runner = createJobRunner({
    pool,
    store: new JobStore(pool, registrySchema),
    registry,
    cli,
    metrics,
    log,
    owner: `${config.instanceId}/${process.pid}/${randomUUID().slice(0, 8)}`,
    staleAfterMs: config.retrainStaleAfterMs,
    cooldownMs: config.retrainCooldownMs,
    maxSeconds: config.retrainMaxSeconds,
    maxMemoryMb: config.retrainMaxMemoryMb,
    limit: config.retrainLimit,
    newLabels: config.retrainNewLabels,
    shadow: {
      inquiries: config.retrainShadowInquiries,
      minLabelled: config.retrainShadowMinLabelled,
      maxConfidenceDrop: config.retrainShadowMaxConfidenceDrop,
      maxLatencyRatio: config.retrainShadowMaxLatencyRatio,
      timeoutMs: config.retrainShadowTimeoutMs,
    },
  });

  const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints, declaration.name)), [findTopic(topology, lifecycleTopic)]);
  const relay = createLifecycleRelay({ pool, registrySchema, kafka: createKafka(endpoints, `${declaration.name}-relay`, log), codec, topic: lifecycleTopic, metrics, log });
  const timers = [
    resources.schedule("lifecycle relay", config.lifecycleRelayPollMs, async () => void (await relay.run())),
    resources.schedule("retrain jobs", config.retrainPollMs, runner.tick),
    resources.schedule("retrain labels", config.retrainLabelCheckMs, runner.checkLabels),
  ];

  const requestId = (input: InputRecord) => `${input.topic}/${input.partition}/${input.offset}/${input.timestamp}`;
  const minSeverity = SEVERITY_RANK[config.retrainDriftSeverity];

  const onDrift = async (input: InputRecord<ModelDrift>) => {
    const drift = input.value;
    const named = parseModelVersion(drift.model);
    if (!named) throw new InvalidInputError(`drift record names model ${JSON.stringify(drift.model)}, not name@version`);
    if (SEVERITY_RANK[drift.severity] < minSeverity) {
      metrics.requests.inc({ model: named.model, trigger: "drift", result: "ignored" });
      return;
    }
    const production = await registry.inStage(named.model, "production");
    if (production?.version !== named.version) {
      // Drift of a version that no longer (or never) served says nothing about production.
      metrics.requests.inc({ model: named.model, trigger: "drift", result: "ignored" });
      log.info({ model: drift.model, production: production?.version ?? null, feature: drift.feature }, "drift of a version not in production: no retraining");
      return;
    }
    await runner.request({
      id: requestId(input),
      model: named.model,
      trigger: "drift",
      reason: `${drift.severity} drift of ${drift.feature} (${drift.statistic} ${drift.value.toPrecision(4)} vs threshold ${drift.threshold.toPrecision(4)}, ${drift.sample_size} rows)`,
      requestedBy: "drift",
      requestedAt: drift.detected_at,
      lineage: { trigger: "drift", drift: JSON.stringify(drift) },
    });
  };

  const onCommand = async (input: InputRecord<RetrainRequest>) => {
    const request = input.value;
    if (!(await registry.known(request.model))) throw new InvalidInputError(`retrain request for model ${JSON.stringify(request.model)}, which the registry (${registrySchema}) does not know`);
    await runner.request({
      id: requestId(input),
      model: request.model,
      trigger: "command",
      reason: request.reason,
      requestedBy: request.requested_by,
      requestedAt: request.requested_at,
      lineage: { trigger: "command", reason: request.reason, requested_by: request.requested_by },
    });
  };

  return {
    async process(input) {
      if (schemaOf(input.topic) === "models.drift") await onDrift(input as InputRecord<ModelDrift>);
      else await onCommand(input as InputRecord<RetrainRequest>);
      return [];
    },
    metrics: metrics.registry,
    async close() {
      // The runner first: a training under way goes back to the queue; then the relay's last pass and producer.
      await Promise.all(timers.slice(1).map((timer) => timer.stop()));
      await runner.stop();
      await timers[0]!.stop();
      await relay.close();
    },
  };
}
