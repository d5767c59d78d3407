import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { Logger } from "pino";
import { REPO_ROOT, type Config } from "../config/settings.js";
import { SAMPLE_INQUIRIES, datasetInquiries, toInquiry, type DemoDataset } from "./samples/index.js";
import { registerSchema } from "../schemas/registry.js";
import { localServices, resolveEndpoints, stackPorts } from "../stack/index.js";
import { createSupervisor } from "../stack/supervisor.js";
import { createPool, migrate } from "../storage/postgres.js";
import { createKafka } from "../streams/kafka.js";
import { createTopics } from "../streams/topics.js";
import { TRIAGE } from "../streams/topology.js";
import type { CliContext } from "./context.js";
import { streamDemo } from "./demo.js";
import { ensureDemoApiKey } from "../connectors/api/keys.js";
import { demoIngest } from "./ingest-demo.js";
import { localApiKeyFile, localChatEnv, localWebhookEnv } from "./local-access.js";
import {
  runnableConnector,
  deployedRunnables,
  spawnProcessor,
  stopProcessor,
  waitHealthy,
  type Runnable,
} from "./processes.js";
import { ensurePythonEnv, pythonEnvOptions } from "./python-env.js";
import { schemaTargets } from "./schemas.js";
import { configuredTopologies } from "./topics.js";

/** Topics, schemas and PostgreSQL tables: idempotent, safe on every start. */
async function setup(config: Config, log: Logger): Promise<void> {
  const endpoints = resolveEndpoints(config);
  const kafka = createKafka(endpoints, "switchboard-setup", log);
  for (const topology of configuredTopologies(config)) await createTopics(kafka, topology, log);
  for (const target of schemaTargets()) await registerSchema(endpoints, target);
  const pool = createPool(endpoints, "switchboard-setup");
  try {
    await migrate(pool, log);
  } finally {
    await pool.end();
  }
}

/**
 * Trains classify's models for inquiries not in English (`switchboard multilingual-defaults`:
 * the multilingual encoder's heads, minutes of CPU) in a child process while the pipeline serves,
 * logging to `<stack home>/logs/multilingual-defaults.log`: `npm start` stays quick, and classify
 * picks the pair up once both are promoted (it looks every model poll interval). Nothing is
 * trained when both are already in production. Returns the child, to stop with the pipeline.
 */
function trainMultilingualInBackground(config: Config, log: Logger): ChildProcess {
  const file = path.join(config.stackHome, "logs", "multilingual-defaults.log");
  const out = openSync(file, "a");
  const child = spawn(process.execPath, [path.join(REPO_ROOT, "bin", "switchboard.js"), "multilingual-defaults"], {
    stdio: ["ignore", out, out],
  });
  closeSync(out);
  console.log(`training the models for inquiries not in English in the background (a few minutes; log: ${file}); until both are promoted, every language gets the English models`);
  child.once("error", (error) => log.warn({ err: error.message, log: file }, "multilingual models: the background training could not start"));
  child.once("exit", (code, signal) => {
    if (code === 0) console.log(`multilingual models in production: classify serves them for inquiries not in English within a model poll interval (${file})`);
    else if (signal === null) log.warn({ exitCode: code, log: file }, "multilingual models: the background training failed; every language keeps the English models");
  });
  return child;
}

/** Runs another `switchboard` command as a child process with this one's output, failing on a non-zero exit. */
function switchboard(args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, "bin", "switchboard.js"), ...args], {
      stdio: "inherit",
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`switchboard ${args.join(" ")} exited with ${code}`)),
    );
  });
}

/**
 * Everything the processors need before they start: topics, schemas, tables, a production model
 * for every model-running processor (trained now when the registry has none, in the Python
 * environment made first if need be) and the knowledge base.
 */
async function prepare(config: Config, log: Logger): Promise<void> {
  await setup(config, log);
  await ensurePythonEnv({ ...pythonEnvOptions(config, log), quietWhenReady: true });
  await switchboard(["train", "--defaults"]);
  await switchboard(["kb", "load"]);
}

/**
 * What `up` starts, each as `switchboard run <name>` in its own process, logging to
 * `<stack home>/logs/processors/<name>.log`: the triage chain, the processors in no chain (the
 * sinks), and every connector.
 */
function upRunnables(): Runnable[] {
  return [...deployedRunnables(TRIAGE), ...TRIAGE.connectors.map(runnableConnector)];
}

/** Where the main job's API answers, for the demo and the lines it prints. */
const API_URL = `http://localhost:${TRIAGE.connectors.find((c) => c.name === "api")!.port}`;
/** Where the chat gateway serves the customer chat page. */
const CHAT_URL = `http://localhost:${TRIAGE.connectors.find((c) => c.name === "chat")!.port}`;

/** The main job's API key for the person at this machine (made once, shown on every start). */
async function localApiKey(config: Config): Promise<string> {
  const pool = createPool(resolveEndpoints(config), "switchboard-up");
  try {
    return (await ensureDemoApiKey(pool, localApiKeyFile(config.stackHome))).token;
  } finally {
    await pool.end();
  }
}

