import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { RouteMetrics } from "./metrics.js";
import { RulesError, digestOf, loadRulesFile, parseRules } from "./rules-file.js";
import type { RoutingRules } from "./rules.js";

/** The rules in force, swapped atomically when the file changes to a valid version. */
export interface LiveRules {
  current(): RoutingRules;
  /** Why the file's current text was refused, until a valid version is applied. */
  lastError(): RulesError | undefined;
  /** Re-reads the file now; resolves once the read is applied or refused. */
  reload(): Promise<void>;
  close(): void;
}

export interface WatchOptions {
  readonly log: Logger;
  readonly metrics: Pick<RouteMetrics, "rulesReloads">;
  /** Fallback for file systems where change events are unreliable (network mounts, some containers). */
  readonly pollMs?: number;
  /** Editors write in several steps; reading once the events settle avoids refusing a half-written file. */
  readonly debounceMs?: number;
}

/**
 * Loads the rules file (a bad file is a start-up error) and keeps it applied: the folder is
 * watched, so an editor's write-and-rename is seen too, and the file is re-read on a poll. A new
 * text that fails validation is logged with its lines and refused; the previous rules keep running.
 */
export async function watchRules(
  file: string,
  { log, metrics, pollMs = 5_000, debounceMs = 100 }: WatchOptions,
): Promise<LiveRules> {
  let rules = await loadRulesFile(file);
  let refused: { digest: string; error: RulesError } | undefined;
  log.info({ file, digest: rules.digest }, "routing rules loaded");

  const readAndApply = async (): Promise<void> => {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      refuse(
        `unreadable:${(error as Error).message}`,
        new RulesError(file, [{ line: 1, column: 1, reason: `cannot read the file: ${(error as Error).message}` }]),
      );
      return;
    }
    const digest = digestOf(text);
    if (digest === rules.digest) {
      refused = undefined;
      return;
    }
    if (digest === refused?.digest) return;
    try {
      rules = parseRules(text, file);
    } catch (error) {
      if (!(error instanceof RulesError)) throw error;
      refuse(digest, error);
      return;
    }
    refused = undefined;
    metrics.rulesReloads.inc({ outcome: "applied" });
    log.info({ file, digest }, "routing rules reloaded");
  };

  const refuse = (digest: string, error: RulesError) => {
    if (digest === refused?.digest) return;
    refused = { digest, error };
    metrics.rulesReloads.inc({ outcome: "refused" });
    log.error(
      { file, problems: error.problems, digestInForce: rules.digest },
      "routing rules refused; the previous rules stay in force",
    );
  };

  // Reloads run one at a time; a change during a reload schedules one more.
  let chain = Promise.resolve();
  const reload = () => {
    chain = chain
      .then(readAndApply)
      .catch((error: unknown) => log.error({ file, error: (error as Error).message }, "routing rules reload failed"));
    return chain;
  };

  let debounce: NodeJS.Timeout | undefined;
  const onChange = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), debounceMs);
    debounce.unref();
  };

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path.dirname(file), { persistent: false }, (_event, name) => {
      if (!name || name === path.basename(file)) onChange();
    });
    watcher.on("error", (error) =>
      log.warn({ file, error: error.message }, "watching the routing rules failed; polling only"),
    );
  } catch (error) {
    log.warn({ file, error: (error as Error).message }, "cannot watch the routing rules; polling only");
  }
  const poll = setInterval(() => void reload(), pollMs);
  poll.unref();

  return {
    current: () => rules,
    lastError: () => refused?.error,
    reload,
    close() {
      clearInterval(poll);
      clearTimeout(debounce);
      watcher?.close();
    },
  };
}
