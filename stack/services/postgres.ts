import { existsSync } from "node:fs";
import { chown, mkdir } from "node:fs/promises";
import path from "node:path";
import { run, type RunOptions } from "../exec.js";
import type { ServiceContext, ServiceDefinition, StackPorts } from "../service.js";

/** Debian's PostgreSQL 15 server binaries (package `postgresql`). */
const BIN = "/usr/lib/postgresql/15/bin";
/** PostgreSQL refuses to run as root; Debian's package creates this system user. */
const OS_USER = "postgres";
const DATABASE = "switchboard";
const ROLE = "switchboard";

export function postgresUrl(ports: StackPorts): string {
  return `postgres://${ROLE}@127.0.0.1:${ports.postgres}/${DATABASE}`;
}

/** Runs a command as the postgres OS user (exec, no extra process left between us and it). */
function asPostgres(command: string, args: readonly string[]): [string, string[]] {
  return ["setpriv", ["--reuid", OS_USER, "--regid", OS_USER, "--init-groups", "--", command, ...args]];
}

function runAsPostgres(command: string, args: readonly string[], options?: RunOptions): Promise<string> {
  const [cmd, full] = asPostgres(command, args);
  return run(cmd, full, options);
}

async function ownedByPostgres(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const uid = Number((await run("id", ["-u", OS_USER])).trim());
  const gid = Number((await run("id", ["-g", OS_USER])).trim());
  await chown(dir, uid, gid);
}

const pgdata = (ctx: ServiceContext) => path.join(ctx.paths.data, "pgdata");
const socketDir = (ctx: ServiceContext) => path.join(ctx.paths.data, "socket");

export const postgres: ServiceDefinition = {
  name: "postgres",
  dependsOn: [],
  startTimeoutSeconds: 60,
  // Fast shutdown: SIGTERM is PostgreSQL's smart shutdown, which waits for every client to
  // disconnect — a running pipeline's pools never do, so it ended in SIGKILL a minute later.
  stopSignal: "SIGINT",
  port: (ports) => ports.postgres,

  async install() {
    if (!existsSync(path.join(BIN, "postgres"))) {
      throw new Error(`PostgreSQL 15 is not installed (${BIN}/postgres missing): run \`apt-get install -y postgresql\``);
    }
  },

  async prepare(ctx) {
    await ownedByPostgres(ctx.paths.data);
    await ownedByPostgres(socketDir(ctx));
    await runAsPostgres("test", ["-w", ctx.paths.data]).catch(() => {
      throw new Error(`the ${OS_USER} user cannot write ${ctx.paths.data}: every folder above it must be searchable by others (chmod o+x)`);
    });
    if (existsSync(path.join(pgdata(ctx), "PG_VERSION"))) return;
    await ownedByPostgres(pgdata(ctx));
    // Loopback only and trust auth: a local development stack, never exposed.
    await runAsPostgres(`${BIN}/initdb`, [
      "-D",
      pgdata(ctx),
      "--username",
      ROLE,
      "--auth",
      "trust",
      "--encoding",
      "UTF8",
      "--locale",
      "C.UTF-8",
    ]);
  },

  async launch(ctx) {
    const [command, args] = asPostgres(`${BIN}/postgres`, [
      "-D",
      pgdata(ctx),
      "-p",
      String(ctx.ports.postgres),
      "-k",
      socketDir(ctx),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "max_connections=200",
      "-c",
      "fsync=on",
    ]);
    return { command, args };
  },

  async healthy(ctx) {
    try {
      await run(`${BIN}/pg_isready`, ["-h", "127.0.0.1", "-p", String(ctx.ports.postgres), "-U", ROLE, "-d", "postgres"]);
      return true;
    } catch {
      return false;
    }
  },

  async afterStart(ctx) {
    const psql = (sql: string) =>
      run("psql", ["-h", "127.0.0.1", "-p", String(ctx.ports.postgres), "-U", ROLE, "-d", "postgres", "-tAc", sql]);
    const exists = (await psql(`SELECT 1 FROM pg_database WHERE datname = '${DATABASE}'`)).trim() === "1";
    if (!exists) await psql(`CREATE DATABASE ${DATABASE}`);
  },
};