function printWaysIn(config: Config): void {
  const key = `"Authorization: Bearer $(cat ${path.relative(process.cwd(), localApiKeyFile(config.stackHome)) || localApiKeyFile(config.stackHome)})"`;
  console.log(
    [
      "",
      `ways in (an API key with every scope is in ${localApiKeyFile(config.stackHome)}; docs at ${API_URL}/docs):`,
      `  curl -s -X POST ${API_URL}/v1/inquiries -H ${key} -H 'Content-Type: application/json' \\`,
      `       -d '{"subject":"Order 48213 never arrived","body":"My kettle has not arrived after two weeks."}'`,
      `  curl -s ${API_URL}/v1/inquiries/<inquiry_id> -H ${key}`,
      "  npx switchboard webhook send generic test/fixtures/tickets/generic-ticket-created.json",
      "  npx switchboard import-mail test/fixtures/email/01-plain-order-late.eml   (or mail into the local Dovecot: see README)",
      "",
      "pages:",
      `  customer chat:  ${CHAT_URL}/chat   (ask a question; the drafted reply comes back on the page)`,
      `  agent console:  ${API_URL}/console   (sign in with the key in ${localApiKeyFile(config.stackHome)})`,
    ].join("\n"),
  );
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
    .description(
      "create every topic, register every schema and migrate PostgreSQL (idempotent; `prepare` and `up` do this too)",
    )
    .action(async () => setup(config, log));

  program
    .command("prepare")
    .description("setup, then train default models when none is in production and load the knowledge base (idempotent)")
    .action(async () => prepare(config, log));

  program
    .command("up")
    .description(
      "the main job: Python environment, local stack, prepare, every triage processor and connector, then a live demo; Ctrl-C stops them",
    )
    .option("--no-demo", "start everything without streaming the sample inquiries")
    .option("--no-multilingual", "do not train the models for inquiries not in English in the background")
    .option(
      "--exit-after-demo",
      "non-interactive: stop the processes after the demo and exit 0 only if every sample inquiry, and one by each connector, was answered",
    )
    .action(async (options: { demo: boolean; multilingual: boolean; exitAfterDemo?: boolean }) => {
      if (options.exitAfterDemo && !options.demo)
        throw new Error("--exit-after-demo needs the demo (leave out --no-demo)");
      await ensurePythonEnv(pythonEnvOptions(config, log));
      await createSupervisor(config.stackHome, stackPorts(config), log).up(localServices(config));
      await prepare(config, log);
      const endpoints = resolveEndpoints(config);
      const apiKey = await localApiKey(config);
      // A signal from now on (Ctrl-C, or SIGTERM from a supervisor or CI) stops the processes first.
      const stopped = new Promise<NodeJS.Signals>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      const env = { ...process.env, ...localWebhookEnv(config), ...localChatEnv(config) };
      const processes = upRunnables().map((r) => spawnProcessor(r, config.stackHome, env));
      const stopAll = () => Promise.all(processes.map(stopProcessor));
      /** Runs `step` unless a signal comes first, which stops the processes and exits. */
      const unlessStopped = async <T>(step: Promise<T>): Promise<T> => {
        const outcome = await Promise.race([step.then((value) => ({ value })), stopped]);
        if (typeof outcome === "object") return outcome.value;
        await stopAll();
        process.exit(outcome === "SIGINT" ? 130 : 143);
      };
      const logs = path.join(config.stackHome, "logs", "processors");
      const inquiries = options.demo ? demoInquiries({}) : [];
      let answered = 0;
      let ingest = { sent: 0, answered: 0 };
      try {
        await unlessStopped(Promise.all(processes.map((p) => waitHealthy(p, p.declaration.port, 180_000))));
        console.log(
          `${processes.length} processes running (logs in ${logs}); /healthz and /metrics at ports ${processes.map((p) => p.declaration.port).join(", ")}`,
        );
        if (options.demo) {
          answered = await unlessStopped(streamDemo(endpoints, log, inquiries));
          ingest = await unlessStopped(demoIngest(config, endpoints, API_URL, apiKey, CHAT_URL));
        }
        printWaysIn(config);
      } catch (error) {
        await stopAll();
        throw error;
      }
      if (options.exitAfterDemo) {
        await stopAll();
        if (answered < inquiries.length || ingest.answered < ingest.sent) {
          console.error(
            `main job failed: ${answered} of ${inquiries.length} sample inquiries and ${ingest.answered} of ${ingest.sent} through the connectors answered (logs in ${logs})`,
          );
          process.exitCode = 1;
        } else {
          console.log(
            `main job done: all ${inquiries.length} sample inquiries and all ${ingest.sent} through the connectors answered; processes stopped (\`switchboard stack down\` stops the services)`,
          );
        }
        return;
      }
      const multilingual = options.multilingual ? trainMultilingualInBackground(config, log) : undefined;
      console.log(
        "running; `switchboard demo` in another terminal streams more; Ctrl-C stops the processors (`switchboard stack down` stops the services)",
      );
      await stopped;
      multilingual?.kill("SIGTERM");
      await stopAll();
    });

  program
    .command("demo")
    .description("stream inquiries through the running pipeline and print each routed decision and reply as it arrives")
    .option("-n, --count <n>", "how many inquiries (default: every sample, or 50 dataset rows)", (v) => Number(v))
    .option(
      "-d, --dataset <name>",
      "stream rows of a dataset instead of the samples: bitext, tickets, airline, clinc150",
    )
    .action(async (options: { count?: number; dataset?: DemoDataset }) => {
      const inquiries = demoInquiries(options);
      if ((await streamDemo(resolveEndpoints(config), log, inquiries)) < inquiries.length) process.exitCode = 1;
    });
}
