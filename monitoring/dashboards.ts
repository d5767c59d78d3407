import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { GraphThresholdsStyleConfigBuilder, GraphThresholdsStyleMode, LegendDisplayMode, LegendPlacement, VizLegendOptionsBuilder } from "@grafana/grafana-foundation-sdk/common";
import { AnnotationQueryBuilder, DashboardBuilder, RowBuilder, ThresholdsConfigBuilder, ThresholdsMode, type DataSourceRef } from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanelBuilder } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries";
import { SIGNATURE_FAILURES } from "../connectors/tickets/signatures.js";
import { TOPOLOGIES, deployedTasks } from "../streams/topology.js";
import { THRESHOLDS, answeringChains } from "./alerts.js";
import { ELASTICSEARCH, EXPORTERS, POSTGRES, REDIS } from "./exporters.js";
import { METRICS, PROCESS_METRICS, bucket } from "./metric-names.js";

/**
 * The on-call dashboards, generated with Grafana's Foundation SDK from the topology (the
 * processes, the chain that answers) and the metric definitions in code (monitoring/metric-names.ts;
 * the exporters' series in monitoring/exporters.ts): `npm run monitoring:generate` writes one JSON
 * file per dashboard to monitoring/grafana/dashboards/, which docker-compose's Grafana provisions
 * (monitoring/grafana/provisioning/). test/unit/dashboards.test.ts keeps the committed files in
 * step; test/e2e/dashboards.test.ts runs every panel's query against a Prometheus scraping a live
 * pipeline and fails on any that returns no data.
 */
export const DASHBOARDS_DIR = new URL("./grafana/dashboards/", import.meta.url);

/** The provisioned data source (monitoring/grafana/provisioning/datasources/prometheus.yml). */
export const DATASOURCE: DataSourceRef = { type: "prometheus", uid: "prometheus" };

/** Grafana's rate window: at least four scrapes, whatever the zoom. Tests put a fixed window in its place. */
export const RATE = "$__rate_interval";

export interface Target {
  readonly expr: string;
  readonly legend: string;
}

export interface Panel {
  readonly title: string;
  readonly description?: string;
  readonly unit: string;
  readonly kind?: "timeseries" | "stat";
  readonly targets: readonly Target[];
  /** A line drawn at the alert's threshold (THRESHOLDS of monitoring/alerts.ts), red above it. */
  readonly threshold?: number;
}

export interface Row {
  readonly title: string;
  readonly panels: readonly Panel[];
}

/** Events drawn over every panel: where `expr` (the series, as the test runs it) is above 0. */
export interface Annotation {
  readonly name: string;
  readonly expr: string;
  readonly title: string;
  readonly color: string;
}

export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly rows: readonly Row[];
  readonly annotations?: readonly Annotation[];
}

const { runtime, connector, chat, route, drift, quality, queues, retrain, serving, respond, email, tickets } = METRICS;

const target = (expr: string, legend: string): Target => ({ expr, legend });
const rate = (series: string) => `rate(${series}[${RATE}])`;
const quantile = (q: number, histogram: string, by: string, selector = "") =>
  `histogram_quantile(${q}, sum by (le, ${by}) (${rate(`${bucket(histogram)}${selector}`)}))`;
/** `numerator` over `denominator`, both summed by `by`. */
const share = (numerator: string, denominator: string, by: string) => `sum by (${by}) (${rate(numerator)}) / sum by (${by}) (${rate(denominator)})`;

const answering = TOPOLOGIES.flatMap(answeringChains);
const ANSWERING = `job=~${JSON.stringify(answering.join("|"))}`;
const processJobs = TOPOLOGIES.flatMap((t) => [...deployedTasks(t).chains, ...deployedTasks(t).processors, ...t.connectors].map((p) => p.name));
const PROCESSES = `job=~${JSON.stringify(processJobs.join("|"))}`;
const EXPORTER_JOBS = `job=~${JSON.stringify(Object.values(EXPORTERS).map((e) => e.job).join("|"))}`;
const SIGNATURE_REASONS = `reason=~${JSON.stringify(SIGNATURE_FAILURES.join("|"))}`;

