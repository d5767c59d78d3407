import { describe, expect, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import { formatChaosReport, runChaos } from "../support/chaos.js";
import { quietLog } from "../support/topics.js";

/**
 * The short version of `npm run chaos`, on a private stack (free ports, a supervisor home of its
 * own, its own Prometheus on the committed rules; the shared stack is never stopped), at 100
 * inquiries/s: PostgreSQL stopped for 40 s. The archive and feedback sinks hold their records
 * (their writes fail, their transactions abort) while the chain goes on answering;
 * PostgresDown fires (its `for:` is 30 s) and resolves once it is back; every inquiry is answered
 * exactly once on inquiries.responses and archived once, nothing DLQ'd. PostgreSQL restarts in
 * seconds, which keeps the test within a few minutes; the other faults (Elasticsearch, whose
 * outage respond waits out, Redis, the schema registry, the broker, the chain SIGKILLed past
 * ProcessDown's minute) are `npm run chaos`'s, each 60 s.
 */
describe.runIf(!loadConfig().kafkaBrokers)("chaos under load (private stack)", () => {
  it("PostgreSQL away 40 s: the sinks hold their records, PostgresDown fires and resolves, every inquiry answered and archived once", { timeout: 600_000 }, async () => {
    const report = await runChaos({ faults: ["postgres"], rate: 100, faultSeconds: 40, killSeconds: 0, log: quietLog });
    const summary = formatChaosReport(report);
    const [postgres] = report.faults;
    expect(postgres?.detectSeconds, summary).toBeDefined();
    expect(postgres?.resolveSeconds, summary).toBeDefined();
    expect(postgres?.recoverSeconds, summary).toBeDefined();
    expect(report.missing, summary).toEqual([]);
    expect(report.duplicated, summary).toEqual([]);
    expect(report.archivedMissing, summary).toBe(0);
    expect(report.dlq, summary).toBe(0);
  });
});
