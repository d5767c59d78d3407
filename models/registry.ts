import path from "node:path";
import pg from "pg";
import type { Logger } from "pino";
import { backoffDelay } from "../streams/backoff.js";
import type { ModelSlot } from "./slot.js";

/** Schema of the registry tables (training/migrations/001_registry.sql); training reads SWITCHBOARD_REGISTRY_SCHEMA. */
export const REGISTRY_SCHEMA = "model_registry";

/** Longest wait before trying a refused production version again. */
const MAX_RETRY_MS = 5 * 60_000;

/** Production version directory of a registry model, or a clear error when none is promoted. */
export async function productionVersionDir(
  pool: pg.Pool,
  model: string,
  modelsDir: string,
  schema = REGISTRY_SCHEMA,
): Promise<string> {
  let rows: { artifact_path: string }[];
  try {
    ({ rows } = await pool.query<{ artifact_path: string }>(
      `SELECT artifact_path FROM ${pg.escapeIdentifier(schema)}.versions WHERE model = $1 AND stage = 'production'`,
      [model],
    ));
  } catch (error) {
    if ((error as { code?: string }).code === "42P01") {
      throw new Error(
        `the model registry (schema ${schema}) does not exist in this database: run \`python -m training migrate\``,
        { cause: error },
      );
    }
    throw new Error(
      `cannot read the production version of model ${model} from the registry: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const row = rows[0];
  if (!row)
    throw new Error(
      `model ${model} has no production version in the registry (schema ${schema}): train and promote one, e.g. \`switchboard train --task <task>\``,
    );
  const root = path.resolve(modelsDir);
  const directory = path.resolve(root, row.artifact_path);
  const relative = path.relative(root, directory);
  if (relative === "" || relative.split(path.sep)[0] === ".." || path.isAbsolute(relative)) {
    throw new Error(
      `the registry's artifact path of model ${model} (${row.artifact_path}) points outside the models directory ${root}`,
    );
  }
  return directory;
}

/**
 * Polls the registry every pollMs and hot-swaps the slot when production changes; logs (does
 * not throw) on a refused version, and tries a refused version again with a growing delay (up to
 * five minutes), so a fixed artifact is picked up without hammering on a broken one. Returns a
 * stop function.
 */
export function followProduction(
  slot: ModelSlot,
  pool: pg.Pool,
  model: string,
  modelsDir: string,
  pollMs: number,
  log: Logger,
  schema = REGISTRY_SCHEMA,
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let refused: { directory: string; failures: number; retryAt: number } | undefined;

  const poll = async (): Promise<void> => {
    let directory: string;
    try {
      directory = await productionVersionDir(pool, model, modelsDir, schema);
    } catch (error) {
      log.warn({ model, err: error }, "cannot look up the production model version; still serving the current one");
      return;
    }
    if (stopped || directory === slot.current.directory) return;
    if (refused?.directory === directory && Date.now() < refused.retryAt) return;
    try {
      await slot.swap(directory);
      refused = undefined;
    } catch (error) {
      const failures = refused?.directory === directory ? refused.failures + 1 : 1;
      const retryInMs = backoffDelay(failures, { initialMs: pollMs, maxMs: MAX_RETRY_MS, jitter: false });
      refused = { directory, failures, retryAt: Date.now() + retryInMs };
      log.error(
        { model, directory, failures, retryInMs, serving: slot.current.version, err: error },
        "production model version refused; the current one keeps serving",
      );
    }
  };

  const schedule = (): void => {
    timer = setTimeout(() => {
      void poll().finally(() => {
        if (!stopped) schedule();
      });
    }, pollMs);
    timer.unref();
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export interface RegisteredVersion {
  readonly model: string;
  readonly task: string;
  readonly version: string;
  readonly family: string;
  readonly stage: "candidate" | "production" | "archived";
  /** Absolute version directory. */
  readonly directory: string;
  readonly createdAt: Date;
}

/** Every registered version of every model, oldest first. */
export async function registeredVersions(
  pool: pg.Pool,
  modelsDir: string,
  schema = REGISTRY_SCHEMA,
): Promise<RegisteredVersion[]> {
  const registry = pg.escapeIdentifier(schema);
  const { rows } = await pool.query<{
    model: string;
    task: string;
    version: string;
    family: string;
    stage: RegisteredVersion["stage"];
    artifact_path: string;
    created_at: Date;
  }>(
    `SELECT v.model, m.task, v.version, v.family, v.stage, v.artifact_path, v.created_at
       FROM ${registry}.versions v JOIN ${registry}.models m ON m.name = v.model
      ORDER BY v.model, v.created_at, v.version`,
  );
  return rows.map((row) => ({
    model: row.model,
    task: row.task,
    version: row.version,
    family: row.family,
    stage: row.stage,
    directory: path.resolve(modelsDir, row.artifact_path),
    createdAt: row.created_at,
  }));
}
