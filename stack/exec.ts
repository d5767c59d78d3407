import { spawn } from "node:child_process";

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Text written to the child's stdin (e.g. a SQL script). */
  readonly input?: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly output: string,
  ) {
    super(`\`${command}\` exited with ${exitCode ?? "a signal"}: ${output.trim().split("\n").slice(-15).join("\n")}`);
    this.name = "CommandError";
  }
}

/** Runs a short command to completion and returns its stdout; throws CommandError with its output on failure. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("error", (error) => reject(new CommandError([command, ...args].join(" "), null, error.message)));
    child.on("close", (code) => {
      if (code === 0) resolve(stdout);
      else reject(new CommandError([command, ...args].join(" "), code, output));
    });
    // A child that exits without reading its stdin makes the write fail with EPIPE; its exit code
    // is what counts, so the pipe error must not become an unhandled 'error' event.
    child.stdin.on("error", () => undefined);
    if (options.input === undefined) child.stdin.end();
    else child.stdin.end(options.input);
  });
}
