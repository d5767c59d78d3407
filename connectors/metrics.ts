import { Counter, Histogram, type Registry } from "prom-client";

/** Every connector's Prometheus metrics; the dashboards and alert rules are written against these names. */
export interface ConnectorMetrics {
  readonly requests: Counter<"connector" | "route" | "status">;
  readonly requestSeconds: Histogram<"connector" | "route">;
  /** Records Kafka acknowledged: inquiries and labels. */
  readonly accepted: Counter<"connector" | "kind">;
  /** Input refused, by a short machine-readable reason (bad_signature, too_large, invalid_utf8, ...). */
  readonly rejected: Counter<"connector" | "reason">;
}

export function createConnectorMetrics(registry: Registry): ConnectorMetrics {
  const registers = [registry];
  return {
    requests: new Counter({
      name: "switchboard_connector_requests_total",
      help: "Requests a connector answered, by route and HTTP status",
      labelNames: ["connector", "route", "status"],
      registers,
    }),
    requestSeconds: new Histogram({
      name: "switchboard_connector_request_seconds",
      help: "Time from receiving a request to answering it",
      labelNames: ["connector", "route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    accepted: new Counter({
      name: "switchboard_connector_accepted_total",
      help: "Records a connector handed to Kafka and Kafka acknowledged, by kind (inquiry, label, rating)",
      labelNames: ["connector", "kind"],
      registers,
    }),
    rejected: new Counter({
      name: "switchboard_connector_rejected_total",
      help: "Inputs a connector refused, by reason",
      labelNames: ["connector", "reason"],
      registers,
    }),
  };
}
