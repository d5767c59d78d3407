import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The runtime's Prometheus metrics; the dashboards and alert rules are written against these names. */
export interface RuntimeMetrics {
  readonly recordsIn: Counter<"processor" | "topic">;
  readonly recordsOut: Counter<"processor" | "topic">;
  readonly dlqRecords: Counter<"processor" | "topic" | "error_class">;
  readonly errors: Counter<"processor" | "error_class">;
  readonly retries: Counter<"processor">;
  readonly transactions: Counter<"processor" | "outcome">;
  readonly transactionPhaseSeconds: Histogram<"processor" | "phase">;
  readonly processingSeconds: Histogram<"processor">;
  readonly recordAgeSeconds: Histogram<"processor" | "topic">;
  readonly consumerLag: Gauge<"processor" | "topic" | "partition">;
  /** Kafka as the task's clients see it (the broker exports nothing itself here): each request's round trip. */
  readonly kafkaRequestSeconds: Histogram<"processor" | "client" | "broker" | "api">;
  readonly kafkaRequestTimeouts: Counter<"processor" | "client" | "broker">;
  /** The consumer's group joins (a rebalance each, the first included) and its crashes. */
  readonly consumerGroupJoins: Counter<"processor">;
  readonly consumerCrashes: Counter<"processor">;
}

export function createRuntimeMetrics(registry: Registry): RuntimeMetrics {
  const registers = [registry];
  return {
    recordsIn: new Counter({
      name: "switchboard_records_in_total",
      help: "Records consumed by a processor",
      labelNames: ["processor", "topic"],
      registers,
    }),
    recordsOut: new Counter({
      name: "switchboard_records_out_total",
      help: "Records produced by a processor (committed transactions only)",
      labelNames: ["processor", "topic"],
      registers,
    }),
    dlqRecords: new Counter({
      name: "switchboard_dlq_records_total",
      help: "Input records sent to a DLQ, by the error that sent them",
      labelNames: ["processor", "topic", "error_class"],
      registers,
    }),
    errors: new Counter({
      name: "switchboard_errors_total",
      help: "Errors while processing, by class (retried or not)",
      labelNames: ["processor", "error_class"],
      registers,
    }),
    retries: new Counter({
      name: "switchboard_retries_total",
      help: "Retries of records after a transient error",
      labelNames: ["processor"],
      registers,
    }),
    transactions: new Counter({
      name: "switchboard_transactions_total",
      help: "Kafka transactions by outcome (commit or abort)",
      labelNames: ["processor", "outcome"],
      registers,
    }),
    transactionPhaseSeconds: new Histogram({
      name: "switchboard_transaction_phase_seconds",
      help: "Time of each step of committing a transaction: flush (sinks), begin, produce, offsets, membership (still in the group), commit",
      labelNames: ["processor", "phase"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    processingSeconds: new Histogram({
      name: "switchboard_processing_seconds",
      help: "Time from decoding a record to having its outputs encoded",
      labelNames: ["processor"],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    recordAgeSeconds: new Histogram({
      name: "switchboard_record_age_seconds",
      help: "Age of a record (now minus its Kafka timestamp) when its transaction commits",
      labelNames: ["processor", "topic"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    consumerLag: new Gauge({
      name: "switchboard_consumer_lag",
      help: "Records of a partition the task holds that its group has not committed yet (the last stable offset minus the committed offset), measured every 5 s apart from processing (streams/lag.ts)",
      labelNames: ["processor", "topic", "partition"],
      registers,
    }),
    kafkaRequestSeconds: new Histogram({
      name: "switchboard_kafka_request_seconds",
      help: "Round trip of the task's Kafka requests (kafkajs REQUEST events), by client (producer, consumer), broker and API",
      labelNames: ["processor", "client", "broker", "api"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    kafkaRequestTimeouts: new Counter({
      name: "switchboard_kafka_request_timeouts_total",
      help: "Kafka requests of the task's clients that timed out, by client and broker",
      labelNames: ["processor", "client", "broker"],
      registers,
    }),
    consumerGroupJoins: new Counter({
      name: "switchboard_kafka_group_joins_total",
      help: "Times the task's consumer joined its group (the first join and every rebalance)",
      labelNames: ["processor"],
      registers,
    }),
    consumerCrashes: new Counter({
      name: "switchboard_kafka_consumer_crashes_total",
      help: "Crashes of the task's consumer (kafkajs CRASH events; restarted by kafkajs or by the runtime)",
      labelNames: ["processor"],
      registers,
    }),
  };
}
