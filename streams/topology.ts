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
  /**
   * Keyed by inquiry id and read alongside the other inquiry topics by partition number: all of
   * them have one count, the configured one (`withPartitions`, SWITCHBOARD_INQUIRY_PARTITIONS).
   */
  readonly coPartitioned?: boolean;
}

export interface ProcessorDeclaration {
  readonly name: string;
  readonly description: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Port of /healthz and /metrics; Prometheus scrapes it. */
  readonly metricsPort: number;
  /**
   * Records worked on at once (default 1: one at a time). Worth raising where a record's work is
   * mostly waiting — a model batch the records share, a search — and safe only for a processor
   * whose records do not depend on each other's order (outputs keep input order either way).
   */
  readonly concurrency?: number;
  /**
   * Commits no more often than this (default 0: as soon as a fetch is processed). Every commit
   * costs the broker a marker in each partition it touched; a sink off the reply path saves that
   * by taking larger, later transactions.
   */
  readonly minCommitIntervalMs?: number;
}

/**
 * An inbound connector: its own process, taking inquiries (and labels) from outside Kafka and
 * writing them to its outputs with an idempotent producer, acknowledged before it answers.
 */
export interface ConnectorDeclaration {
  readonly name: string;
  readonly description: string;
  readonly outputs: readonly string[];
  /**
   * Topics the connector reads back, at least once: the chat gateway the replies it delivers on
   * the customer's socket; the email connector, with SMTP_URL, what it needs to send replies.
   */
  readonly inputs?: readonly string[];
  /** Port of the connector's HTTP server: its own endpoints (if any) beside /healthz and /metrics; Prometheus scrapes it. */
  readonly port: number;
}

/**
 * Processors run as one: one process, one consumer group, one transaction per fetch (as Flink
 * chains operators into a task and Kafka Streams runs a sub-topology in one). A record a member
 * writes to a topic another member reads is handed to that member in the same transaction, and
 * still written to its topic, for audit and for every other reader. Each member stays deployable
 * on its own (`switchboard run <processor>`); a deployment runs a member either in its chain or
 * alone, never both.
 */
export interface ChainDeclaration<Member extends string = string> {
  readonly name: string;
  readonly description: string;
  /** In an order where each member reads only the chain's inputs and what earlier members write. */
  readonly processors: readonly Member[];
  /**
   * What the chain consumes from Kafka. A member's input that is neither one of these nor written
   * inside the chain is not read when chained (route's timeouts: every part of an inquiry is
   * computed in the transaction that routes it, so none is ever late).
   */
  readonly inputs: readonly string[];
  /** Port of /healthz and /metrics; Prometheus scrapes it. */
  readonly metricsPort: number;
  /** Input records worked on at once, each through the whole chain; outputs keep input order. */
  readonly concurrency: number;
}

export interface Topology {
  readonly name: string;
  readonly topics: readonly TopicDeclaration[];
  readonly processors: readonly ProcessorDeclaration[];
  readonly chains: readonly ChainDeclaration[];
  readonly connectors: readonly ConnectorDeclaration[];
}

/**
 * Partitions bound a processor group's parallelism; every inquiry topic shares the count so keys
 * co-partition. The declared default: processes take the configured count (`withPartitions`).
 */
export const INQUIRY_PARTITIONS = 6;