const overview: Dashboard = {
  uid: "switchboard-overview",
  title: "Switchboard / Overview",
  description: "Golden signals of every process of the topology, received → response, answered against received, DLQ growth.",
  rows: [
    {
      title: "Processes",
      panels: [
        { title: "Up", kind: "stat", unit: "none", description: "Prometheus's up per scrape job: 1 scraped, 0 down (ProcessDown after a minute).", targets: [target(`up{${PROCESSES}}`, "{{job}}")] },
        { title: "CPU by process", unit: "percentunit", targets: [target(`sum by (job) (${rate(`${PROCESS_METRICS.cpuSeconds}{${PROCESSES}}`)})`, "{{job}}")] },
        { title: "Event-loop delay p99 by process", unit: "s", description: "Saturation of a Node process: time its event loop waits behind work.", targets: [target(`max by (job) (${PROCESS_METRICS.eventLoopLagP99}{${PROCESSES}})`, "{{job}}")] },
        { title: "Resident memory by process", unit: "bytes", targets: [target(`sum by (job) (${PROCESS_METRICS.residentBytes}{${PROCESSES}})`, "{{job}}")] },
        {
          title: "Heap kept alive by process",
          unit: "bytes",
          description: "V8 heap right after the latest full garbage collection: a slope here over hours is a leak; RSS alone also counts pages the allocator keeps.",
          targets: [target(`sum by (job) (${METRICS.process.heapAfterMajorGc}{${PROCESSES}})`, "{{job}}")],
        },
      ],
    },
    {
      title: "Processors: rate, errors, latency, saturation, lag",
      panels: [
        { title: "Records consumed / s by processor", unit: "ops", targets: [target(`sum by (processor) (${rate(runtime.recordsIn)})`, "{{processor}}")] },
        { title: "Records produced / s by processor and topic", unit: "ops", targets: [target(`sum by (processor, topic) (${rate(runtime.recordsOut)})`, "{{processor}} → {{topic}}")] },
        { title: "Errors / s by processor (retried or not)", unit: "ops", targets: [target(`sum by (processor) (${rate(runtime.errors)})`, "{{processor}}")] },
        {
          title: "DLQ'd share of consumed records by process",
          unit: "percentunit",
          threshold: THRESHOLDS.errorRatio,
          targets: [target(share(runtime.dlqRecords, runtime.recordsIn, "job"), "{{job}}")],
        },
        { title: "Processing time p99 by processor", unit: "s", targets: [target(quantile(0.99, runtime.processingSeconds, "processor"), "{{processor}}")] },
        { title: "Transaction phase p99 by process", unit: "s", targets: [target(quantile(0.99, runtime.transactionPhaseSeconds, "processor, phase"), "{{processor}} {{phase}}")] },
        { title: "Record age at commit p99 by process and input", unit: "s", description: "How far behind the newest records a process commits.", targets: [target(quantile(0.99, runtime.recordAgeSeconds, "processor, topic"), "{{processor}} {{topic}}")] },
        { title: "Consumer lag by process and topic", unit: "short", threshold: THRESHOLDS.lagRecords, targets: [target(`sum by (job, topic) (${runtime.consumerLag})`, "{{job}} {{topic}}")] },
        { title: "Retries and aborted transactions / s", unit: "ops", targets: [target(`sum by (processor) (${rate(runtime.retries)})`, "retries {{processor}}"), target(`sum by (processor) (${rate(`${runtime.transactions}{outcome="abort"}`)})`, "aborts {{processor}}")] },
      ],
    },
    {
      title: "Connectors: rate, errors, latency",
      panels: [
        { title: "Requests / s by connector and status", unit: "reqps", targets: [target(`sum by (connector, status) (${rate(connector.requests)})`, "{{connector}} {{status}}")] },
        {
          title: "5xx share of answers by connector",
          unit: "percentunit",
          threshold: THRESHOLDS.connectorErrorRatio,
          description: "0 while a connector answers and none is a 5xx (a status seen only once it happens).",
          targets: [
            target(
              `(sum by (connector) (${rate(`${connector.requests}{status=~"5.."}`)}) or 0 * sum by (connector) (${rate(connector.requests)})) / sum by (connector) (${rate(connector.requests)})`,
              "{{connector}}",
            ),
          ],
        },
        { title: "Request time p99 by connector", unit: "s", targets: [target(quantile(0.99, connector.requestSeconds, "connector"), "{{connector}}")] },
        { title: "Records accepted by Kafka / s by connector and kind", unit: "ops", targets: [target(`sum by (connector, kind) (${rate(connector.accepted)})`, "{{connector}} {{kind}}")] },
      ],
    },
    {
      title: "End to end",
      panels: [
        {
          title: "Received → response",
          unit: "s",
          threshold: THRESHOLDS.endToEndP95Seconds,
          description: `An inquiry's age when ${answering.join(", ")} commits its response (the EndToEndLatencyHigh alert's p95).`,
          targets: [0.5, 0.95, 0.99].map((q) => target(quantile(q, runtime.recordAgeSeconds, "job", `{${ANSWERING}, topic="inquiries.received"}`), `p${q * 100}`)),
        },
        {
          title: "Inquiries received vs answered / s",
          unit: "ops",
          targets: [
            target(`sum(${rate(`${runtime.recordsIn}{topic="inquiries.received"}`)})`, "received"),
            target(`sum(${rate(`${runtime.recordsOut}{topic="inquiries.responses"}`)})`, "answered"),
          ],
        },
        {
          title: "DLQ growth: records DLQ'd in 15 min by processor and topic",
          unit: "short",
          description: "What DLQGrowing fires on; `switchboard dlq list <topic>` shows them.",
          targets: [target(`sum by (processor, topic) (increase(${runtime.dlqRecords}[15m]))`, "{{processor}} {{topic}}")],
        },
        { title: "Records DLQ'd / s by error class", unit: "ops", targets: [target(`sum by (processor, error_class) (${rate(runtime.dlqRecords)})`, "{{processor}} {{error_class}}")] },
      ],
    },
  ],
};

