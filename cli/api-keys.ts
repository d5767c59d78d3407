import type { Command } from "commander";
import type pg from "pg";
import { SCOPES, createApiKey, listApiKeys, parseScopes, revokeApiKey } from "../connectors/api/keys.js";
import { resolveEndpoints } from "../stack/index.js";
import { createPool } from "../storage/postgres.js";
import { ReportedError, type CliContext } from "./context.js";

/** `switchboard api-keys create|list|revoke`: the REST API's keys, stored hashed in PostgreSQL. */
export function apiKeyCommands(program: Command, { config }: CliContext): void {
  const withPool = async (work: (pool: pg.Pool) => Promise<void>) => {
    const pool = createPool(resolveEndpoints(config), "switchboard-api-keys");
    try {
      await work(pool);
    } finally {
      await pool.end();
    }
  };
  const keys = program.command("api-keys").description("API keys of the REST API (stored hashed in PostgreSQL)");
  keys
    .command("create")
    .description("create a key and print its secret (shown this once)")
    .requiredOption("--name <name>", "who or what uses the key")
    .option("--scopes <scopes>", `comma-separated: ${SCOPES.join(", ")}`, SCOPES.join(","))
    .action(async (options: { name: string; scopes: string }) => {
      let scopes;
      try {
        scopes = parseScopes(options.scopes);
      } catch (error) {
        throw new ReportedError((error as Error).message);
      }
      await withPool(async (pool) => {
        const { key, token } = await createApiKey(pool, options.name, scopes);
        console.log(`created API key ${key.id} (${key.name}; scopes ${key.scopes.join(", ")}). Its secret, shown only now:\n\n  ${token}\n`);
        console.log(`Use it as: curl -H "Authorization: Bearer ${token}" http://localhost:8080/v1/inquiries/<id>`);
      });
    });
  keys
    .command("list")
    .description("every key: id, name, scopes, created, last used, revoked (never the secret)")
    .action(async () =>
      withPool(async (pool) => {
        const rows = await listApiKeys(pool);
        if (rows.length === 0) {
          console.log("no API keys; create one with `switchboard api-keys create --name <name>`");
          return;
        }
        console.table(
          rows.map((k) => ({
            id: k.id,
            name: k.name,
            scopes: k.scopes.join(","),
            created: k.createdAt.toISOString(),
            "last used": k.lastUsedAt?.toISOString() ?? "",
            revoked: k.revokedAt?.toISOString() ?? "",
          })),
        );
      }),
    );
  keys
    .command("revoke <id>")
    .description("revoke a key: refused by every API process within SWITCHBOARD_API_KEY_CACHE_MS")
    .action(async (id: string) =>
      withPool(async (pool) => {
        if (!(await revokeApiKey(pool, id))) throw new ReportedError(`no live API key ${id} (see \`switchboard api-keys list\`)`);
        console.log(`revoked API key ${id}; API processes refuse it within ${config.apiKeyCacheMs / 1000} s`);
      }),
    );
}
