import { Redis } from "ioredis";
import type { Logger } from "pino";
import { redisOptions, type ClientSecurity } from "../config/security.js";

/**
 * A connector's Redis client. Commands fail at once while Redis is away (no offline queue): the
 * caller answers 503 or tries the input again later instead of queueing it in memory; ioredis
 * reconnects by itself. The outage and the recovery are logged once each, saying what `whileDown`
 * costs the connector's users.
 */
export function connectorRedis(
  endpoint: { readonly redisUrl: string; readonly security: ClientSecurity },
  log: Logger,
  options: { commandTimeoutMs: number; whileDown: string },
): Redis {
  const redis = new Redis(endpoint.redisUrl, {
    ...redisOptions(endpoint),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs,
  });
  let down = false;
  redis.on("error", (error: Error) => {
    if (!down) log.warn({ err: error.message }, `redis unavailable; ${options.whileDown} until it is back`);
    down = true;
  });
  redis.on("ready", () => {
    if (down) log.info("redis available again");
    down = false;
  });
  return redis;
}
