import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { Registry } from "prom-client";
import { openEmailIngest } from "../connectors/email/index.js";
import type { IngestOutcome, RawEmail } from "../connectors/email/ingest.js";
import { mailFileMessages, type MailFileMessage } from "../connectors/email/mail-files.js";
import { createIntake } from "../connectors/intake.js";
import { createConnectorMetrics } from "../connectors/metrics.js";
import { resolveEndpoints } from "../stack/index.js";
import { findConnector } from "../streams/topology.js";
import { ReportedError, type CliContext } from "./context.js";

/** Messages parsed and published together. */
const BATCH = 50;
/** Rounds of a batch whose messages Kafka or Redis did not take, before giving up. */
const ATTEMPTS = 5;

interface Report {
  imported: number;
  alreadyPresent: number;
  refused: Map<string, number>;
}

const where = (m: MailFileMessage) => (m.position === undefined ? m.file : `${m.file} #${m.position}`);

/**
 * Back-fills the outcome of each message of a batch, retrying those Kafka or Redis did not take
 * and those another process is publishing right now (deferred) until they are settled.
 */
async function importBatch(
  ingest: (messages: readonly RawEmail[]) => Promise<IngestOutcome[]>,
  batch: readonly MailFileMessage[],
  report: Report,
): Promise<void> {
  let todo = [...batch];
  for (let attempt = 1; todo.length > 0; attempt++) {
    const outcomes = await ingest(
      todo.map((m) => ({ raw: m.raw, origin: { source: "import" as const, file: m.file, position: m.position } })),
    );
    const again: MailFileMessage[] = [];
    let wait = 1_000 * 2 ** Math.min(attempt, 5);
    outcomes.forEach((outcome, i) => {
      const message = todo[i]!;
      if (outcome.kind === "published") report.imported += 1;
      else if (outcome.kind === "duplicate") report.alreadyPresent += 1;
      else if (outcome.kind === "refused") {
        report.refused.set(outcome.reason, (report.refused.get(outcome.reason) ?? 0) + 1);
        console.log(`refused  ${where(message)}  ${outcome.reason}: ${outcome.detail}`);
      } else {
        if (outcome.kind === "deferred") wait = Math.max(1_000, Math.min(wait, outcome.retryAt - Date.now()));
        again.push(message);
      }
    });
    const failed = outcomes.find((o) => o.kind === "failed");
    if (again.length > 0 && failed?.kind === "failed" && attempt >= ATTEMPTS) {
      throw new ReportedError(
        `import-mail: ${again.length} messages not imported after ${ATTEMPTS} attempts (${failed.error}); ` +
          `${report.imported} imported so far. Run the command again when the services are back: what is already imported is not imported twice.`,
      );
    }
    todo = again;
    if (todo.length > 0) await sleep(wait);
  }
}

export function importMailCommand(program: Command, { config, log }: CliContext): void {
  program
    .command("import-mail <path>")
    .description(
      "back-fill email through the email connector's path: an mbox file, a .eml file or a folder of .eml files; each message once",
    )
    .action(async (target: string) => {
      const endpoints = resolveEndpoints(config);
      const found = findConnector("email");
      if (!found) throw new Error("the topology declares no email connector");
      const { topology, connector } = found;
      const intake = await createIntake(topology, connector, endpoints, log.child({ connector: connector.name }));
      const handle = openEmailIngest(
        connector.name,
        config,
        endpoints,
        intake,
        createConnectorMetrics(new Registry()),
        log.child({ connector: connector.name }),
      );
      const report: Report = { imported: 0, alreadyPresent: 0, refused: new Map() };
      let seen = 0;
      try {
        let batch: MailFileMessage[] = [];
        for await (const message of mailFileMessages(target)) {
          seen += 1;
          batch.push(message);
          if (batch.length === BATCH) {
            await importBatch(handle.ingest.ingest, batch, report);
            batch = [];
          }
        }
        await importBatch(handle.ingest.ingest, batch, report);
      } finally {
        await handle.close();
        await intake.close();
      }
      if (seen === 0)
        throw new ReportedError(`import-mail: no messages in ${target} (an mbox starts with a "From " line)`);
      const refused = [...report.refused].map(([reason, n]) => `${reason} ${n}`).join(", ");
      console.log(
        `${seen} messages: ${report.imported} imported, ${report.alreadyPresent} already present, ` +
          `${[...report.refused.values()].reduce((a, b) => a + b, 0)} refused${refused ? ` (${refused})` : ""}`,
      );
    });
}
