import { api } from "../../connectors/api/index.js";
import { hostConnector } from "../../connectors/host.js";
import { createLogger } from "../../config/log.js";
import { loadConfig } from "../../config/settings.js";
import { resolveEndpoints } from "../../stack/index.js";
import { TRIAGE, type Topology } from "../../streams/topology.js";

/**
 * The REST API as `switchboard run api` runs it, but writing its inquiries to BENCH_TOPIC (a
 * topic of the inquiries.received schema) instead of inquiries.received, so that the ingest
 * benchmark leaves no backlog of inquiries for the pipeline.
 */
const topic = process.env.BENCH_TOPIC!;
const declaration = TRIAGE.connectors.find((c) => c.name === "api")!;
const topology: Topology = {
  name: "bench-ingest",
  topics: [
    { name: topic, description: "ingest benchmark", partitions: 6, retentionMs: 3_600_000, compacted: false, valueSchema: "inquiries.received" },
    TRIAGE.topics.find((t) => t.name === "predictions.feedback")!,
  ],
  processors: [],
  chains: [],
  connectors: [{ ...declaration, outputs: [topic, "predictions.feedback"] }],
};
const config = loadConfig();
await hostConnector(topology, topology.connectors[0]!, api, config, resolveEndpoints(config), createLogger(config));
