/**
 * Topology as data: every topic and processor, declared once. The runtime, `switchboard topics
 * create`, `switchboard schemas register`, the Prometheus scrape config and the docs all read it.
 */

const DAY_MS = 24 * 60 * 60 * 1000;

export interface TopicDeclaration {
  readonly name: string;
  readonly description: string;
  readonly partitions: number;
  /** How long records are kept; `"forever"` for compacted or audit topics. */
  readonly retentionMs: number | "forever";
  /** Compacted topics keep the latest record per key (e.g. state changelogs). */
  readonly compacted: boolean;
  /** The schema file (`schemas/<valueSchema>.avsc`) of the topic's value; `raw` for DLQs. */
  readonly valueSchema: string | "raw";
}

export interface ProcessorDeclaration {
  readonly name: string;
  readonly description: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Port of /healthz and /metrics; Prometheus scrapes it. */
  readonly metricsPort: number;
}

export interface Topology {
  readonly name: string;
  readonly topics: readonly TopicDeclaration[];
  readonly processors: readonly ProcessorDeclaration[];
}

/** Partitions bound a processor group's parallelism; every inquiry topic shares the count so keys co-partition. */
const INQUIRY_PARTITIONS = 6;

const inquiryTopic = (name: string, description: string): TopicDeclaration => ({
  name,
  description,
  partitions: INQUIRY_PARTITIONS,
  retentionMs: 7 * DAY_MS,
  compacted: false,
  valueSchema: name,
});

/** The topics of DESIGN.md: the contract between the processors. */
export const TRIAGE_TOPICS: readonly TopicDeclaration[] = [
  inquiryTopic("inquiries.received", "Inquiries from the connectors (email, ticket, api, chat)"),
  inquiryTopic("inquiries.cleaned", "Normalized, redacted text with language and entities"),
  inquiryTopic("inquiries.classified", "Intent and category predictions"),
  inquiryTopic("inquiries.sentiment", "Sentiment predictions"),
  inquiryTopic("inquiries.urgency", "Urgency predictions with the signals that fired"),
  inquiryTopic("inquiries.routed", "Routing decisions: department, queue, priority, escalation, review"),
  inquiryTopic("inquiries.responses", "Drafted replies or hand-offs"),
  {
    ...inquiryTopic("predictions.feedback", "One record per prediction, and the labels that join it"),
    retentionMs: 90 * DAY_MS,
  },
  {
    name: "models.drift",
    description: "Drift of live data from a model's reference distributions",
    partitions: 1,
    retentionMs: 90 * DAY_MS,
    compacted: false,
    valueSchema: "models.drift",
  },
  {
    name: "models.lifecycle",
    description: "Model versions trained, evaluated, promoted, rejected, rolled back",
    partitions: 1,
    retentionMs: "forever",
    compacted: false,
    valueSchema: "models.lifecycle",
  },
];

/** Processors of the triage pipeline; each issue that builds one declares it here. */
export const TRIAGE: Topology = { name: "triage", topics: TRIAGE_TOPICS, processors: [] };

/** Six chained pass-through hops with the pipeline's shape: the runtime's demo and benchmark. */
export const RELAY_HOPS = 6;
const relayTopic = (hop: number): TopicDeclaration => ({
  name: `relay.${hop}`,
  description: hop === 0 ? "Relay input: inquiries as received" : `Relay output of hop ${hop}`,
  partitions: INQUIRY_PARTITIONS,
  retentionMs: DAY_MS,
  compacted: false,
  valueSchema: "inquiries.received",
});

export const RELAY: Topology = {
  name: "relay",
  topics: Array.from({ length: RELAY_HOPS + 1 }, (_, hop) => relayTopic(hop)),
  processors: Array.from({ length: RELAY_HOPS }, (_, i) => ({
    name: `relay-${i + 1}`,
    description: `Pass-through hop ${i + 1} of ${RELAY_HOPS}`,
    inputs: [`relay.${i}`],
    outputs: [`relay.${i + 1}`],
    metricsPort: 9411 + i,
  })),
};

export const TOPOLOGIES: readonly Topology[] = [TRIAGE, RELAY];

export const dlqTopicName = (topic: string) => `${topic}.dlq`;

/** Every DLQ a topology needs: one per processor input. DLQ values are the original bytes. */
export function dlqTopics(topology: Topology): TopicDeclaration[] {
  const inputs = new Set(topology.processors.flatMap((p) => p.inputs));
  return [...inputs].map((topic) => ({
    name: dlqTopicName(topic),
    description: `Records of ${topic} that could not be processed, with the reason in headers`,
    partitions: 1,
    retentionMs: 30 * DAY_MS,
    compacted: false,
    valueSchema: "raw",
  }));
}

/** The topics to create for a topology: its own and their DLQs. */
export function allTopics(topology: Topology): TopicDeclaration[] {
  return [...topology.topics, ...dlqTopics(topology)];
}

export function findProcessor(name: string): { topology: Topology; processor: ProcessorDeclaration } {
  for (const topology of TOPOLOGIES) {
    const processor = topology.processors.find((p) => p.name === name);
    if (processor) return { topology, processor };
  }
  const known = TOPOLOGIES.flatMap((t) => t.processors.map((p) => p.name)).join(", ");
  throw new Error(`unknown processor "${name}"; known processors: ${known}`);
}

export function findTopic(topology: Topology, name: string): TopicDeclaration {
  const topic = allTopics(topology).find((t) => t.name === name);
  if (!topic) throw new Error(`topic "${name}" is not declared in the ${topology.name} topology`);
  return topic;
}