const inquiryTopic = (name: string, description: string): TopicDeclaration => ({
  name,
  description,
  partitions: INQUIRY_PARTITIONS,
  coPartitioned: true,
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
  inquiryTopic("inquiries.replies", "Replies agents sent from the console, drafted or edited"),
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
  {
    name: "models.retrain",
    description: "Requests to retrain a model (switchboard retrain --model M)",
    partitions: 1,
    retentionMs: 90 * DAY_MS,
    compacted: false,
    valueSchema: "models.retrain",
  },
];

/** Internal to `route`: inquiries whose join timed out, fed back in so the timeout is routed transactionally. */
const ROUTE_TIMEOUTS: TopicDeclaration = {
  ...inquiryTopic("route.timeouts", "Inquiries whose predictions did not all arrive in time (internal to route)"),
  retentionMs: DAY_MS,
};

/** The triage pipeline: received → clean → (classify | sentiment | urgency) → route → respond, plus the sinks. */
export const TRIAGE_PROCESSORS = [
  {
    name: "clean",
    description: "HTML to text, quoted replies and signatures removed, personal data redacted, language and entities",
    inputs: ["inquiries.received"],
    outputs: ["inquiries.cleaned"],
    metricsPort: 9401,
  },
  {
    name: "classify",
    description: "Intent and category from the production intent model; out-of-scope detection",
    inputs: ["inquiries.cleaned"],
    outputs: ["inquiries.classified", "predictions.feedback"],
    metricsPort: 9402,
    // The records in flight share model batches.
    concurrency: 32,
  },
  {
    name: "sentiment",
    description: "Sentiment from the production sentiment model",
    inputs: ["inquiries.cleaned"],
    outputs: ["inquiries.sentiment", "predictions.feedback"],
    metricsPort: 9403,
    // The records in flight share model batches.
    concurrency: 32,
  },
  {
    name: "urgency",
    description:
      "Urgency from the production model and explicit signals (outage, ASAP, deadline, legal, safety, fraud, repeat contact, no rush, VIP) through the fitted combination; route adds intent and sentiment",
    inputs: ["inquiries.cleaned"],
    outputs: ["inquiries.urgency", "predictions.feedback"],
    metricsPort: 9404,
    // Model batches and Redis round trips overlap; repeat contact is judged by received time, not order.
    concurrency: 32,
  },
  {
    name: "route",
    description: "Joins the cleaned inquiry and its three predictions; routes by the rules file, or after a timeout with what is known",
    inputs: ["inquiries.cleaned", "inquiries.classified", "inquiries.sentiment", "inquiries.urgency", "route.timeouts"],
    outputs: ["inquiries.routed"],
    metricsPort: 9405,
    // One per PostgreSQL connection; the join store locks per inquiry, so parts of one inquiry still serialize.
    concurrency: 4,
  },
  {
    name: "respond",
    description: "Drafts a reply from the knowledge base and per-intent templates, or hands off to a human",
    inputs: ["inquiries.routed"],
    outputs: ["inquiries.responses"],
    metricsPort: 9406,
    // Elasticsearch queries overlap and the query embeddings share model batches. A record that
    // needs retrieval waits a few hundred ms under load, and a chunk waits for its slowest record:
    // at 16, respond fell behind at 100 tickets/s with the machine half idle (steady-load p50 3.7 s; 1.3–2.6 s at 64).
    concurrency: 64,
  },
  {
    name: "archive",
    description: "Sink: inquiries, predictions, routing decisions, responses and agents' replies into PostgreSQL (idempotent upserts)",
    inputs: ["inquiries.cleaned", "predictions.feedback", "inquiries.routed", "inquiries.responses", "inquiries.replies"],
    outputs: [],
    metricsPort: 9407,
    // Off the reply path: fewer, larger transactions leave the broker's CPU to the processors that reply.
    minCommitIntervalMs: 500,
  },
  {
    name: "feedback",
    description: "Sink: every prediction and every label into PostgreSQL, labels joined to their prediction in any order and resolved by the conflict rule (the learning loop's store)",
    inputs: ["predictions.feedback"],
    outputs: [],
    metricsPort: 9409,
    // Off the reply path: fewer, larger transactions leave the broker's CPU to the processors that reply.
    minCommitIntervalMs: 500,
  },
  {
    name: "drift",
    description: "Compares windows of each model version's live predictions with the reference distributions in its manifest; emits drift events, and live and estimated model quality as metrics",
    inputs: ["predictions.feedback"],
    outputs: ["models.drift"],
    metricsPort: 9410,
  },
  {
    name: "retrain",
    description: "Retraining: records requests (critical drift of a production version, enough new labels, `switchboard retrain`) and runs them one per model (train with the feedback, gate, shadow evaluation, promote or reject); relays every registry decision to models.lifecycle",
    inputs: ["models.drift", "models.retrain"],
    outputs: ["models.lifecycle"],
    metricsPort: 9412,
  },
  {
    name: "search",
    description: "Sink: inquiries into Elasticsearch for full-text search",
    inputs: ["inquiries.cleaned", "inquiries.routed"],
    outputs: [],
    metricsPort: 9408,
    // Off the reply path: fewer, larger transactions leave the broker's CPU to the processors that reply.
    minCommitIntervalMs: 500,
  },
] as const satisfies readonly ProcessorDeclaration[];

/** The name of each processor of the triage topology: implementation tables are keyed by it. */
export type TriageProcessorName = (typeof TRIAGE_PROCESSORS)[number]["name"];

/** Where inquiries enter: DESIGN.md's inbound connectors. */
export const TRIAGE_CONNECTORS = [
  {
    name: "api",
    description:
      "REST API: inquiries in, their status and search out, human labels, agents' replies; ticket webhooks (Zendesk, Freshdesk, generic); the agent console and model pages",
    outputs: ["inquiries.received", "predictions.feedback", "inquiries.replies"],
    port: 8080,
  },
  {
    name: "email",
    description: "Email over IMAP (IDLE): one inquiry per message, flagged once Kafka has it; with SMTP, the automatic replies the routing rules allow and agents' replies",
    outputs: ["inquiries.received"],
    inputs: ["inquiries.classified", "inquiries.responses", "inquiries.replies"],
    port: 9411,
  },
  {
    name: "chat",
    description: "Chat gateway over WebSocket: customer messages in, drafted and agents' replies out on the customer's socket, resumable across instances; the customer chat page",
    outputs: ["inquiries.received"],
    inputs: ["inquiries.responses", "inquiries.replies"],
    port: 8090,
  },
] as const satisfies readonly ConnectorDeclaration[];

export type TriageConnectorName = (typeof TRIAGE_CONNECTORS)[number]["name"];

/**
 * The reply path as one chain: four transactional hops (clean, the three predictions, route,
 * respond), each decoding, encoding and committing on its own, become one.
 */
export const TRIAGE_CHAINS = [
  {
    name: "triage",
    description: "clean → classify | sentiment | urgency → route → respond in one process and one transaction, every intermediate topic still written",
    processors: ["clean", "classify", "sentiment", "urgency", "route", "respond"],
    inputs: ["inquiries.received"],
    metricsPort: 9400,
    // The records in flight share model batches and overlap their Redis and Elasticsearch round
    // trips; inference, not this, bounds the chain (bitext saturation 311/s at 64, 342/s at 256,
    // with two inference threads on a 2-core machine).
    concurrency: 256,
  },
] as const satisfies readonly ChainDeclaration<TriageProcessorName>[];

export const TRIAGE: Topology = {
  name: "triage",
  topics: [...TRIAGE_TOPICS, ROUTE_TIMEOUTS],
  processors: TRIAGE_PROCESSORS,
  chains: TRIAGE_CHAINS,
  connectors: TRIAGE_CONNECTORS,
};

export const TOPOLOGIES: readonly Topology[] = [TRIAGE];

/**
 * The topology with `partitions` as the count of every co-partitioned topic: what `topics create`
 * makes and what a processor sizes its concurrency by, from SWITCHBOARD_INQUIRY_PARTITIONS.
 */
export function withPartitions(topology: Topology, partitions: number): Topology {
  return { ...topology, topics: topology.topics.map((t) => (t.coPartitioned ? { ...t, partitions } : t)) };
}

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

export function findChain(name: string): { topology: Topology; chain: ChainDeclaration } | undefined {
  for (const topology of TOPOLOGIES) {
    const chain = topology.chains.find((c) => c.name === name);
    if (chain) return { topology, chain };
  }
  return undefined;
}

/** What a deployment runs, each as its own process (and consumer group): the chains, and the processors in none. */
export function deployedTasks(topology: Topology): { chains: readonly ChainDeclaration[]; processors: readonly ProcessorDeclaration[] } {
  const chained = new Set(topology.chains.flatMap((c) => c.processors));
  return { chains: topology.chains, processors: topology.processors.filter((p) => !chained.has(p.name)) };
}

/** The chain `processor` is a member of, if any. */
export function chainOf(topology: Topology, processor: string): ChainDeclaration | undefined {
  return topology.chains.find((c) => c.processors.includes(processor));
}

/** Topics some member of `chain` writes: handed on inside the chain to the members that read them. */
export function writtenInChain(topology: Topology, chain: ChainDeclaration): Set<string> {
  return new Set(chain.processors.flatMap((name) => findProcessorIn(topology, name).outputs));
}

function findProcessorIn(topology: Topology, name: string): ProcessorDeclaration {
  const processor = topology.processors.find((p) => p.name === name);
  if (!processor) throw new Error(`processor "${name}" is not declared in the ${topology.name} topology`);
  return processor;
}

/**
 * Checks a chain against its topology: members declared, each once, none in two chains, and in
 * an order where every member's chained inputs are written before it.
 */
export function chainMembers(topology: Topology, chain: ChainDeclaration): ProcessorDeclaration[] {
  const members = chain.processors.map((name) => findProcessorIn(topology, name));
  if (new Set(chain.processors).size !== members.length) throw new Error(`chain ${chain.name} lists a processor twice`);
  for (const other of topology.chains) {
    const shared = other !== chain && chain.processors.find((name) => other.processors.includes(name));
    if (shared) throw new Error(`processor ${shared} is in both chains ${chain.name} and ${other.name}`);
  }
  const written = writtenInChain(topology, chain);
  for (const input of chain.inputs) {
    if (!members.some((m) => m.inputs.includes(input))) throw new Error(`chain ${chain.name} consumes ${input}, which none of its members reads`);
    if (written.has(input)) throw new Error(`chain ${chain.name} consumes ${input}, which one of its members writes`);
  }
  const available = new Set(chain.inputs);
  for (const member of members) {
    const early = member.inputs.find((input) => written.has(input) && !available.has(input));
    if (early) throw new Error(`chain ${chain.name}: ${member.name} reads ${early} before a member earlier in the chain writes it`);
    for (const output of member.outputs) available.add(output);
  }
  if (!members.some((m) => m.inputs.some((input) => available.has(input)))) throw new Error(`chain ${chain.name} reads nothing`);
  return members;
}

export function findConnector(name: string): { topology: Topology; connector: ConnectorDeclaration } | undefined {
  for (const topology of TOPOLOGIES) {
    const connector = topology.connectors.find((c) => c.name === name);
    if (connector) return { topology, connector };
  }
  return undefined;
}

export function findTopic(topology: Topology, name: string): TopicDeclaration {
  const topic = allTopics(topology).find((t) => t.name === name);
  if (!topic) throw new Error(`topic "${name}" is not declared in the ${topology.name} topology`);
  return topic;
}
