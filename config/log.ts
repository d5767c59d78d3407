import pino, { type Logger } from "pino";
import type { Config } from "./settings.js";

/** Structured JSON logs on stderr, so stdout stays free for command output (tables, demo lines). */
export function createLogger(config: Pick<Config, "logLevel">, name = "switchboard"): Logger {
  return pino({ name, level: config.logLevel }, pino.destination(2));
}