const models: Dashboard = {
  uid: "switchboard-models",
  title: "Switchboard / Models",
  description: "What the models predict, how sure and how right they are, drift against thresholds, the versions serving and the lifecycle.",
  annotations: [
    { name: "Lifecycle events", expr: `sum by (event) (increase(${retrain.relayed}[1m]))`, title: "{{event}}", color: "purple" },
    { name: "Production swaps", expr: `sum by (model) (increase(${serving.swaps}{stage="production"}[1m]))`, title: "{{model}} swapped", color: "orange" },
  ],
  rows: [
    {
      title: "Predictions",
      panels: [
        { title: "Predictions / s by model and label", unit: "ops", targets: [target(`sum by (name, label) (${rate(drift.predictions)})`, "{{name}} {{label}}")] },
        {
          title: "Mean confidence by model",
          unit: "percentunit",
          targets: [target(`sum by (name) (${rate(`${drift.confidence}_sum`)}) / sum by (name) (${rate(`${drift.confidence}_count`)})`, "{{name}}")],
        },
        { title: "Confidence p10 by model", unit: "percentunit", description: "The least confident tenth of predictions sits below this.", targets: [target(quantile(0.1, drift.confidence, "name"), "{{name}}")] },
      ],
    },
    {
      title: "Accuracy",
      panels: [
        { title: "Measured accuracy (production, labelled)", unit: "percentunit", targets: [target(`max by (name, window) (${quality.accuracy}{stage="production"})`, "{{name}} {{window}}")] },
        {
          title: "Estimated accuracy (production, label-free)",
          unit: "percentunit",
          description: "Mean calibrated confidence (CBPE); EstimatedAccuracyDrop fires 5 points under its 1-day average.",
          targets: [target(`max by (name, window) (${quality.estimatedAccuracy}{stage="production"})`, "{{name}} {{window}}")],
        },
        { title: "Labelled predictions by model and window", unit: "short", targets: [target(`max by (name, window) (${quality.labelled}{stage="production"})`, "{{name}} {{window}}")] },
        { title: "Estimate trusted (labels confirm the calibration)", kind: "stat", unit: "none", targets: [target(`min by (name) (${quality.trusted}{stage="production"})`, "{{name}}")] },
      ],
    },
    {
      title: "Drift",
      panels: [
        {
          title: "Drift statistic ÷ threshold by model and feature",
          unit: "none",
          threshold: 1,
          description: "Above 1 the window drifted; the alarm is raised after several windows in a row.",
          targets: [target(`max by (model, feature) (${drift.value} / ${drift.threshold})`, "{{model}} {{feature}}")],
        },
        { title: "Drift statistic and threshold", unit: "none", targets: [target(`max by (model, feature, statistic) (${drift.value})`, "{{model}} {{feature}} {{statistic}}"), target(`max by (model, feature) (${drift.threshold})`, "threshold {{model}} {{feature}}")] },
        { title: "Drift alarms raised", unit: "short", targets: [target(`sum by (model) (${drift.alarm})`, "{{model}}")] },
        { title: "models.drift records in 1 h by severity", unit: "short", targets: [target(`sum by (model, severity) (increase(${drift.events}[1h]))`, "{{model}} {{severity}}")] },
        { title: "Drift windows tested / min by model", unit: "short", targets: [target(`sum by (model) (increase(${drift.windows}[5m])) / 5`, "{{model}}")] },
      ],
    },
    {
      title: "Versions and lifecycle",
      panels: [
        { title: "Production version serving by model", kind: "stat", unit: "none", description: "One per model and version a process serves.", targets: [target(`count by (model, version) (${serving.serving}{stage="production"})`, "{{model}}@{{version}}")] },
        { title: "Version swaps and refusals in 1 h", unit: "short", targets: [target(`sum by (model, stage) (increase(${serving.swaps}[1h]))`, "swaps {{model}} {{stage}}"), target(`sum by (model, stage) (increase(${serving.refusals}[1h]))`, "refused {{model}} {{stage}}")] },
        { title: "Lifecycle events in 1 h", unit: "short", targets: [target(`sum by (event) (increase(${retrain.relayed}[1h]))`, "{{event}}")] },
        { title: "Retraining jobs by state", unit: "short", targets: [target(`sum by (state) (${retrain.jobState})`, "{{state}}")] },
      ],
    },
  ],
};

