import { Counter, Histogram, type Registry } from "prom-client";

/** What the responder did, for the dashboards: replies by strategy, hand-offs by reason, LLM drafts refused, retrieval time. */
export interface RespondMetrics {
  readonly replies: Counter<"strategy">;
  readonly handOffs: Counter<"reason">;
  readonly guardrailRejections: Counter<"stage" | "check">;
  readonly llmFailures: Counter<"failure">;
  readonly retrievalSeconds: Histogram<"step">;
}

/** Registers the metrics once per registry (a second responder in the same process shares them). */
export function createRespondMetrics(registry: Registry): RespondMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    replies: counter("switchboard_respond_replies_total", "Replies drafted, by strategy", ["strategy"]),
    handOffs: counter("switchboard_respond_handoffs_total", "Inquiries handed to a person, by reason", ["reason"]),
    guardrailRejections: counter(
      "switchboard_respond_guardrail_rejections_total",
      "Refused by a guardrail, by stage (input: the LLM's input, output: the LLM's draft, reply: a template or retrieval reply) and check",
      ["stage", "check"],
    ),
    retrievalSeconds:
      (registry.getSingleMetric("switchboard_respond_retrieval_seconds") as Histogram<"step"> | undefined) ??
      new Histogram({
        name: "switchboard_respond_retrieval_seconds",
        help: "Time of each knowledge-base retrieval step: embed (the query's embedding), search (BM25 and kNN in one request)",
        labelNames: ["step"],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [registry],
      }),
    llmFailures: counter(
      "switchboard_respond_llm_failures_total",
      "LLM calls that failed (timeout, HTTP error, bad response)",
      ["failure"],
    ),
  };
}
