import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { stringify } from "yaml";
import { TOPOLOGIES, deployedTasks, type Topology } from "../streams/topology.js";
import { DEPENDENCIES, type Dependency } from "../streams/dependencies.js";
import { METRICS, bucket } from "./metric-names.js";

/**
 * Prometheus alert rules, generated from the topology (one `up` rule per scrape job, the
 * end-to-end latency of the chain that answers) and from the metric definitions in code
 * (monitoring/metric-names.ts): `npm run monitoring:generate` writes monitoring/alerts.yml, which
 * the local stack's Prometheus and docker-compose's load; test/unit/alerts.test.ts checks the
 * committed file is up to date and runs `promtool test rules` on monitoring/tests/.
 */
export const ALERT_RULES_FILE = new URL("./alerts.yml", import.meta.url);

/** Where each alert's runbook is, relative to the repository root: `monitoring/runbooks/<alert>.md`. */
export const runbookPath = (alert: string) => `monitoring/runbooks/${alert}.md`;

export type Severity = "critical" | "warning";

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  /** How long the condition holds before the alert fires (Prometheus duration). */
  readonly for: string;
  readonly labels: { readonly severity: Severity } & Readonly<Record<string, string>>;
  readonly annotations: { readonly summary: string; readonly description: string; readonly runbook_url: string };
}

/**
 * The thresholds: what a pipeline on this project's own figures (README: the reply path at
 * 100 inquiries/s answers in 1–3 s) should never show for long.
 */
export const THRESHOLDS = {
  /** DLQ'd records per record consumed, over 5 minutes. */
  errorRatio: 0.01,
  /** Connector answers with a 5xx status per answer, over 5 minutes. */
  connectorErrorRatio: 0.05,
  /** Received → response, p95 over 5 minutes, seconds. */
  endToEndP95Seconds: 10,
  /** Lag (records) below which a growing lag is not worth waking anyone. */
  lagRecords: 1000,
  /** Estimated accuracy under its 1-day average by more than this. */
  accuracyDrop: 0.05,
  /** Review rate (of routed decisions) over 10 minutes above both this and twice its 6-hour rate. */
  reviewRatio: 0.2,
  /** Escalation rate likewise. */
  escalationRatio: 0.05,
  /** Decisions made after a join timeout, per decision, over 10 minutes. */
  joinTimeoutRatio: 0.01,
  /** The oldest inquiry waiting for an agent in a queue, seconds: the SLA every queue is held to. */
  queueSlaSeconds: 4 * 3600,
} as const;

const { runtime, connector, route, drift, quality, queues, dependency, email } = METRICS;

/**
 * A service every process checks, stream task and connector alike (streams/dependencies.ts):
 * each its own alert and runbook, as what stops and what fixes it differ. `effect`: what the
 * pipeline does while it is away.
 */
const DEPENDENCY_ALERTS: Readonly<Record<Dependency, { readonly alert: string; readonly service: string; readonly effect: string }>> = {
  kafka: {
    alert: "KafkaDown",
    service: "Kafka",
    effect: "nothing is consumed or produced: no inquiry is answered, the connectors answer 503; the processes reconnect by themselves and resume from their committed offsets",
  },
  schema_registry: {
    alert: "SchemaRegistryDown",
    service: "the schema registry",
    effect: "running processes go on with the schemas they cached, but a process that starts (or a restarted one) cannot, and a schema id not seen before cannot be read",
  },
  postgres: {
    alert: "PostgresDown",
    service: "PostgreSQL",
    effect: "the archive and feedback sinks hold their records (their lag grows), as do route's join store and the API's key checks; the reply chain goes on answering",
  },
  redis: {
    alert: "RedisDown",
    service: "Redis",
    effect: "the API refuses inquiries with 503 (idempotency keys and rate limits live there), chat sessions cannot be routed, urgency skips its repeat-contact signal",
  },
  elasticsearch: {
    alert: "ElasticsearchDown",
    service: "Elasticsearch",
    effect: "respond holds each inquiry until it can search the knowledge base (no reply is drafted: lag and end-to-end latency grow), the search sink holds its records and the API's inquiry search answers 503",
  },
};

