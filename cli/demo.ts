import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Logger } from "pino";
import type {
  InquiryClassified,
  InquiryReceived,
  InquiryResponse,
  InquiryRouted,
  InquirySentiment,
  InquiryUrgency,
} from "../schemas/types.generated.js";
import type { Endpoints } from "../stack/index.js";
import { createTopicCodec } from "../streams/codec.js";
import { createKafka } from "../streams/kafka.js";
import { TRIAGE, allTopics } from "../streams/topology.js";
import { schemaRegistryOptions } from "../config/security.js";

/** What the demo learns about one inquiry as the pipeline's records arrive. */
interface Trace {
  readonly inquiry: InquiryReceived;
  classified?: InquiryClassified;
  sentiment?: InquirySentiment;
  urgency?: InquiryUrgency;
  routed?: InquiryRouted;
  response?: InquiryResponse;
}

/**
 * A trace is printed once its reply, its routed decision and every prediction the decision was
 * made with have arrived: one transaction writes them all (a chain), but a consumer may see the
 * topics in any order.
 */
function complete(trace: Trace): boolean {
  const { routed, response } = trace;
  if (!routed || !response) return false;
  const seen = { classified: trace.classified, sentiment: trace.sentiment, urgency: trace.urgency };
  return Object.entries(seen).every(([part, value]) => value !== undefined || routed.missing_parts.includes(part as never));
}

const WATCHED = ["inquiries.classified", "inquiries.sentiment", "inquiries.urgency", "inquiries.routed", "inquiries.responses"] as const;

const pct = (p: number | undefined) => (p === undefined ? "  ?" : `${Math.round(p * 100)}%`.padStart(4));
/** Text on one line of at most `width` characters. */
export const oneLine = (text: string, width: number) => {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
};

function describe(trace: Trace, response: InquiryResponse, latencyMs: number): string {
  const { classified: c, sentiment: s, urgency: u, routed: r } = trace;
  const review = r?.human_review ? `review: ${r.review_reasons.join(", ")}` : "";
  const escalation = r?.escalated ? `escalated: ${r.escalation_reason ?? "yes"}` : "";
  return [
    `${trace.inquiry.envelope.channel.padEnd(6)} ${oneLine(trace.inquiry.subject ?? trace.inquiry.body, 70)}`,
    `  → ${r?.department ?? "?"} / ${r?.queue ?? "?"}  priority ${r?.priority_score.toFixed(0) ?? "?"}  ${latencyMs} ms end to end`,
    `    intent ${c?.intent ?? "?"} ${pct(c?.confidence)}${c?.out_of_scope ? " (out of scope)" : ""}  category ${c?.category ?? "?"}` +
      `  sentiment ${s?.label ?? "?"} ${pct(s?.score)}  urgency ${u?.level ?? "?"}${u?.signals.length ? ` [${u.signals.join(", ")}]` : ""}`,
    ...[review, escalation].filter(Boolean).map((line) => `    ${line}`),
    `    ${response.strategy}: ${oneLine(response.text, 110)}`,
  ].join("\n");
}

/**
 * Streams inquiries into `inquiries.received` and prints each routed decision and reply as it
 * arrives, with the predictions behind it and the end-to-end latency. Inquiries that produce no
 * reply within `timeoutMs` (refused into a DLQ, or a processor down) are listed at the end.
 * Resolves to the number of inquiries answered.
 */
export async function streamDemo(endpoints: Endpoints, log: Logger, inquiries: readonly InquiryReceived[], timeoutMs = 60_000): Promise<number> {
  const kafka = createKafka(endpoints, "switchboard-demo", log);
  const codec = await createTopicCodec(
    new SchemaRegistry(schemaRegistryOptions(endpoints)),
    allTopics(TRIAGE).filter((t) => t.name === "inquiries.received" || (WATCHED as readonly string[]).includes(t.name)),
  );
  const traces = new Map(inquiries.map((inquiry) => [inquiry.inquiry_id, { inquiry } as Trace]));
  let answered = 0;
  let resolveAll!: () => void;
  const allAnswered = new Promise<void>((resolve) => (resolveAll = resolve));

  const consumer = kafka.consumer({ groupId: `switchboard-demo-${Date.now()}`, maxWaitTimeInMs: 50 });
  await consumer.connect();
  for (const topic of WATCHED) await consumer.subscribe({ topic, fromBeginning: false });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const trace = traces.get(message.key?.toString() ?? "");
      if (!trace) return;
      const value = await codec.decode(topic, message.value);
      if (topic === "inquiries.classified") trace.classified = value as InquiryClassified;
      else if (topic === "inquiries.sentiment") trace.sentiment = value as InquirySentiment;
      else if (topic === "inquiries.urgency") trace.urgency = value as InquiryUrgency;
      else if (topic === "inquiries.routed") trace.routed = value as InquiryRouted;
      else trace.response = value as InquiryResponse;
      if (!complete(trace)) return;
      answered++;
      const latency = Date.now() - trace.inquiry.envelope.received_at;
      console.log(`\n${String(answered).padStart(3)}. ${describe(trace, trace.response!, latency)}`);
      traces.delete(trace.inquiry.inquiry_id);
      if (traces.size === 0) resolveAll();
    },
  });
  await joined;

  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  console.log(`streaming ${inquiries.length} inquiries into inquiries.received`);
  for (const inquiry of inquiries) {
    const stamped = { ...inquiry, envelope: { ...inquiry.envelope, received_at: Date.now() } };
    traces.set(inquiry.inquiry_id, { inquiry: stamped });
    await producer.send({ topic: "inquiries.received", messages: [{ key: inquiry.inquiry_id, value: codec.encode("inquiries.received", stamped) }] });
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([allAnswered, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
  await Promise.all([producer.disconnect(), consumer.disconnect()]);

  console.log(`\n${answered} of ${inquiries.length} inquiries answered`);
  if (traces.size > 0) {
    console.log(`no reply within ${timeoutMs / 1000} s for ${traces.size} (refused inputs are in the DLQs: \`switchboard dlq list <topic>.dlq\`):`);
    for (const { inquiry } of traces.values()) console.log(`  ${inquiry.inquiry_id}  ${oneLine(inquiry.subject ?? inquiry.body, 70)}`);
  }
  return answered;
}
