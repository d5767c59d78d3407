import type {
  InquiryClassified,
  InquiryCleaned,
  InquiryRouted,
  InquirySentiment,
  InquiryUrgency,
  RouteTimeout,
} from "../../schemas/types.generated.js";
import { InvalidInputError } from "../../streams/errors.js";
import type { OutputRecord, Process } from "../../streams/processor.js";
import { decideRoute, type JoinedInquiry } from "./decision.js";
import { judge, type PartName, type Prediction } from "./join.js";
import { initialiseRouteSeries, type RouteMetrics } from "./metrics.js";
import type { RoutingRules } from "./rules.js";
import type { JoinStore } from "./store.js";

/** The topics route reads each part from, and the one it writes routed decisions to. */
export interface RouteTopics {
  readonly parts: Readonly<Record<PartName, string>>;
  readonly routed: string;
}

export interface RouteProcessDependencies {
  readonly topics: RouteTopics;
  readonly store: JoinStore;
  /** The rules in force when a decision is made (they may be reloaded between records). */
  readonly rules: () => RoutingRules;
  readonly metrics: RouteMetrics;
  readonly now?: () => number;
}

/** What every part's value carries; Avro decoding has already checked the rest of its shape. */
type PartValue = InquiryCleaned | InquiryClassified | InquirySentiment | InquiryUrgency | RouteTimeout;

/**
 * route's per-record function: store the part, judge the join (join.ts), and when this record is
 * the trigger, route the inquiry from the parts that decided it under the current rules.
 */
export function createRouteProcess({
  topics,
  store,
  rules,
  metrics,
  now = Date.now,
}: RouteProcessDependencies): Process {
  const partOfTopic = new Map(Object.entries(topics.parts).map(([part, topic]) => [topic, part as PartName]));
  let seriesOf = rules().digest;
  initialiseRouteSeries(metrics, rules());

  return async (input, { log }) => {
    const part = partOfTopic.get(input.topic);
    if (!part)
      throw new Error(`route has no part for topic ${input.topic} (parts: ${[...partOfTopic.keys()].join(", ")})`);
    const value = input.value as PartValue;
    const inquiryId = value.inquiry_id;
    if (!inquiryId) throw new InvalidInputError(`${part} record has an empty inquiry_id`);
    if (input.key !== null && input.key !== inquiryId) {
      throw new InvalidInputError(`${part} record key "${input.key}" is not its inquiry_id "${inquiryId}"`);
    }

    const arrivals = await store.addPart(inquiryId, part, value);
    const verdict = judge(part, arrivals);
    if (verdict.kind === "pending") {
      if (part === "timeout" && !arrivals.includes("cleaned"))
        log.info({ inquiryId }, "join timed out before the cleaned inquiry arrived; waiting for it");
      return [];
    }
    if (verdict.kind === "late") {
      metrics.lateParts.inc({ part });
      log.debug({ inquiryId, part, trigger: verdict.trigger }, "part arrived after its inquiry was routed; ignored");
      return [];
    }

    const payloads = await store.decide(inquiryId, verdict.parts);
    const joined = joinedInquiry(inquiryId, payloads, verdict.missing);
    const current = rules();
    if (current.digest !== seriesOf) {
      seriesOf = current.digest;
      initialiseRouteSeries(metrics, current);
    }
    const routed = toRouted(joined, current, now());
    metrics.routed.inc({ trigger: verdict.missing.length > 0 ? "timeout" : "complete" });
    metrics.decisions.inc({ department: routed.department, queue: routed.queue });
    if (routed.human_review) {
      metrics.reviews.inc({ queue: routed.queue });
      for (const reason of routed.review_reasons) metrics.reviewReasons.inc({ reason });
    }
    if (routed.escalated) metrics.escalations.inc({ reason: routed.escalation_reason ?? "unknown" });
    log.debug(
      { inquiryId, trigger: part, department: routed.department, queue: routed.queue, missing: verdict.missing },
      "inquiry routed",
    );
    const output: OutputRecord<InquiryRouted> = { topic: topics.routed, key: inquiryId, value: routed };
    return [output];
  };
}

function joinedInquiry(
  inquiryId: string,
  payloads: ReadonlyMap<PartName, unknown>,
  missing: readonly Prediction[],
): JoinedInquiry {
  const cleaned = payloads.get("cleaned") as InquiryCleaned | undefined;
  // The trigger's parts were stored before it, under the same lock; one missing is a store fault worth retrying.
  if (!cleaned)
    throw new Error(`route join store returned no cleaned part for inquiry ${inquiryId} although the join is decided`);
  return {
    cleaned,
    classified: payloads.get("classified") as InquiryClassified | undefined,
    sentiment: payloads.get("sentiment") as InquirySentiment | undefined,
    urgency: payloads.get("urgency") as InquiryUrgency | undefined,
    missing,
  };
}

function toRouted(joined: JoinedInquiry, rules: RoutingRules, routedAt: number): InquiryRouted {
  const { cleaned, classified, sentiment } = joined;
  return {
    inquiry_id: cleaned.inquiry_id,
    envelope: cleaned.envelope,
    text: cleaned.text,
    language: cleaned.language,
    entities: cleaned.entities,
    ...decideRoute(joined, rules),
    missing_parts: joined.missing,
    intent: classified?.intent ?? null,
    category: classified?.category ?? null,
    sentiment: sentiment?.label ?? null,
    routed_at: routedAt,
  };
}
