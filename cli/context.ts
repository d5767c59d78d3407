import type { Logger } from "pino";
import type { Config } from "../config/settings.js";

/** What every command gets: validated configuration and the logger. */
export interface CliContext {
  readonly config: Config;
  readonly log: Logger;
}
