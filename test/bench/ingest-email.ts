import { pathToFileURL } from "node:url";
import { parseEmail } from "../../connectors/email/mime.js";
import { loadEmailFixtures, uniquify } from "../support/email-fixtures.js";
import { percentile } from "./measure.js";

/**
 * Emails parsed per second through the connector's mapping (structure scan, mailparser, the
 * inquiry), on one core, over the 25 fixtures: replies, HTML, charsets, attachments and the
 * refused ones alike. Parsing only: IMAP, Redis and Kafka are measured by the pipeline benchmark.
 * `BENCH_SECONDS` (default 5) sets how long; `npm run bench:ingest` calls `benchEmailParsing`.
 */

export const EMAIL_PARSE_TARGET_PER_SECOND = 100;

export interface EmailParseBench {
  readonly emailsPerSecond: number;
  readonly messages: number;
  readonly megabytesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly refused: number;
  readonly targetMet: boolean;
}

export async function benchEmailParsing(seconds = Number(process.env.BENCH_SECONDS ?? 5)): Promise<EmailParseBench> {
  // Run-unique ids per round, as distinct messages are, so nothing is parsed from a cache.
  const fixtures = loadEmailFixtures().map((f) => f.raw);
  const options = { maxBytes: 26_214_400 };
  for (const raw of fixtures) await parseEmail(raw, { source: "imap" }, options); // warm-up
  const latencies: number[] = [];
  let bytes = 0;
  let refused = 0;
  const started = performance.now();
  for (let round = 0; performance.now() - started < seconds * 1000; round++) {
    for (const raw of fixtures.map((f) => uniquify(f, `bench${round}`))) {
      const t0 = performance.now();
      const verdict = await parseEmail(raw, { source: "imap", mailbox: "INBOX", uid: round }, options);
      latencies.push(performance.now() - t0);
      bytes += raw.length;
      if (!verdict.ok) refused += 1;
    }
  }
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const emailsPerSecond = latencies.length / elapsed;
  return {
    emailsPerSecond,
    messages: latencies.length,
    megabytesPerSecond: bytes / elapsed / 1_048_576,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    refused,
    targetMet: emailsPerSecond >= EMAIL_PARSE_TARGET_PER_SECOND,
  };
}

export function printEmailParsing(result: EmailParseBench): void {
  console.log("\nEmail parsing (connectors/email/mime.ts, one core, the 25 fixtures)");
  console.table({
    "emails/s": result.emailsPerSecond.toFixed(0),
    messages: result.messages,
    "MB/s": result.megabytesPerSecond.toFixed(1),
    "p50 ms": result.p50Ms.toFixed(2),
    "p99 ms": result.p99Ms.toFixed(2),
    refused: result.refused,
  });
  console.log(`target: ≥ ${EMAIL_PARSE_TARGET_PER_SECOND} emails/s parsed: ${result.targetMet ? "met" : "NOT met"}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  printEmailParsing(await benchEmailParsing());
}
