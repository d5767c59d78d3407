import { Client as Elasticsearch } from "@elastic/elasticsearch";
import { Redis } from "ioredis";
import type pg from "pg";
import type { Logger } from "pino";
import { elasticsearchOptions, redisOptions } from "../config/security.js";
import type { Config } from "../config/settings.js";
import { followProduction, openModelSlot, productionVersionDir, type LoadedModel, type ModelSlot, type Prediction } from "../models/index.js";
import type { Endpoints } from "../stack/index.js";
import { createPool, migrate } from "../storage/postgres.js";
import { errorMessage } from "./errors.js";

/** A registry model as processors serve it: the production version, hot-swapped when production changes. */
export interface ServedModel {
  readonly current: LoadedModel;
  readonly slot: ModelSlot;
  predict(text: string): Promise<Prediction>;
}

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
  /** The production version of a registry model, following production as it changes. */
  productionModel(name: string): Promise<ServedModel>;
  /**
   * Runs `task` every `intervalMs` (runs never overlap) until the host stops; a failed run is
   * logged and the next one comes at the next interval.
   */
  schedule(name: string, intervalMs: number, task: () => Promise<void>): ScheduledTask;
  close(): Promise<void>;
}

export interface ScheduledTask {
  /** One run now (after a run under way); rejects if it fails, where the timer's runs only log. */
  run(): Promise<void>;
  /** Stops the timer and waits for a run under way (the host does this for every timer when it stops). */
  stop(): Promise<void>;
}

export function createResources(config: Config, endpoints: Endpoints, log: Logger, applicationName: string): Resources {
  let pool: Promise<pg.Pool> | undefined;
  let redis: Promise<Redis> | undefined;
  let elasticsearch: Elasticsearch | undefined;
  const models = new Map<string, Promise<ServedModel>>();
  const releases: (() => Promise<void>)[] = [];
  const timers: { stop(): Promise<void> }[] = [];

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
          const slot = await openModelSlot(await productionVersionDir(db, name, config.modelsDir), log);
          const stopFollowing = followProduction(slot, db, name, config.modelsDir, config.modelPollMs, log);
          releases.push(async () => {
            stopFollowing();
            await slot.close();
          });
          log.info({ model: slot.current.name, version: slot.current.version }, "serving production model");
          return {
            slot,
            get current() {
              return slot.current;
            },
            predict: async (text: string) => {
              const [prediction] = await slot.predict([text]);
              if (!prediction) throw new Error(`${name}: the model returned no prediction`);
              return prediction;
            },
          };
        })();
        models.set(name, served);
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
