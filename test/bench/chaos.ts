/**
 * `npm run chaos`: faults under load on a private stack (test/support/chaos.ts). PostgreSQL,
 * Elasticsearch, Redis, the schema registry and the broker each stopped for CHAOS_FAULT_SECONDS
 * (default 60) and started again, then the triage chain SIGKILLed and started again after
 * CHAOS_KILL_SECONDS (default 90: ProcessDown waits a minute), at CHAOS_RATE inquiries/s (100);
 * CHAOS_FAULTS (comma-separated) picks some. Prints, per fault, the time to detect (the matching
 * alert firing in the private Prometheus, on the committed rules), to resolve and to recover (the
 * backlog answered), then inquiries lost and answered twice over the whole run; writes
 * bench-results/chaos-*.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createLogger } from "../../config/log.js";
import { REPO_ROOT } from "../../config/settings.js";
import { ALL_FAULTS, formatChaosReport, runChaos, type FaultName } from "../support/chaos.js";

const faults = (process.env.CHAOS_FAULTS?.split(",").map((f) => f.trim()) ?? ALL_FAULTS) as FaultName[];
for (const fault of faults) if (!ALL_FAULTS.includes(fault)) throw new Error(`CHAOS_FAULTS: unknown fault ${fault} (${ALL_FAULTS.join(", ")})`);

const report = await runChaos({
  faults,
  rate: Number(process.env.CHAOS_RATE ?? 100),
  faultSeconds: Number(process.env.CHAOS_FAULT_SECONDS ?? 60),
  killSeconds: Number(process.env.CHAOS_KILL_SECONDS ?? 90),
  log: createLogger({ logLevel: "warn" }),
  progress: (line) => console.log(`${new Date().toISOString().slice(11, 19)} ${line}`),
});
console.log(`\n${formatChaosReport(report)}`);
const dir = path.join(REPO_ROOT, "bench-results");
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `chaos-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}.json`);
writeFileSync(file, `${JSON.stringify({ ...report, missing: report.missing.slice(0, 100), duplicated: report.duplicated.slice(0, 100) }, null, 2)}\n`);
console.log(`written: ${file}`);
process.exit(report.missing.length === 0 && report.duplicated.length === 0 && report.faults.every((f) => f.detectSeconds !== undefined && f.resolveSeconds !== undefined && f.recoverSeconds !== undefined) ? 0 : 1);
