import { spawn } from "node:child_process";
import type { Command } from "commander";
import { REPO_ROOT } from "../config/settings.js";
import { resolveEndpoints } from "../stack/index.js";
import type { CliContext } from "./context.js";
import { ensurePythonEnv, pythonEnvOptions } from "./python-env.js";
import { libpqDatabaseUrl } from "../config/security.js";
import { liveModels } from "./live-quality.js";

/** The training package's commands, each run as `python3 -m training <command> <arguments>`. */
const TRAINING_COMMANDS: Readonly<Record<string, string>> = {
  train: "train models, register them as candidates and run the promotion gate (`--defaults`: whatever the pipeline lacks)",
  "multilingual-defaults": "give classify's models for inquiries not in English a production version where they have none (minutes; `up` runs it in the background)",
  evaluate: "held-out metrics of the newest model versions, through onnxruntime",
  promote: "run the promotion gate for a version, or for every candidate; `--after-shadow`: put the shadow version in production",
  reject: "archive a shadow or candidate version, recording why",
  rollback: "restore the previous production version of a model",
  models: "list registered model versions, or a model's gate decisions (`--live`: live quality of the served versions, `switchboard models --live --help`)",
};

/** Exit code of a shell for a command that cannot be found. */
const COMMAND_NOT_FOUND = 127;

/**
 * Runs one training command with inherited stdio and resolves to its exit code. Ctrl-C reaches
 * Python directly (same terminal), so this process ignores it and waits for Python to finish;
 * SIGTERM is forwarded.
 */
function runTraining(python: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(python, ["-m", "training", command, ...args], { cwd: REPO_ROOT, env, stdio: "inherit" });
    const ignoreInterrupt = () => undefined;
    const forwardTerminate = () => child.kill("SIGTERM");
    process.on("SIGINT", ignoreInterrupt);
    process.on("SIGTERM", forwardTerminate);
    const settle = (code: number) => {
      process.off("SIGINT", ignoreInterrupt);
      process.off("SIGTERM", forwardTerminate);
      resolve(code);
    };
    child.once("error", (error: NodeJS.ErrnoException) => {
      console.error(`could not start ${python} -m training ${command}: ${error.message}`);
      settle(COMMAND_NOT_FOUND);
    });
    child.once("exit", (code, signal) => settle(code ?? (signal === "SIGINT" ? 130 : 143)));
  });
}

/**
 * `switchboard train|evaluate|promote|reject|rollback|models ...`: thin wrappers around the Python
 * training package. Every argument, `--help` included, goes to Python unchanged; the registry
 * URL and the models directory come from Switchboard's configuration, and the exit code passes
 * through. Python is the repository's `.venv`, made or brought up to date first (progress on
 * stderr, so that a command's own output stays as it is). `models --live` is the exception: live
 * quality is read from the feedback store by Node (cli/live-quality.ts), without Python.
 */
export function trainingCommands(program: Command, { config, log }: CliContext): void {
  for (const [name, description] of Object.entries(TRAINING_COMMANDS)) {
    program
      .command(name)
      .description(`${description}; \`switchboard ${name} --help\` lists its options`)
      .argument("[arguments...]", `passed to \`python3 -m training ${name}\``)
      .helpOption(false)
      .allowUnknownOption()
      .action(async (args: string[]) => {
        if (name === "models" && args.includes("--live")) return liveModels(args, config);
        const env = {
          ...process.env,
          DATABASE_URL: libpqDatabaseUrl(resolveEndpoints(config).databaseUrl, config.postgresCaFile),
          SWITCHBOARD_MODELS_DIR: config.modelsDir,
          SWITCHBOARD_TRAINING_PROG: "switchboard",
        };
        const { python } = await ensurePythonEnv({
          ...pythonEnvOptions(config, log),
          quietWhenReady: true,
          write: (line) => process.stderr.write(`${line}\n`),
        });
        process.exitCode = await runTraining(python, name, args, env);
      });
  }
}
