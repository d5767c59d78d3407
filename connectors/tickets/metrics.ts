import { Counter, type Registry } from "prom-client";
import { DESKS, SIGNATURE_FAILURES } from "./signatures.js";

/** The ticket webhooks' own metric, beside every connector's (requests, rejected by reason). */
export interface TicketMetrics {
  readonly events: Counter<"connector" | "desk" | "outcome" | "reason">;
}

/** `rejected`: the connector's refusals counter, whose signature reasons start at 0 too. */
export function createTicketMetrics(registry: Registry, connector = "api", rejected?: Counter<"connector" | "reason">): TicketMetrics {
  const events = new Counter({
    name: "switchboard_ticket_webhook_events_total",
    help: "Ticket webhook requests by desk and outcome (accepted, duplicate, ignored, refused) with its reason",
    labelNames: ["connector", "desk", "outcome", "reason"],
    registers: [registry],
  });
  // Signature failures at 0 per desk: the on-call view tells "none" from "not counted".
  for (const reason of SIGNATURE_FAILURES) {
    for (const desk of DESKS) events.inc({ connector, desk, outcome: "refused", reason }, 0);
    rejected?.inc({ connector, reason }, 0);
  }
  return { events };
}
