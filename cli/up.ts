import { spawn } from "node:child_process";
import path from "node:path";
import type { Command } from "commander";
import type { Logger } from "pino";
import { REPO_ROOT, type Config } from "../config/settings.js";
import { SAMPLE_INQUIRIES, datasetInquiries, toInquiry, type DemoDataset } from "./samples/index.js";
import { registerSchema } from "../schemas/registry.js";
import { localServices, resolveEndpoints, stackPorts, type Endpoints } from "../stack/index.js";
import { createSupervisor } from "../stack/supervisor.js";
import { createPool, migrate } from "../storage/postgres.js";
import { createKafka } from "../streams/kafka.js";
import { createTopics } from "../streams/topics.js";
import { TOPOLOGIES, TRIAGE } from "../streams/topology.js";
import type { CliContext } from "./context.js";
import { streamDemo } from "./demo.js";
import { runnableProcessor, spawnProcessor, stopProcessor, waitHealthy } from "./processes.js";
import { schemaTargets } from "./schemas.js";

/** Topics, schemas and PostgreSQL tables: idempotent, safe on every start. */
async function setup(endpoints: Endpoints, log: Logger): Promise<void> {
  const kafka = createKafka(endpoints.kafkaBrokers, "switchboard-setup", log);
  for (const topology of TOPOLOGIES) await createTopics(kafka, topology, log);
  for (const target of schemaTargets()) await registerSchema(endpoints.schemaRegistryUrl, target);
  const pool = createPool(endpoints.databaseUrl, "switchboard-setup");
  try {
    await migrate(pool, log);
  } finally {
    await pool.end();
  }
}

/** Runs another `switchboard` command as a child process with this one's output, failing on a non-zero exit. */
function switchboard(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, "bin", "switchboard.js"), ...args], { stdio: "inherit" });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`switchboard ${args.join(" ")} exited with ${code}`))));
  });
}

/**
 * Everything the processors need before they start: topics, schemas, tables, a production model
 * for every model-running processor (trained now when the registry has none) and the knowledge base.
 */
async function prepare(config: Config, log: Logger): Promise<void> {
  await setup(resolveEndpoints(config), log);
  await switchboard(["train", "--defaults"]);
  await switchboard(["kb", "load"]);
}

/** The inquiries a demo streams: the samples written for the project, or rows of a dataset. */
function demoInquiries(options: { count?: number; dataset?: DemoDataset }) {
  if (options.dataset) return datasetInquiries(options.dataset, options.count ?? 50);
  const count = options.count ?? SAMPLE_INQUIRIES.length;
  return Array.from({ length: count }, (_, i) => toInquiry(SAMPLE_INQUIRIES[i % SAMPLE_INQUIRIES.length]!));
}

export function upCommand(program: Command, { config, log }: CliContext): void {
  program
    .command("setup")
    .description("create every topic, register every schema and migrate PostgreSQL (idempotent; `prepare` and `up` do this too)")
    .action(async () => setup(resolveEndpoints(config), log));

  program
    .command("prepare")
    .description("setup, then train default models when none is in production and load the knowledge base (idempotent)")
    .action(async () => prepare(config, log));

  program
    .command("up")
    .description("the main job: local stack, prepare, every triage processor, then a live demo; Ctrl-C stops the processors")
    .option("--no-demo", "start everything without streaming the sample inquiries")
    .action(async (options: { demo: boolean }) => {
      await createSupervisor(config.stackHome, stackPorts(config), log).up(localServices(config));
      await prepare(config, log);
      const processes = TRIAGE.processors.map((p) => spawnProcessor(runnableProcessor(p), config.stackHome));
      const stopAll = () => Promise.all(processes.map(stopProcessor));
      try {
        await Promise.all(processes.map((p) => waitHealthy(p, p.declaration.port, 180_000)));
        console.log(`${processes.length} processors running (logs in ${path.join(config.stackHome, "logs", "processors")}); /metrics at ports ${processes.map((p) => p.declaration.port).join(", ")}`);
        if (options.demo) await streamDemo(resolveEndpoints(config), log, demoInquiries({}));
      } catch (error) {
        await stopAll();
        throw error;
      }
      console.log("running; `switchboard demo` in another terminal streams more; Ctrl-C stops the processors (`switchboard stack down` stops the services)");
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await stopAll();
    });

  program
    .command("demo")
    .description("stream inquiries through the running pipeline and print each routed decision and reply as it arrives")
    .option("-n, --count <n>", "how many inquiries (default: every sample, or 50 dataset rows)", (v) => Number(v))
    .option("-d, --dataset <name>", "stream rows of a dataset instead of the samples: bitext, tickets, airline, clinc150")
    .action(async (options: { count?: number; dataset?: DemoDataset }) => streamDemo(resolveEndpoints(config), log, demoInquiries(options)));
}