const routing: Dashboard = {
  uid: "switchboard-routing",
  title: "Switchboard / Routing and queues",
  description: "Where inquiries go, what goes to people and why, join timeouts, and the agents' queues against the SLA.",
  rows: [
    {
      title: "Routing",
      panels: [
        { title: "Inquiries routed / s by department and queue", unit: "ops", targets: [target(`sum by (department, queue) (${rate(route.decisions)})`, "{{department}} / {{queue}}")] },
        { title: "Review share of decisions", unit: "percentunit", threshold: THRESHOLDS.reviewRatio, targets: [target(share(route.reviews, route.routed, "job"), "{{job}}")] },
        {
          title: "Review reasons / decisions by reason",
          unit: "percentunit",
          targets: [target(`sum by (job, reason) (${rate(route.reviewReasons)}) / on (job) group_left () sum by (job) (${rate(route.routed)})`, "{{reason}}")],
        },
        {
          title: "Escalation share of decisions by reason",
          unit: "percentunit",
          threshold: THRESHOLDS.escalationRatio,
          targets: [target(`sum by (job, reason) (${rate(route.escalations)}) / on (job) group_left () sum by (job) (${rate(route.routed)})`, "{{reason}}")],
        },
        { title: "Reviews / s by queue", unit: "ops", targets: [target(`sum by (queue) (${rate(route.reviews)})`, "{{queue}}")] },
        { title: "Join timeouts: share of decisions routed without every part", unit: "percentunit", threshold: THRESHOLDS.joinTimeoutRatio, targets: [target(share(`${route.routed}{trigger="timeout"}`, route.routed, "job"), "{{job}}")] },
        { title: "Open joins and late parts", unit: "short", targets: [target(`sum by (job) (${route.openJoins})`, "open {{job}}"), target(`sum by (part) (increase(${route.lateParts}[5m]))`, "late {{part}} (5 min)")] },
        { title: "Replies / s by strategy and hand-offs by reason", unit: "ops", targets: [target(`sum by (strategy) (${rate(respond.replies)})`, "{{strategy}}"), target(`sum by (reason) (${rate(respond.handOffs)})`, "hand-off {{reason}}")] },
      ],
    },
    {
      title: "Agents' queues",
      panels: [
        { title: "Inquiries waiting for an agent by queue", unit: "short", targets: [target(`max by (department, queue) (${queues.open})`, "{{department}} / {{queue}}")] },
        {
          title: "Oldest unanswered inquiry by queue (SLA)",
          unit: "s",
          threshold: THRESHOLDS.queueSlaSeconds,
          targets: [target(`max by (department, queue) (${queues.oldestSeconds})`, "{{department}} / {{queue}}")],
        },
      ],
    },
  ],
};

