import path from "node:path";
import pg from "pg";

/** Schema of the registry tables (training/migrations/001_registry.sql); training reads SWITCHBOARD_REGISTRY_SCHEMA. */
export const REGISTRY_SCHEMA = "model_registry";

/** The registry stages a version is served from: production answers, a shadow scores the same inputs beside it. */
export type ServedStage = "production" | "shadow";

/** Production version directory of a registry model, or a clear error when none is promoted. */
export async function productionVersionDir(
  pool: pg.Pool,
  model: string,
  modelsDir: string,
  schema = REGISTRY_SCHEMA,
): Promise<string> {
  const directory = await stageVersionDir(pool, model, "production", modelsDir, schema);
  if (directory === undefined)
    throw new Error(
      `model ${model} has no production version in the registry (schema ${schema}): train and promote one, e.g. \`switchboard train --task <task>\``,
    );
  return directory;
}

/** Shadow version directory of a registry model, if it has one (at most one: training/migrations/003). */
export function shadowVersionDir(
  pool: pg.Pool,
  model: string,
  modelsDir: string,
  schema = REGISTRY_SCHEMA,
): Promise<string | undefined> {
  return stageVersionDir(pool, model, "shadow", modelsDir, schema);
}

async function stageVersionDir(
  pool: pg.Pool,
  model: string,
  stage: ServedStage,
  modelsDir: string,
  schema: string,
): Promise<string | undefined> {
  let rows: { artifact_path: string }[];
  try {
    ({ rows } = await pool.query<{ artifact_path: string }>(
      `SELECT artifact_path FROM ${pg.escapeIdentifier(schema)}.versions WHERE model = $1 AND stage IN ($2)`,
      [model, stage],
    ));
  } catch (error) {
    if ((error as { code?: string }).code === "42P01") {
      throw new Error(
        `the model registry (schema ${schema}) does not exist in this database: run \`python -m training migrate\``,
        { cause: error },
      );
    }
    throw new Error(
      `cannot read the ${stage} version of model ${model} from the registry: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const row = rows[0];
  if (!row) return undefined;
  const root = path.resolve(modelsDir);
  const directory = path.resolve(root, row.artifact_path);
  const relative = path.relative(root, directory);
  if (relative === "" || relative.split(path.sep)[0] === ".." || path.isAbsolute(relative)) {
    throw new Error(
      `the registry's artifact path of the ${stage} version of model ${model} (${row.artifact_path}) points outside the models directory ${root}`,
    );
  }
  return directory;
}

export interface RegisteredVersion {
  readonly model: string;
  readonly task: string;
  readonly version: string;
  readonly family: string;
  readonly stage: "candidate" | "shadow" | "production" | "archived";
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
