import type { Logger } from "pino";
import type { RouteTimeout } from "../../schemas/types.generated.js";
import type { Resources } from "../../streams/resources.js";
import type { RouteMetrics } from "./metrics.js";
import type { JoinStore } from "./store.js";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * A routed join's state is kept a day: long past any redelivery of its parts (an aborted
 * transaction is retried within seconds), so a redelivered part always finds its join decided.
 */
export const DECIDED_RETENTION_MS = DAY_MS;
/** The inquiry topics' retention: a join still waiting for its cleaned inquiry after this never gets it. */
export const ABANDON_AFTER_MS = 7 * DAY_MS;
/** Per sweep, so one sweep stays short even after an outage left many joins overdue. */
const BATCH = 1_000;

export interface SweeperOptions {
  readonly store: JoinStore;
  readonly joinTimeoutMs: number;
  readonly intervalMs: number;
  /** Produces the timeout records (to route.timeouts); must resolve only once they are durably written. */
  readonly send: (timeouts: readonly RouteTimeout[]) => Promise<void>;
  readonly metrics: RouteMetrics;
  readonly log: Logger;
  /** The host's timers (streams/resources.ts): sweeps never overlap, a failed one is logged and the next comes. */
  readonly schedule: Resources["schedule"];
  readonly now?: () => number;
}

export interface Sweeper {
  /** One sweep now; rejects if it fails (the timer's sweeps only log). */
  sweep(): Promise<void>;
  /** Stops the timer and waits for a sweep in flight. */
  stop(): Promise<void>;
}

/**
 * Times out joins and collects old state. A join incomplete after the join timeout gets a
 * route.timeouts record, which comes back to route as an input and routes the inquiry inside a
 * Kafka transaction like any other part; a duplicate timeout record is harmless, as parts are
 * stored once. Each instance sweeps; the store hands each join to one sweeper. Timeouts are
 * requested from one join timeout after the start on.
 */
export function startSweeper({
  store,
  joinTimeoutMs,
  intervalMs,
  send,
  metrics,
  log,
  schedule,
  now = Date.now,
}: SweeperOptions): Sweeper {
  // A restarted route first consumes the backlog that piled up while it was away; joins seen
  // before the restart get a full timeout to complete from it before they are timed out.
  const timeoutsFrom = now() + joinTimeoutMs;

  const requestTimeouts = async () => {
    let requested: number;
    do {
      requested = await store.requestTimeouts(joinTimeoutMs, BATCH, (joins) =>
        send(joins.map((j) => ({ inquiry_id: j.inquiryId, first_seen_at: j.firstSeenAt, timed_out_at: now() }))),
      );
      if (requested > 0) log.info({ count: requested }, "join timeouts requested");
      metrics.timeoutsRequested.inc(requested);
    } while (requested === BATCH);
  };

  const collect = async () => {
    metrics.joinsCollected.inc({ outcome: "routed" }, await store.collectDecided(DECIDED_RETENTION_MS, 10 * BATCH));
    const abandoned = await store.collectAbandoned(ABANDON_AFTER_MS, BATCH);
    if (abandoned.length > 0) {
      metrics.joinsCollected.inc({ outcome: "abandoned" }, abandoned.length);
      log.warn(
        { count: abandoned.length, inquiryIds: abandoned.slice(0, 20) },
        "joins abandoned: their cleaned inquiry never reached route; they were not routed",
      );
    }
  };

  const sweep = async () => {
    if (now() >= timeoutsFrom) await requestTimeouts();
    await collect();
    metrics.openJoins.set(await store.countUndecided());
  };

  const timer = schedule("route sweeper", intervalMs, sweep);
  return { sweep: timer.run, stop: timer.stop };
}