/** Some of the email connector's replies (automatic or an agent's) by outcome, over `range`, where above 0. */
const emailReplies = (outcome: string, range: string) =>
  `(sum by (job) (increase(${email.replies}{outcome="${outcome}"}[${range}])) > 0 or sum by (job) (increase(${email.agentReplies}{outcome="${outcome}"}[${range}])) > 0)`;

/** How long every process's checks of a service fail before its alert fires: a few checks (every 5 s), short of a restart's usual minute. */
const DEPENDENCY_FOR = "30s";

function rule(alert: string, severity: Severity, forDuration: string, expr: string, summary: string, description: string, labels: Record<string, string> = {}): AlertRule {
  return { alert, expr, for: forDuration, labels: { severity, ...labels }, annotations: { summary, description, runbook_url: runbookPath(alert) } };
}

/** The rate of some decisions among route's routed decisions, short window over long. */
const routeRatio = (counter: string, range: string) =>
  `sum by (job) (rate(${counter}[${range}])) / sum by (job) (rate(${route.routed}[${range}]))`;

/** The chains that consume inquiries.received and write inquiries.responses: their record age at commit is received → response. */
export function answeringChains(topology: Topology): string[] {
  return topology.chains
    .filter((chain) => chain.inputs.includes("inquiries.received"))
    .filter((chain) => chain.processors.some((name) => topology.processors.find((p) => p.name === name)?.outputs.includes("inquiries.responses")))
    .map((chain) => chain.name);
}

