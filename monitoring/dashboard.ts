import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { TOPOLOGIES } from "../streams/topology.js";

/**
 * The on-call dashboard, generated from the runtime's metric names and the topology (one
 * variable value per processor), so a new processor appears without editing JSON.
 */
export const DASHBOARD_FILE = new URL("./grafana/dashboards/runtime.json", import.meta.url);

const PANELS: readonly { title: string; expr: string; unit: string }[] = [
  { title: "Records in / s", expr: "sum by (processor) (rate(switchboard_records_in_total{processor=~\"$processor\"}[1m]))", unit: "ops" },
  { title: "Records out / s", expr: "sum by (processor, topic) (rate(switchboard_records_out_total{processor=~\"$processor\"}[1m]))", unit: "ops" },
  { title: "DLQ records / s", expr: "sum by (processor, error_class) (rate(switchboard_dlq_records_total{processor=~\"$processor\"}[5m]))", unit: "ops" },
  { title: "Consumer lag", expr: "sum by (processor) (switchboard_consumer_lag{processor=~\"$processor\"})", unit: "short" },
  { title: "Processing p99", expr: "histogram_quantile(0.99, sum by (le, processor) (rate(switchboard_processing_seconds_bucket{processor=~\"$processor\"}[1m])))", unit: "s" },
  { title: "Transaction phase p99", expr: "histogram_quantile(0.99, sum by (le, processor, phase) (rate(switchboard_transaction_phase_seconds_bucket{processor=~\"$processor\"}[1m])))", unit: "s" },
  { title: "Record age at commit p99", expr: "histogram_quantile(0.99, sum by (le, processor) (rate(switchboard_record_age_seconds_bucket{processor=~\"$processor\"}[1m])))", unit: "s" },
  { title: "Aborted transactions / s", expr: "sum by (processor) (rate(switchboard_transactions_total{outcome=\"abort\",processor=~\"$processor\"}[5m]))", unit: "ops" },
  { title: "Errors / s by class", expr: "sum by (processor, error_class) (rate(switchboard_errors_total{processor=~\"$processor\"}[5m]))", unit: "ops" },
  // The chat gateway (connectors/chat): every instance, whatever processors are chosen above.
  { title: "Chat sockets by state", expr: "sum by (state) (switchboard_chat_sockets)", unit: "short" },
  { title: "Chat reply latency p99 by author", expr: "histogram_quantile(0.99, sum by (le, author) (rate(switchboard_chat_reply_latency_seconds_bucket[5m])))", unit: "s" },
  { title: "Chat frames / s by direction and type", expr: "sum by (direction, type) (rate(switchboard_chat_messages_total[1m]))", unit: "ops" },
  { title: "Chat closes / s by reason", expr: "sum by (reason) (rate(switchboard_chat_closes_total[5m]))", unit: "ops" },
];

export function dashboard(): object {
  // A chain's runtime series carry the chain's name, and its members' names where they are per member.
  const processors = TOPOLOGIES.flatMap((t) => [...t.chains.map((c) => c.name), ...t.processors.map((p) => p.name)]);
  return {
    uid: "switchboard-runtime",
    title: "Switchboard runtime",
    schemaVersion: 39,
    refresh: "10s",
    time: { from: "now-30m", to: "now" },
    templating: {
      list: [
        {
          name: "processor",
          type: "custom",
          multi: true,
          includeAll: true,
          query: processors.join(","),
          current: { text: "All", value: "$__all" },
        },
      ],
    },
    panels: PANELS.map((panel, i) => ({
      id: i + 1,
      type: "timeseries",
      title: panel.title,
      gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
      fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
      targets: [{ expr: panel.expr, refId: "A" }],
    })),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  writeFileSync(DASHBOARD_FILE, `${JSON.stringify(dashboard(), null, 2)}\n`);
}