const connectors: Dashboard = {
  uid: "switchboard-connectors",
  title: "Switchboard / Connectors and chat",
  description: "The REST API, ticket webhooks, email over IMAP and the chat gateway: requests, refusals, signatures, IMAP, sockets, reply latency.",
  rows: [
    {
      title: "Requests and refusals",
      panels: [
        { title: "Requests / s by connector and route", unit: "reqps", targets: [target(`sum by (connector, route) (${rate(connector.requests)})`, "{{connector}} {{route}}")] },
        { title: "Refusals / s by connector and reason", unit: "ops", targets: [target(`sum by (connector, reason) (${rate(connector.rejected)})`, "{{connector}} {{reason}}")] },
        { title: "Webhook signature failures / s by desk and reason", unit: "ops", targets: [target(`sum by (desk, reason) (${rate(`${tickets.events}{outcome="refused", ${SIGNATURE_REASONS}}`)})`, "{{desk}} {{reason}}")] },
        { title: "Ticket webhook events / s by desk and outcome", unit: "ops", targets: [target(`sum by (desk, outcome) (${rate(tickets.events)})`, "{{desk}} {{outcome}}")] },
      ],
    },
    {
      title: "Email",
      panels: [
        { title: "IMAP mailbox open", kind: "stat", unit: "none", description: "1 while the email connector has its mailbox open.", targets: [target(`min by (job) (${email.imapConnected})`, "{{job}}")] },
        { title: "IMAP reconnects in 1 h", unit: "short", targets: [target(`sum by (job) (increase(${email.imapReconnects}[1h]))`, "{{job}}")] },
        { title: "Email messages / s by outcome", unit: "ops", targets: [target(`sum by (outcome) (${rate(email.messages)})`, "{{outcome}}")] },
        { title: "Email received → inquiry acknowledged p95", unit: "s", targets: [target(`histogram_quantile(0.95, sum by (le) (${rate(bucket(email.deliverySeconds))}))`, "p95")] },
        { title: "Email replies / s by outcome", unit: "ops", description: "Only with SMTP_URL: the connector then sends replies.", targets: [target(`sum by (outcome) (${rate(email.replies)})`, "{{outcome}}")] },
      ],
    },
    {
      title: "Chat",
      panels: [
        { title: "Open sockets by state", unit: "short", targets: [target(`sum by (state) (${chat.sockets})`, "{{state}}")] },
        { title: "Reply latency by author (receipt → reply on the socket)", unit: "s", targets: [0.5, 0.99].map((q) => target(quantile(q, chat.replyLatency, "author"), `p${q * 100} {{author}}`)) },
        { title: "Chat frames / s by direction and type", unit: "ops", targets: [target(`sum by (direction, type) (${rate(chat.messages)})`, "{{direction}} {{type}}")] },
        { title: "Socket closes / s by reason", unit: "ops", targets: [target(`sum by (reason) (${rate(chat.closes)})`, "{{reason}}")] },
        { title: "Delivery consumer in its group", kind: "stat", unit: "none", targets: [target(`min by (instance) (${chat.deliveryJoined})`, "{{instance}}")] },
      ],
    },
  ],
};