export function alertRules(topologies: readonly Topology[] = TOPOLOGIES): AlertRule[] {
  const up = topologies.flatMap((topology) => {
    const tasks = deployedTasks(topology);
    // A chain carries the reply path and a connector is where inquiries enter: either down, no
    // inquiry is answered. A processor outside every chain is a sink or the learning loop.
    const jobs = [
      ...tasks.chains.map((c) => ({ name: c.name, kind: "chain", severity: "critical" as const })),
      ...tasks.processors.map((p) => ({ name: p.name, kind: "processor", severity: "warning" as const })),
      ...topology.connectors.map((c) => ({ name: c.name, kind: "connector", severity: "critical" as const })),
    ];
    return jobs.map((job) =>
      rule(
        "ProcessDown",
        job.severity,
        "1m",
        `up{job=${JSON.stringify(job.name)}} == 0`,
        `${job.kind} {{ $labels.job }} is down`,
        `Prometheus cannot scrape ${job.kind} {{ $labels.job }} of the ${topology.name} topology at {{ $labels.instance }} for a minute: the process is not running or its /metrics does not answer.`,
        { kind: job.kind, job: job.name },
      ),
    );
  });
  const endToEnd = topologies.flatMap((topology) =>
    answeringChains(topology).map((chain) =>
      rule(
        "EndToEndLatencyHigh",
        "warning",
        "5m",
        `histogram_quantile(0.95, sum by (job, le) (rate(${bucket(runtime.recordAgeSeconds)}{job=${JSON.stringify(chain)}, topic="inquiries.received"}[5m]))) > ${THRESHOLDS.endToEndP95Seconds}`,
        `received → response p95 of {{ $labels.job }} is {{ $value | humanizeDuration }}`,
        `The 95th percentile of an inquiry's age when ${chain} commits its response (received → response) has been above ${THRESHOLDS.endToEndP95Seconds} s for 5 minutes.`,
      ),
    ),
  );
  const dependencies = DEPENDENCIES.map((name) => {
    const { alert, service, effect } = DEPENDENCY_ALERTS[name];
    return rule(
      alert,
      "critical",
      DEPENDENCY_FOR,
      `max by (dependency) (${dependency.up}{dependency=${JSON.stringify(name)}}) == 0`,
      `no process reaches ${service}`,
      `Every process that uses ${service} has failed to reach it for ${DEPENDENCY_FOR}. While it is away, ${effect}.`,
    );
  });
  return [
    ...up,
    ...dependencies,
    rule(
      "ProcessorErrorRate",
      "critical",
      "5m",
      `sum by (job, processor) (rate(${runtime.dlqRecords}[5m])) / on (job) group_left () sum by (job) (rate(${runtime.recordsIn}[5m])) > ${THRESHOLDS.errorRatio}`,
      `{{ $labels.processor }} sends {{ $value | humanizePercentage }} of its records to a DLQ`,
      `{{ $labels.processor }} (in {{ $labels.job }}) sent more than ${THRESHOLDS.errorRatio * 100} % of the records {{ $labels.job }} consumed over 5 minutes to a dead-letter queue: records it could not process.`,
    ),
    rule(
      "ConnectorErrorRate",
      "critical",
      "5m",
      `sum by (job) (rate(${connector.requests}{status=~"5.."}[5m])) / sum by (job) (rate(${connector.requests}[5m])) > ${THRESHOLDS.connectorErrorRatio}`,
      `connector {{ $labels.job }} answers {{ $value | humanizePercentage }} of its requests with a 5xx`,
      `Requests connector {{ $labels.job }} answered with a 5xx status (usually 503: Kafka did not acknowledge, or a dependency is down) over 5 minutes: above ${THRESHOLDS.connectorErrorRatio * 100} %.`,
    ),
    ...endToEnd,
    rule(
      "ConsumerLagGrowing",
      "warning",
      "10m",
      `sum by (job) (${runtime.consumerLag}) > ${THRESHOLDS.lagRecords} and sum by (job) (delta(${runtime.consumerLag}[10m])) > 0`,
      `{{ $labels.job }} is {{ $value }} records behind and falling further behind`,
      `The consumer lag of {{ $labels.job }} (all its partitions) is above ${THRESHOLDS.lagRecords} records and has grown over each of the last 10 minutes: it consumes slower than records arrive.`,
    ),
    rule(
      "DLQGrowing",
      "warning",
      "1m",
      `sum by (job, processor, topic) (increase(${runtime.dlqRecords}[15m])) > 0`,
      `{{ $labels.processor }} sent {{ $value | humanize }} record(s) of {{ $labels.topic }} to its DLQ in 15 minutes`,
      `Records of {{ $labels.topic }} that {{ $labels.processor }} (in {{ $labels.job }}) could not process are on {{ $labels.topic }}.dlq, with the reason in their headers.`,
    ),
    rule(
      "ModelDrift",
      "warning",
      "0m",
      `max by (job, model, feature, statistic) (${drift.value} and on (job, instance, model, feature) (${drift.alarm} == 1))`,
      `{{ $labels.model }} drifts on {{ $labels.feature }}`,
      `The drift processor's alarm is raised for feature {{ $labels.feature }} of {{ $labels.model }}: the live windows' {{ $labels.statistic }} ({{ $value }} in the last) went above its threshold (${drift.threshold}) in enough windows in a row to raise it.`,
    ),
    rule(
      "ModelDriftCritical",
      "critical",
      "0m",
      `sum by (job, model, feature) (increase(${drift.events}{severity="critical"}[1h])) > 0`,
      `critical drift of {{ $labels.model }} on {{ $labels.feature }}`,
      `The drift processor produced a critical models.drift record for {{ $labels.model }} ({{ $labels.feature }}) in the last hour; retrain queues a retraining of a production version on it.`,
    ),
    rule(
      "EstimatedAccuracyDrop",
      "warning",
      "15m",
      `avg_over_time(${quality.estimatedAccuracy}{stage="production"}[1d]) - ${quality.estimatedAccuracy}{stage="production"} > ${THRESHOLDS.accuracyDrop}`,
      `estimated accuracy of {{ $labels.model }} dropped by {{ $value | humanizePercentage }}`,
      `The label-free accuracy estimate of production {{ $labels.model }} (window {{ $labels.window }}) is more than ${THRESHOLDS.accuracyDrop * 100} points under its 1-day average for 15 minutes.`,
    ),
    rule(
      "ReviewRateSpike",
      "warning",
      "10m",
      `(${routeRatio(route.reviews, "10m")}) > ${THRESHOLDS.reviewRatio} and (${routeRatio(route.reviews, "10m")}) > 2 * (${routeRatio(route.reviews, "6h")})`,
      `{{ $value | humanizePercentage }} of inquiries go to human review`,
      `The share of routing decisions of {{ $labels.job }} sent to human review over 10 minutes is above ${THRESHOLDS.reviewRatio * 100} % and twice its 6-hour share.`,
    ),
    rule(
      "EscalationRateSpike",
      "warning",
      "10m",
      `(${routeRatio(route.escalations, "10m")}) > ${THRESHOLDS.escalationRatio} and (${routeRatio(route.escalations, "10m")}) > 2 * (${routeRatio(route.escalations, "6h")})`,
      `{{ $value | humanizePercentage }} of inquiries are escalated`,
      `The share of routing decisions of {{ $labels.job }} escalated over 10 minutes is above ${THRESHOLDS.escalationRatio * 100} % and twice its 6-hour share.`,
    ),
    rule(
      "RouteJoinTimeouts",
      "warning",
      "10m",
      `sum by (job) (rate(${route.routed}{trigger="timeout"}[10m])) / sum by (job) (rate(${route.routed}[10m])) > ${THRESHOLDS.joinTimeoutRatio}`,
      `{{ $value | humanizePercentage }} of inquiries are routed after a join timeout`,
      `route in {{ $labels.job }} routed more than ${THRESHOLDS.joinTimeoutRatio * 100} % of inquiries over 10 minutes without all their predictions (the join timed out): a prediction processor is slow or down.`,
    ),
    rule(
      "EmailMailboxDisconnected",
      "critical",
      "2m",
      `max by (job, instance) (${email.imapConnected}) == 0`,
      `email connector {{ $labels.job }} has not had its mailbox open for 2 minutes`,
      "The email connector's IMAP session has not had the watched mailbox open for 2 minutes: no new email becomes an inquiry. It reconnects by itself with back-off; messages that arrive meanwhile stay in the mailbox, unseen, and are taken in once it is open again.",
    ),
    rule(
      "EmailSendFailing",
      "warning",
      "5m",
      `${emailReplies("retried", "10m")} unless on (job) ${emailReplies("sent", "10m")}`,
      `email connector {{ $labels.job }} retries replies and has sent none for 10 minutes`,
      "The email connector's SMTP sends fail for now (the server is away or refuses with a 4xx) and none has succeeded for 10 minutes: replies to email inquiries, drafted or written by agents, wait, each retried with back-off, and their offsets are not committed until they go.",
    ),
    rule(
      "QueueSLABreach",
      "warning",
      "5m",
      `max by (department, queue) (${queues.oldestSeconds}) > ${THRESHOLDS.queueSlaSeconds}`,
      `the oldest inquiry waiting in {{ $labels.department }}/{{ $labels.queue }} is {{ $value | humanizeDuration }} old`,
      `An inquiry sent to review or escalated in queue {{ $labels.queue }} ({{ $labels.department }}) has waited for an agent's reply longer than the ${THRESHOLDS.queueSlaSeconds / 3600} h SLA.`,
    ),
  ];
}

