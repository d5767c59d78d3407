import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type pg from "pg";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Endpoints } from "../../stack/index.js";
import { APP_SCHEMA, createPool, migrate, syncToDisk } from "../../storage/postgres.js";
import { createTopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import { findTopic, type ProcessorDeclaration, type TopicDeclaration, type Topology } from "../../streams/topology.js";
import type { ProcessorDependencies } from "../../streams/processor.js";
import type { Resources } from "../../streams/resources.js";
import { PART_NAMES, type PartName } from "./join.js";
import { createRouteMetrics } from "./metrics.js";
import { createRouteProcess, type RouteTopics } from "./processor.js";
import { watchRules, type LiveRules } from "./rules-watch.js";
import { createMemoryJoinStore } from "./memory-store.js";
import { createJoinStore } from "./store.js";
import { startSweeper, type Sweeper } from "./sweeper.js";
import { schemaRegistryOptions } from "../../config/security.js";

/** route's implementation, with what an operator or a test may look at. */
export interface RouteImplementation extends ProcessorImplementation {
  /** route's own metrics (join outcomes, sweeper, rule reloads), beside the runtime's. */
  readonly metrics: Registry;
  readonly rules: LiveRules;
  /** Absent when chained: no join waits for a timeout there. */
  readonly sweeper?: Sweeper;
}

/** The part each input carries, by the input topic's schema (topic names may differ, e.g. in tests). */
const PART_OF_SCHEMA: Readonly<Record<string, PartName>> = {
  "inquiries.cleaned": "cleaned",
  "inquiries.classified": "classified",
  "inquiries.sentiment": "sentiment",
  "inquiries.urgency": "urgency",
  "route.timeouts": "timeout",
};

/** The topic of each part and of the routed output, from the processor's declaration; a missing or doubled part is an error. */
export function routeTopicsOf(declaration: ProcessorDeclaration, topology: Topology): RouteTopics {
  const parts = new Map<PartName, string>();
  for (const input of declaration.inputs) {
    const schema = findTopic(topology, input).valueSchema;
    const part = PART_OF_SCHEMA[schema];
    if (!part) throw new Error(`${declaration.name}: input ${input} (${schema}) is not a part route can join`);
    if (parts.has(part))
      throw new Error(`${declaration.name}: inputs ${parts.get(part)} and ${input} both carry the ${part} part`);
    parts.set(part, input);
  }
  const missing = PART_NAMES.filter((p) => !parts.has(p));
  if (missing.length > 0) throw new Error(`${declaration.name}: no input carries the ${missing.join(", ")} part(s)`);
  const routed = declaration.outputs.filter((o) => findTopic(topology, o).valueSchema === "inquiries.routed");
  if (routed.length !== 1 || declaration.outputs.length !== 1) {
    throw new Error(
      `${declaration.name}: route writes exactly one output, of inquiries.routed records (outputs: ${declaration.outputs.join(", ")})`,
    );
  }
  return { parts: Object.fromEntries(parts) as Record<PartName, string>, routed: routed[0]! };
}

/** The `route` processor of the topology it runs in: its join state lives in the application schema. */
export async function route(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
): Promise<RouteImplementation> {
  const { topology, config, endpoints, log } = deps;
  const topics = routeTopicsOf(declaration, topology);
  if (deps.chain) return chainedRoute(declaration.name, topics, config.routingRules, log);
  // One disk sync per transaction (flush) instead of one per stored part.
  const pool = createPool(endpoints, declaration.name, { deferDurability: true });
  try {
    await migrate(pool, log);
    return await startRoute({
      name: declaration.name,
      topics,
      timeoutTopic: findTopic(topology, topics.parts.timeout),
      pool,
      schema: APP_SCHEMA,
      rulesFile: config.routingRules,
      joinTimeoutMs: config.routeJoinTimeoutMs,
      endpoints,
      log,
      schedule: deps.resources.schedule,
    });
  } catch (error) {
    await pool.end();
    throw error;
  }
}

export interface RouteSetup {
  readonly name: string;
  readonly topics: RouteTopics;
  /** Declaration of the timeouts topic, for the sweeper's Avro codec. */
  readonly timeoutTopic: TopicDeclaration;
  /** Migrated pool; route ends it on close. */
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly rulesFile: string;
  readonly joinTimeoutMs: number;
  readonly endpoints: Endpoints;
  readonly log: Logger;
  readonly schedule: Resources["schedule"];
}

/** Loads the rules (a bad file stops the start), connects the sweeper's producer and starts the sweeper. */
export async function startRoute(setup: RouteSetup): Promise<RouteImplementation> {
  const { name, topics, pool, endpoints, joinTimeoutMs } = setup;
  const log = setup.log.child({ processor: name });
  const metrics = createRouteMetrics();
  const releases: (() => Promise<void>)[] = [() => pool.end()];
  // Released in reverse order of acquisition, once.
  const release = async () => {
    for (const step of releases.splice(0).reverse())
      await step().catch((error: Error) => log.warn({ error: error.message }, "route shutdown step failed"));
  };
  try {
    const rules = await watchRules(setup.rulesFile, { log, metrics });
    releases.push(async () => rules.close());

    const timeoutTopic = topics.parts.timeout;
    const codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints, name)), [
      setup.timeoutTopic,
    ]);
    const producer = createKafka(endpoints, `${name}-sweeper`, log).producer({
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    releases.push(() => producer.disconnect());

    const store = createJoinStore(pool, setup.schema);
    const sweeper = startSweeper({
      store,
      joinTimeoutMs,
      intervalMs: Math.max(100, Math.floor(joinTimeoutMs / 4)),
      send: async (timeouts) => {
        await producer.send({
          topic: timeoutTopic,
          messages: timeouts.map((t) => ({ key: t.inquiry_id, value: codec.encode(timeoutTopic, t) })),
        });
      },
      metrics,
      log,
      schedule: setup.schedule,
    });
    releases.push(() => sweeper.stop());

    return {
      process: createRouteProcess({ topics, store, rules: rules.current, metrics }),
      // The parts stored for this transaction are on disk before Kafka commits their offsets.
      flush: () => syncToDisk(pool),
      metrics: metrics.registry,
      rules,
      sweeper,
      close: release,
    };
  } catch (error) {
    await release();
    throw error;
  }
}