const stack: Dashboard = {
  uid: "switchboard-stack",
  title: "Switchboard / Stack",
  description: "Kafka (as the processes' clients see it), PostgreSQL, Redis and Elasticsearch (their Debian exporters).",
  rows: [
    {
      title: "Kafka",
      panels: [
        { title: "Kafka request p99 by API", unit: "s", targets: [target(quantile(0.99, runtime.kafkaRequestSeconds, "api"), "{{api}}")] },
        { title: "Kafka requests / s by broker", unit: "reqps", targets: [target(`sum by (broker) (${rate(`${bucket(runtime.kafkaRequestSeconds)}{le="+Inf"}`)})`, "{{broker}}")] },
        { title: "Request timeouts and consumer crashes in 15 min", unit: "short", targets: [target(`sum by (processor) (increase(${runtime.kafkaRequestTimeouts}[15m]))`, "timeouts {{processor}}"), target(`sum by (processor) (increase(${runtime.consumerCrashes}[15m]))`, "crashes {{processor}}")] },
        { title: "Consumer group joins (rebalances) in 15 min", unit: "short", targets: [target(`sum by (processor) (increase(${runtime.consumerGroupJoins}[15m]))`, "{{processor}}")] },
        { title: "Records written to Kafka / s (processes and connectors)", unit: "ops", targets: [target(`sum(${rate(runtime.recordsOut)})`, "processors"), target(`sum(${rate(connector.accepted)})`, "connectors")] },
      ],
    },
    {
      title: "Exporters",
      panels: [{ title: "Exporters up", kind: "stat", unit: "none", targets: [target(`up{${EXPORTER_JOBS}}`, "{{job}}")] }],
    },
    {
      title: "PostgreSQL",
      panels: [
        { title: "PostgreSQL up", kind: "stat", unit: "none", targets: [target(`min(${POSTGRES.up})`, "up")] },
        { title: "Connections by database (of max_connections)", unit: "short", targets: [target(`sum by (datname) (${POSTGRES.backends}{datname!=""})`, "{{datname}}"), target(`max(${POSTGRES.maxConnections})`, "max")] },
        { title: "Transactions / s by database", unit: "ops", targets: [target(`sum by (datname) (${rate(`${POSTGRES.commits}{datname!=""}`)})`, "commits {{datname}}"), target(`sum by (datname) (${rate(`${POSTGRES.rollbacks}{datname!=""}`)})`, "rollbacks {{datname}}")] },
        {
          title: "Buffer cache hit ratio by database",
          unit: "percentunit",
          targets: [target(`sum by (datname) (${rate(`${POSTGRES.blocksHit}{datname!=""}`)}) / (sum by (datname) (${rate(`${POSTGRES.blocksHit}{datname!=""}`)}) + sum by (datname) (${rate(`${POSTGRES.blocksRead}{datname!=""}`)}))`, "{{datname}}")],
        },
        { title: "Deadlocks in 1 h and locks by mode", unit: "short", targets: [target(`sum by (datname) (increase(${POSTGRES.deadlocks}{datname!=""}[1h]))`, "deadlocks {{datname}}"), target(`sum by (mode) (${POSTGRES.locks})`, "{{mode}}")] },
      ],
    },
    {
      title: "Redis",
      panels: [
        { title: "Redis up", kind: "stat", unit: "none", targets: [target(`min(${REDIS.up})`, "up")] },
        { title: "Clients and rejected connections", unit: "short", targets: [target(`sum(${REDIS.clients})`, "clients"), target(`sum(increase(${REDIS.rejectedConnections}[5m]))`, "rejected (5 min)")] },
        { title: "Memory used", unit: "bytes", targets: [target(`sum(${REDIS.memory})`, "used")] },
        { title: "Commands / s and keyspace hit ratio", unit: "ops", targets: [target(`sum(${rate(REDIS.commands)})`, "commands"), target(`sum(${rate(REDIS.hits)}) / (sum(${rate(REDIS.hits)}) + sum(${rate(REDIS.misses)}))`, "hit ratio")] },
        { title: "Keys by database", unit: "short", targets: [target(`sum by (db) (${REDIS.keys}) > 0`, "{{db}}")] },
      ],
    },
    {
      title: "Elasticsearch",
      panels: [
        { title: "Cluster health", kind: "stat", unit: "none", description: "The cluster's colour (1 for the current one).", targets: [target(`max by (color) (${ELASTICSEARCH.status}) == 1`, "{{color}}"), target(`min(${ELASTICSEARCH.healthUp})`, "reachable")] },
        { title: "Unassigned shards", unit: "short", targets: [target(`sum(${ELASTICSEARCH.unassignedShards})`, "unassigned")] },
        { title: "JVM heap used of max", unit: "percentunit", targets: [target(`sum(${ELASTICSEARCH.heapUsed}{area="heap"}) / sum(${ELASTICSEARCH.heapMax}{area="heap"})`, "heap")] },
        {
          title: "Searches and indexing / s",
          unit: "ops",
          targets: [target(`sum(${rate(ELASTICSEARCH.searches)})`, "searches"), target(`sum(${rate(ELASTICSEARCH.indexed)})`, "documents indexed")],
        },
        { title: "Search time per query", unit: "s", targets: [target(`sum(${rate(ELASTICSEARCH.searchSeconds)}) / sum(${rate(ELASTICSEARCH.searches)})`, "mean")] },
        { title: "Documents", unit: "short", targets: [target(`sum(${ELASTICSEARCH.docs})`, "documents")] },
      ],
    },
  ],
};

