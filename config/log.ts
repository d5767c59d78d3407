import pino, { type Logger } from "pino";
import PinoPretty from "pino-pretty";
import type { Config } from "./settings.js";

type LogSettings = Pick<Config, "logLevel"> & Partial<Pick<Config, "logFormat">>;

/** Whether logs are for a person: LOG_FORMAT=pretty, or (auto) stderr is a terminal outside CI. */
export function prettyLogs(
  format: Config["logFormat"] = "auto",
  stderrIsTTY = process.stderr.isTTY === true,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (format !== "auto") return format === "pretty";
  const ci = env.CI !== undefined && env.CI !== "" && env.CI !== "0" && env.CI.toLowerCase() !== "false";
  return stderrIsTTY && !ci;
}

/** An event's message, with the message of the error it carries (the stack stays in the JSON logs). */
function messageWithError(log: Record<string, unknown>, messageKey: string): string {
  const message = String(log[messageKey] ?? "");
  const err = log.err as { type?: unknown; message?: unknown } | undefined;
  if (!err || typeof err !== "object" || !err.message) return message;
  return `${message}${message ? ": " : ""}${typeof err.type === "string" && err.type !== "Error" ? `${err.type}: ` : ""}${String(err.message)}`;
}

/** The pino-pretty stream of a terminal: one line per event, written synchronously in this thread. */
export function prettyStream(destination: number | NodeJS.WritableStream = 2, colorize?: boolean) {
  return PinoPretty({
    destination,
    sync: true,
    singleLine: true,
    translateTime: "SYS:HH:MM:ss.l",
    messageFormat: messageWithError,
    // Stacks are many lines; the message is in the line and the stack in LOG_FORMAT=json.
    ignore: "err,kafka.stack",
    ...(colorize === undefined ? {} : { colorize }),
  });
}

/**
 * Logs on stderr, so stdout stays free for command output (tables, demo lines). JSON, one object
 * a line, for machines (files, pipes, CI; the processors `up` starts log to files); on a
 * terminal, one coloured line per event (time, level, message, then the event's fields).
 */
export function createLogger(config: LogSettings, name = "switchboard"): Logger {
  if (!prettyLogs(config.logFormat)) return pino({ name, level: config.logLevel }, pino.destination(2));
  // On a terminal, no name, pid or hostname of this process: one short line per event.
  return pino({ level: config.logLevel, base: null }, prettyStream());
}
