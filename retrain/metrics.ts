import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { LifecycleEventValues } from "../schemas/types.generated.js";

/** `retrain`'s own metrics, served on its /metrics beside the runtime's. */
export interface RetrainMetrics {
  readonly registry: Registry;
  readonly requests: Counter<"model" | "trigger" | "result">;
  readonly jobs: Counter<"model" | "outcome">;
  readonly jobSeconds: Histogram<"model" | "outcome">;
  readonly trainingSeconds: Histogram<"model" | "result">;
  readonly jobState: Gauge<"model" | "state">;
  readonly shadowComparisons: Counter<"model" | "verdict">;
  readonly shadowFigure: Gauge<"model" | "figure">;
  readonly relayed: Counter<"event">;
  readonly relayPending: Gauge;
  readonly relayLagSeconds: Gauge;
}

export const JOB_STATES = ["queued", "training", "shadow"] as const;

export function createRetrainMetrics(): RetrainMetrics {
  const registry = new Registry();
  const registers = [registry];
  const metrics: RetrainMetrics = {
    registry,
    requests: new Counter({
      name: "switchboard_retrain_requests_total",
      help: "Retraining requests by trigger (drift, labels, command) and what became of them: queued (a new job), joined (an open job of the model), duplicate, ignored (drift below the severity, or not about production)",
      labelNames: ["model", "trigger", "result"],
      registers,
    }),
    jobs: new Counter({
      name: "switchboard_retrain_jobs_total",
      help: "Retraining jobs ended, by outcome: promoted, rejected (by the gate or the shadow evaluation), failed",
      labelNames: ["model", "outcome"],
      registers,
    }),
    jobSeconds: new Histogram({
      name: "switchboard_retrain_job_seconds",
      help: "Time from a job's start to its end (training, then the shadow evaluation)",
      labelNames: ["model", "outcome"],
      buckets: [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400, 3 * 86_400, 7 * 86_400],
      registers,
    }),
    trainingSeconds: new Histogram({
      name: "switchboard_retrain_training_seconds",
      help: "Wall time of one training run (python -m training train), by result: shadow_started, promoted, rejected, failed",
      labelNames: ["model", "result"],
      buckets: [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
      registers,
    }),
    jobState: new Gauge({
      name: "switchboard_retrain_job_state",
      help: "1 for the state of the model's open job this process runs (queued, training, shadow), else 0",
      labelNames: ["model", "state"],
      registers,
    }),
    shadowComparisons: new Counter({
      name: "switchboard_retrain_shadow_comparisons_total",
      help: "Shadow evaluations made, by verdict: wait (too few inquiries or labels yet), promote, reject",
      labelNames: ["model", "verdict"],
      registers,
    }),
    shadowFigure: new Gauge({
      name: "switchboard_retrain_shadow_figure",
      help: "The latest shadow comparison's figures (shadow_scored, shadow_labelled, shadow_accuracy, production_accuracy, mean confidences, latency p95s)",
      labelNames: ["model", "figure"],
      registers,
    }),
    relayed: new Counter({
      name: "switchboard_lifecycle_relayed_total",
      help: "Registry decisions produced to models.lifecycle, by event",
      labelNames: ["event"],
      registers,
    }),
    relayPending: new Gauge({
      name: "switchboard_lifecycle_relay_pending",
      help: "Registry decisions not yet on models.lifecycle",
      registers,
    }),
    relayLagSeconds: new Gauge({
      name: "switchboard_lifecycle_relay_lag_seconds",
      help: "Age of the oldest registry decision not yet on models.lifecycle (0 when none waits)",
      registers,
    }),
  };
  // Every lifecycle event at 0: a dashboard annotation is an increase, and none is 0, not absent.
  for (const event of LifecycleEventValues) metrics.relayed.inc({ event }, 0);
  return metrics;
}