export const DASHBOARDS: readonly Dashboard[] = [overview, models, routing, connectors, stack];

const PANEL_WIDTH = 8;
const PANEL_HEIGHT = 8;

function panelBuilder(panel: Panel) {
  const queries = panel.targets.map((t, i) =>
    new DataqueryBuilder()
      .expr(t.expr)
      .legendFormat(t.legend)
      .refId(String.fromCharCode(65 + i))
      .datasource(DATASOURCE),
  );
  const thresholds =
    panel.threshold === undefined
      ? undefined
      : new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
          { value: null, color: "green" },
          { value: panel.threshold, color: "red" },
        ]);
  if (panel.kind === "stat") {
    const stat = new StatPanelBuilder().title(panel.title).unit(panel.unit).datasource(DATASOURCE).height(4).span(PANEL_WIDTH);
    if (panel.description) stat.description(panel.description);
    for (const query of queries) stat.withTarget(query);
    return stat;
  }
  const series = new TimeseriesPanelBuilder()
    .title(panel.title)
    .unit(panel.unit)
    .datasource(DATASOURCE)
    .height(PANEL_HEIGHT)
    .span(PANEL_WIDTH)
    .legend(new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom).calcs([]));
  if (panel.description) series.description(panel.description);
  if (thresholds) series.thresholds(thresholds).thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(GraphThresholdsStyleMode.Dashed));
  for (const query of queries) series.withTarget(query);
  return series;
}

/** One dashboard's JSON model, as Grafana provisions it. */
export function dashboardModel(spec: Dashboard): object {
  const builder = new DashboardBuilder(spec.title)
    .uid(spec.uid)
    .description(spec.description)
    .tags(["switchboard", "generated"])
    .editable()
    .refresh("10s")
    .time({ from: "now-1h", to: "now" })
    .timezone("utc");
  for (const annotation of spec.annotations ?? []) {
    builder.annotation(
      new AnnotationQueryBuilder()
        .name(annotation.name)
        .datasource(DATASOURCE)
        .enable(true)
        .iconColor(annotation.color)
        .expr(`${annotation.expr} > 0`)
        .titleFormat(annotation.title)
        .step("60s"),
    );
  }
  for (const row of spec.rows) {
    builder.withRow(new RowBuilder(row.title));
    for (const panel of row.panels) builder.withPanel(panelBuilder(panel));
  }
  return builder.build();
}

export const dashboardFile = (spec: Dashboard) => new URL(`${spec.uid}.json`, DASHBOARDS_DIR);

export const dashboardJson = (spec: Dashboard) => `${JSON.stringify(dashboardModel(spec), null, 2)}\n`;

/** Writes every dashboard and removes files of dashboards no longer generated. */
export function writeDashboards(): void {
  mkdirSync(DASHBOARDS_DIR, { recursive: true });
  const current = new Set(DASHBOARDS.map((spec) => `${spec.uid}.json`));
  for (const file of readdirSync(DASHBOARDS_DIR)) if (file.endsWith(".json") && !current.has(file)) rmSync(fileURLToPath(new URL(file, DASHBOARDS_DIR)));
  for (const spec of DASHBOARDS) writeFileSync(dashboardFile(spec), dashboardJson(spec));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) writeDashboards();
