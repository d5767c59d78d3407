import { Counter, Gauge, Registry } from "prom-client";
import type { RoutingRules } from "./rules.js";

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
  /** Routed decisions by the department and queue they were sent to (the dashboards' inquiries per queue). */
  readonly decisions: Counter<"department" | "queue">;
  /** Why decisions went to human review: each of a decision's review reasons (decision.ts) once. */
  readonly reviewReasons: Counter<"reason">;
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
    decisions: new Counter({
      name: "switchboard_route_decisions_total",
      help: "Routing decisions by department and queue; counted with switchboard_route_routed_total",
      labelNames: ["department", "queue"],
      registers,
    }),
    reviewReasons: new Counter({
      name: "switchboard_route_review_reasons_total",
      help: "Review reasons of the routing decisions sent to human review (one decision may have several: missing:<part>, out_of_scope, low_confidence:<task>, intent:<intent>, unsupported_language:<code>)",
      labelNames: ["reason"],
      registers,
    }),
  };
}

/**
 * Every series the rules can produce, at 0, so that a rate over them is 0 (not absent) until the
 * first join timeout, escalation or review of a queue: a dashboard panel or an alert then tells
 * "none" from "no such metric". Run again when reloaded rules name new departments or reasons.
 */
export function initialiseRouteSeries(metrics: RouteMetrics, rules: RoutingRules): void {
  for (const trigger of ["complete", "timeout"]) metrics.routed.inc({ trigger }, 0);
  for (const part of ["classified", "sentiment", "urgency"]) metrics.lateParts.inc({ part }, 0);
  for (const rule of rules.escalation) metrics.escalations.inc({ reason: rule.reason }, 0);
  const queues = new Map<string, Set<string>>();
  const add = (department: string, queue: string | undefined) => {
    if (queue) queues.set(department, (queues.get(department) ?? new Set()).add(queue));
  };
  for (const department of rules.departments.values()) {
    add(department.name, department.queue);
    add(department.name, department.escalationQueue);
  }
  for (const [department, names] of queues) {
    for (const queue of names) {
      metrics.decisions.inc({ department, queue }, 0);
      metrics.reviews.inc({ queue }, 0);
    }
  }
  for (const reason of ["out_of_scope", "low_confidence:intent", "low_confidence:sentiment", "low_confidence:urgency"]) metrics.reviewReasons.inc({ reason }, 0);
}
