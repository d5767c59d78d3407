import { Counter, Gauge, Registry } from "prom-client";

/** What `route` adds to the runtime's metrics: the join's outcomes, the sweeper, and rule reloads. */
export interface RouteMetrics {
  readonly registry: Registry;
  /** Routed decisions handed to the runtime, by what completed the join (`complete` or `timeout`). */
  readonly routed: Counter<"trigger">;
  /** Parts that arrived after their inquiry was routed (e.g. a prediction slower than the timeout). */
  readonly lateParts: Counter<"part">;
  readonly timeoutsRequested: Counter;
  /** Joins deleted by the sweeper: `routed` a day after routing, `abandoned` when the cleaned inquiry never came. */
  readonly joinsCollected: Counter<"outcome">;
  /** Joins waiting for parts, as of the last sweep. */
  readonly openJoins: Gauge;
  readonly rulesReloads: Counter<"outcome">;
  /** Routed decisions sent to human review, by queue (the alert rules' review rate). */
  readonly reviews: Counter<"queue">;
  /** Routed decisions escalated, by the escalation rule's reason (the alert rules' escalation rate). */
  readonly escalations: Counter<"reason">;
}

export function createRouteMetrics(registry = new Registry()): RouteMetrics {
  const registers = [registry];
  return {
    registry,
    routed: new Counter({
      name: "switchboard_route_routed_total",
      help: "Routing decisions produced (including re-emissions after an aborted transaction), by what completed the join",
      labelNames: ["trigger"],
      registers,
    }),
    lateParts: new Counter({
      name: "switchboard_route_late_parts_total",
      help: "Parts that arrived after their inquiry was already routed",
      labelNames: ["part"],
      registers,
    }),
    timeoutsRequested: new Counter({
      name: "switchboard_route_timeouts_requested_total",
      help: "Timeout records the sweeper produced for joins still incomplete after the join timeout",
      registers,
    }),
    joinsCollected: new Counter({
      name: "switchboard_route_joins_collected_total",
      help: "Join states deleted by the sweeper, by outcome (routed, abandoned)",
      labelNames: ["outcome"],
      registers,
    }),
    openJoins: new Gauge({
      name: "switchboard_route_open_joins",
      help: "Joins waiting for parts, as of the last sweep",
      registers,
    }),
    rulesReloads: new Counter({
      name: "switchboard_route_rules_reloads_total",
      help: "Reloads of the routing rules file, by outcome (applied, refused)",
      labelNames: ["outcome"],
      registers,
    }),
    reviews: new Counter({
      name: "switchboard_route_reviews_total",
      help: "Routing decisions sent to human review (human_review), by queue; counted with switchboard_route_routed_total",
      labelNames: ["queue"],
      registers,
    }),
    escalations: new Counter({
      name: "switchboard_route_escalations_total",
      help: "Routing decisions escalated, by the escalation rule's reason; counted with switchboard_route_routed_total",
      labelNames: ["reason"],
      registers,
    }),
  };
}
