import type { Command } from "commander";
import { resolveEndpoints } from "../stack/index.js";
import { listDlq, replayDlq } from "../streams/dlq-tools.js";
import { createKafka } from "../streams/kafka.js";
import type { CliContext } from "./context.js";

export function dlqCommands(program: Command, { config, log }: CliContext): void {
  const kafka = () => createKafka(resolveEndpoints(config), "switchboard-dlq", log);
  const dlq = program.command("dlq").description("dead-letter queues: <topic>.dlq");
  dlq
    .command("list <topic>")
    .description("show the records of <topic>.dlq with why each failed")
    .action(async (topic: string) => {
      const records = await listDlq(kafka(), topic);
      if (records.length === 0) console.log(`${topic}.dlq is empty`);
      else console.table(records);
    });
  dlq
    .command("replay <topic>")
    .description("re-inject <topic>.dlq records into <topic> once their cause is fixed (each record once)")
    .action(async (topic: string) => {
      const replayed = await replayDlq(kafka(), topic, log);
      console.log(`replayed ${replayed} record(s) from ${topic}.dlq into ${topic}`);
    });
}
