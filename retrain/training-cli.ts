import { spawn, type ChildProcess } from "node:child_process";
import type { Logger } from "pino";
import { REPO_ROOT } from "../config/settings.js";

/** One JSON line of the training CLI's `--json` output (training/cli.py). */
export type CliEvent = Readonly<Record<string, unknown>> & { readonly event: string };

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly events: readonly CliEvent[];
  /** The last lines of stderr (the CLI's human log), for the failure's reason. */
  readonly stderrTail: readonly string[];
}

export interface TrainingCli {
  /** Runs `python -m training <args>`; `onEvent` sees each stdout JSON line as it comes, `onLog` each stderr line. */
  run(args: readonly string[], handlers?: { onEvent?: (event: CliEvent) => void | Promise<void>; onLog?: (line: string) => void }): Promise<CliRun>;
  /** SIGTERM to every run under way, and no run started after it; resolves once they exited. */
  stopAll(): Promise<void>;
}

const TAIL_LINES = 20;

/**
 * The training package as `retrain` runs it: the repository's Python (`python`), the registry
 * and models directory in `env`. stdout carries JSON lines only; stderr is the package's log,
 * relayed line by line to `log`.
 */
export function trainingCli(python: () => Promise<string>, env: NodeJS.ProcessEnv, log: Logger): TrainingCli {
  const running = new Set<ChildProcess>();
  let stopped = false;
  return {
    async run(args, handlers = {}) {
      const executable = await python();
      // Asked for before stopAll but not yet spawned (the caller or python() was still awaiting): it
      // ends as stopAll would have ended it, or the stop would wait for a whole training.
      if (stopped) return { code: null, signal: "SIGTERM", events: [], stderrTail: [] };
      return new Promise<CliRun>((resolve, reject) => {
        const child = spawn(executable, ["-m", "training", ...args], {
          cwd: REPO_ROOT,
          // SWITCHBOARD_PARENT_PID: the run ends when this process does, even by SIGKILL (training/limits.py).
          env: { ...process.env, ...env, PYTHONUNBUFFERED: "1", SWITCHBOARD_PARENT_PID: String(process.pid) },
          stdio: ["ignore", "pipe", "pipe"],
        });
        running.add(child);
        const events: CliEvent[] = [];
        const stderrTail: string[] = [];
        // Events are handled in order, each after the one before it.
        let handling: Promise<void> = Promise.resolve();
        let handlerError: unknown;
        const lines = (onLine: (line: string) => void) => {
          let partial = "";
          return {
            data: (chunk: Buffer) => {
              const split = (partial + chunk.toString("utf8")).split("\n");
              partial = split.pop() ?? "";
              for (const line of split) if (line.trim()) onLine(line);
            },
            end: () => partial.trim() && onLine(partial),
          };
        };
        const out = lines((line) => {
          let event: CliEvent;
          try {
            event = JSON.parse(line) as CliEvent;
          } catch {
            log.warn({ line }, "training CLI wrote a line that is not JSON on stdout");
            return;
          }
          events.push(event);
          handling = handling.then(async () => {
            if (handlerError === undefined) await handlers.onEvent?.(event);
          }).catch((error: unknown) => void (handlerError ??= error));
        });
        const err = lines((line) => {
          stderrTail.push(line);
          if (stderrTail.length > TAIL_LINES) stderrTail.shift();
          handlers.onLog?.(line);
        });
        child.stdout.on("data", out.data);
        child.stderr.on("data", err.data);
        child.once("error", (error) => {
          running.delete(child);
          reject(new Error(`could not start ${executable} -m training ${args[0] ?? ""}: ${error.message}`, { cause: error }));
        });
        child.once("close", (code, signal) => {
          running.delete(child);
          out.end();
          err.end();
          void handling.then(() => {
            if (handlerError !== undefined) reject(handlerError instanceof Error ? handlerError : new Error(String(handlerError)));
            else resolve({ code, signal, events, stderrTail });
          });
        });
      });
    },

    async stopAll() {
      stopped = true;
      const exits = [...running].map((child) => new Promise<void>((resolve) => {
        child.once("close", () => resolve());
        child.kill("SIGTERM");
      }));
      await Promise.all(exits);
    },
  };
}

/** Why a run failed, in one line: its `failed` JSON line, else its last error-looking log line, else its exit. */
export function failureOf(run: CliRun): string {
  const exit = run.signal ? `killed by ${run.signal}` : `exit code ${run.code}`;
  const failed = [...run.events].reverse().find((e) => e.event === "failed");
  if (failed) return `${exit}: ${String(failed.error)}${failed.limit ? ` (${String(failed.limit)} limit)` : ""}`;
  const last = [...run.stderrTail].reverse().find((line) => /error|exceeded|limit|failed|traceback/i.test(line)) ?? run.stderrTail.at(-1);
  return last ? `${exit}: ${last.trim()}` : exit;
}