/**
 * route in a chain: the cleaned inquiry and its three predictions arrive in the transaction of
 * the received record that caused them, so the join is held in memory for the length of that
 * work. A prediction refused on the way (its input in the DLQ) leaves the join undecided when
 * the chain is done with the input: route then routes with what is known, as a timeout would
 * when run alone, at once instead of after the join timeout.
 */
async function chainedRoute(name: string, topics: RouteTopics, rulesFile: string, parentLog: Logger): Promise<RouteImplementation> {
  const log = parentLog.child({ processor: name });
  const metrics = createRouteMetrics();
  const rules = await watchRules(rulesFile, { log, metrics });
  const store = createMemoryJoinStore();
  const process = createRouteProcess({ topics, store, rules: rules.current, metrics });
  return {
    process,
    async afterInput(input, context) {
      const inquiryId = (input.value as { inquiry_id?: unknown }).inquiry_id;
      if (typeof inquiryId !== "string") return [];
      const open = store.undecided(inquiryId);
      try {
        if (!open?.cleaned) return [];
        const now = Date.now();
        const timeout = { inquiry_id: inquiryId, first_seen_at: now, timed_out_at: now };
        return await process({ ...input, topic: topics.parts.timeout, key: inquiryId, value: timeout }, context);
      } finally {
        store.forget(inquiryId);
      }
    },
    metrics: metrics.registry,
    rules,
    close: async () => rules.close(),
  };
}
