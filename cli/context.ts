import type { Logger } from "pino";
import type { Config } from "../config/settings.js";

/** What every command gets: validated configuration and the logger. */
export interface CliContext {
  readonly config: Config;
  readonly log: Logger;
}

/**
 * A failure whose message says all a person needs (what failed, where its log is): the CLI
 * prints the message alone, without a stack trace.
 */
export class ReportedError extends Error {
  override name = "ReportedError";
}