/** The rule file: one group per concern. */
export function alertRulesFile(topologies: readonly Topology[] = TOPOLOGIES): string {
  const rules = alertRules(topologies);
  const groups = [
    { name: "switchboard-processes", alerts: ["ProcessDown"] },
    { name: "switchboard-dependencies", alerts: DEPENDENCIES.map((name) => DEPENDENCY_ALERTS[name].alert) },
    { name: "switchboard-pipeline", alerts: ["ProcessorErrorRate", "ConnectorErrorRate", "EndToEndLatencyHigh", "ConsumerLagGrowing", "DLQGrowing"] },
    { name: "switchboard-models", alerts: ["ModelDrift", "ModelDriftCritical", "EstimatedAccuracyDrop"] },
    { name: "switchboard-email", alerts: ["EmailMailboxDisconnected", "EmailSendFailing"] },
    { name: "switchboard-routing", alerts: ["ReviewRateSpike", "EscalationRateSpike", "RouteJoinTimeouts", "QueueSLABreach"] },
  ];
  const grouped = new Set(groups.flatMap((g) => g.alerts));
  const ungrouped = rules.filter((r) => !grouped.has(r.alert));
  if (ungrouped.length > 0) throw new Error(`alerts in no group: ${ungrouped.map((r) => r.alert).join(", ")}`);
  const body = {
    groups: groups.map((group) => ({ name: group.name, rules: rules.filter((r) => group.alerts.includes(r.alert)) })),
  };
  return `# Generated from streams/topology.ts and the metric definitions by monitoring/alerts.ts (npm run monitoring:generate); do not edit.\n${stringify(body, { lineWidth: 0 })}`;
}

/** The alerts the rules can fire, each once (ProcessDown is one rule per scrape job). */
export const alertNames = (topologies: readonly Topology[] = TOPOLOGIES) => [...new Set(alertRules(topologies).map((r) => r.alert))];

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  writeFileSync(ALERT_RULES_FILE, alertRulesFile());
}
