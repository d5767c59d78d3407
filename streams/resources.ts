import { Client as Elasticsearch } from "@elastic/elasticsearch";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { Redis } from "ioredis";
import type pg from "pg";
import type { Logger } from "pino";
import { Registry } from "prom-client";
import { elasticsearchOptions, redisOptions, schemaRegistryOptions } from "../config/security.js";
import type { Config } from "../config/settings.js";
import { createServingMetrics, openServedModel, type ServedModel } from "../models/index.js";
import type { Endpoints } from "../stack/index.js";
import { createPool, migrate } from "../storage/postgres.js";
import type { Dependency, Probe } from "./dependencies.js";
import { elasticsearchProbe, postgresProbe, redisProbe } from "./dependency-probes.js";
import { errorMessage } from "./errors.js";
import { createKafka } from "./kafka.js";
import { followLifecycle, type LifecycleFollower } from "./model-lifecycle.js";
import { findTopic, TRIAGE, type TopicDeclaration } from "./topology.js";

export type { ServedAnswer, ServedModel, ServedPrediction } from "../models/index.js";

/**
 * What a processor uses beyond Kafka, made by the host once per process and shared by every
 * processor it runs (a chain's members share one PostgreSQL pool, one Redis client and one copy
 * of each model), opened on first use and closed by the host after the processors.
 */
export interface Resources {
  /** The application's PostgreSQL, migrated. */
  postgres(): Promise<pg.Pool>;
  /**
   * Redis for signals a processor can do without: commands fail at once while Redis is away
   * (no offline queue), so the caller skips the signal instead of holding the record.
   */
  redis(): Promise<Redis>;
  elasticsearch(): Elasticsearch;
  /**
   * A registry model's production version, and its shadow version beside it when there is one,
   * both following the registry: woken by models.lifecycle (one consumer per process), polled
   * every SWITCHBOARD_MODEL_POLL_MS as the fallback.
   */
  productionModel(name: string): Promise<ServedModel>;
  /**
   * Runs `task` every `intervalMs` (runs never overlap) until the host stops; a failed run is
   * logged and the next one comes at the next interval.
   */
  schedule(name: string, intervalMs: number, task: () => Promise<void>): ScheduledTask;
  /** A check of each service the processors have opened so far (the host's dependency gauges). */
  probes(): Map<Dependency, Probe>;
  /** The served models' metrics (swaps, refusals, shadow predictions), which the host serves. */
  readonly metrics: Registry;
  close(): Promise<void>;
}

export interface ResourceOptions {
  /** The topic lifecycle records are read from (default: the triage topology's models.lifecycle). */
  readonly lifecycleTopic?: TopicDeclaration;
}

export interface ScheduledTask {
  /** One run now (after a run under way); rejects if it fails, where the timer's runs only log. */
  run(): Promise<void>;
  /** Stops the timer and waits for a run under way (the host does this for every timer when it stops). */
  stop(): Promise<void>;
}

export function createResources(
  config: Config,
  endpoints: Endpoints,
  log: Logger,
  applicationName: string,
  options: ResourceOptions = {},
): Resources {
  let pool: Promise<pg.Pool> | undefined;
  let lifecycle: Promise<LifecycleFollower> | undefined;
  const metrics = new Registry();
  const servingMetrics = createServingMetrics(metrics);
  let redis: Promise<Redis> | undefined;
  let elasticsearch: Elasticsearch | undefined;
  const models = new Map<string, Promise<ServedModel>>();
  const releases: (() => Promise<void>)[] = [];
  const timers: { stop(): Promise<void> }[] = [];

  /** The process's one lifecycle consumer, started with its first served model. */
  const following = (): Promise<LifecycleFollower> => {
    lifecycle ??= (async () => {
      const follower = await followLifecycle({
        kafka: createKafka(endpoints, `${applicationName}-lifecycle`, log),
        registry: new SchemaRegistry(schemaRegistryOptions(endpoints, applicationName)),
        topic: options.lifecycleTopic ?? findTopic(TRIAGE, "models.lifecycle"),
        clientName: applicationName,
        log,
      });
      releases.push(() => follower.stop());
      return follower;
    })();
    return lifecycle;
  };

  const resources: Resources = {
    postgres() {
      pool ??= (async () => {
        const created = createPool(endpoints, applicationName);
        releases.push(() => created.end());
        await migrate(created, log);
        return created;
      })();
      return pool;
    },

    redis() {
      redis ??= (async () => {
        const client = new Redis(endpoints.redisUrl, {
          ...redisOptions(endpoints),
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          commandTimeout: 1000,
          lazyConnect: true,
        });
        client.on("error", (error: Error) => log.warn({ error: error.message }, "redis unavailable"));
        releases.push(async () => void client.disconnect());
        await client.connect();
        return client;
      })();
      return redis;
    },

    elasticsearch() {
      if (!elasticsearch) {
        const client = new Elasticsearch(elasticsearchOptions(endpoints));
        releases.push(() => client.close());
        elasticsearch = client;
      }
      return elasticsearch;
    },

    productionModel(name) {
      let served = models.get(name);
      if (!served) {
        served = (async () => {
          const db = await resources.postgres();
          const model = await openServedModel(db, name, {
            modelsDir: config.modelsDir,
            pollMs: config.modelPollMs,
            schema: config.registrySchema,
            metrics: servingMetrics,
            log,
          });
          releases.push(() => model.close());
          (await following()).follow(model);
          log.info({ model: name, version: model.current.version, shadow: model.shadow?.version ?? null }, "serving production model");
          return model;
        })();
        models.set(name, served);
        // A model not in production yet (or the registry away) is looked up again on the next call.
        served.catch(() => models.delete(name));
      }
      return served;
    },

    schedule(name, intervalMs, task) {
      let last: Promise<void> = Promise.resolve();
      const run = () => {
        last = last.catch(() => undefined).then(task);
        return last;
      };
      let stopped = false;
      let timer: NodeJS.Timeout | undefined;
      const next = () => {
        if (stopped) return;
        timer = setTimeout(() => {
          run()
            .catch((error: unknown) => log.warn({ timer: name, error: errorMessage(error) }, "scheduled run failed; retrying at the next interval"))
            .finally(next);
        }, intervalMs);
        timer.unref();
      };
      next();
      const scheduled: ScheduledTask = {
        run,
        async stop() {
          stopped = true;
          clearTimeout(timer);
          await last.catch(() => undefined);
        },
      };
      timers.push(scheduled);
      return scheduled;
    },

    probes() {
      const probes = new Map<Dependency, Probe>();
      if (pool) probes.set("postgres", postgresProbe(pool));
      if (redis) probes.set("redis", redisProbe(redis));
      if (elasticsearch) probes.set("elasticsearch", elasticsearchProbe(elasticsearch));
      return probes;
    },

    metrics,

    async close() {
      for (const timer of timers.splice(0)) await timer.stop();
      // Models before the pool they follow production through; each step once, in reverse order of opening.
      for (const release of releases.splice(0).reverse()) {
        await release().catch((error: unknown) => log.warn({ error: errorMessage(error) }, "releasing a resource failed"));
      }
    },
  };
  return resources;
}
