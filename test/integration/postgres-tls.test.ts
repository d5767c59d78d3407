import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { libpqDatabaseUrl } from "../../config/security.js";
import { loadConfig } from "../../config/settings.js";
import { resolveEndpoints } from "../../stack/index.js";
import { createPool } from "../../storage/postgres.js";
import { freePort } from "../support/api.js";
import { testCertificates } from "../support/certificates.js";

/** Debian's PostgreSQL 15, as the local stack runs it (as the postgres OS user, which needs root to switch to). */
const BIN = "/usr/lib/postgresql/15/bin";
const runnable = process.getuid?.() === 0 && existsSync(path.join(BIN, "postgres"));

/**
 * TLS through the settings to a real server: a second PostgreSQL cluster with ssl=on and a
 * certificate from a CA of this test's own, reached with sslmode in DATABASE_URL and
 * POSTGRES_CA_FILE, by node-postgres (createPool) and by libpq (what the training package uses).
 */
describe.runIf(runnable)("PostgreSQL over TLS with a private CA (settings → config/security.ts → pg and libpq)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-pg-tls-"));
  const file = (name: string) => path.join(dir, name);
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  const asPostgres = (command: string, args: string[]) =>
    ["setpriv", ["--reuid", "postgres", "--regid", "postgres", "--init-groups", "--", command, ...args]] as const;
  let server: ChildProcess | undefined;
  let port: number;
  const pools: pg.Pool[] = [];
  const url = (query: string) => `postgres://switchboard@localhost:${port}/postgres?${query}`;
  const pool = (env: NodeJS.ProcessEnv) => {
    const created = createPool(resolveEndpoints(loadConfig(env)), "postgres-tls-test");
    pools.push(created);
    return created;
  };
  const sslInUse = async (p: pg.Pool) =>
    (await p.query<{ ssl: boolean }>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0]?.ssl;

  beforeAll(async () => {
    chmodSync(dir, 0o755);
    testCertificates(dir);
    // PostgreSQL wants its key private to it.
    chownSync(file("server.key"), uid, gid);
    chmodSync(file("server.key"), 0o600);
    const data = file("pgdata");
    const socket = file("socket");
    for (const own of [data, socket]) {
      mkdirSync(own);
      chownSync(own, uid, gid);
    }
    const [initdb, initArgs] = asPostgres(`${BIN}/initdb`, [
      "-D",
      data,
      "--username",
      "switchboard",
      "--auth",
      "trust",
      "--encoding",
      "UTF8",
      "--locale",
      "C.UTF-8",
    ]);
    execFileSync(initdb, initArgs, { stdio: "pipe" });
    port = await freePort();
    const [command, args] = asPostgres(`${BIN}/postgres`, [
      "-D",
      data,
      "-p",
      String(port),
      "-k",
      socket,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "ssl=on",
      "-c",
      `ssl_cert_file=${file("server.pem")}`,
      "-c",
      `ssl_key_file=${file("server.key")}`,
    ]);
    const log: string[] = [];
    server = spawn(command, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    server.stderr?.on("data", (chunk: Buffer) => log.push(chunk.toString()));
    for (let i = 0; i < 100; i++) {
      try {
        execFileSync(`${BIN}/pg_isready`, ["-h", "127.0.0.1", "-p", String(port)], { stdio: "pipe" });
        return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error(
      `PostgreSQL with ssl=on did not start on ${port}: ${log.join("").trim().split("\n").slice(-5).join("\n")}`,
    );
  });
  afterAll(async () => {
    for (const p of pools) await p.end().catch(() => undefined);
    server?.kill("SIGINT");
    await sleep(500);
    rmSync(dir, { recursive: true, force: true });
  });

  it("sslmode=verify-full with POSTGRES_CA_FILE: an encrypted, verified connection", async () => {
    expect(await sslInUse(pool({ DATABASE_URL: url("sslmode=verify-full"), POSTGRES_CA_FILE: file("ca.pem") }))).toBe(
      true,
    );
  });

  it("refuses the server's certificate without the CA, and a host name the certificate does not name", async () => {
    await expect(sslInUse(pool({ DATABASE_URL: url("sslmode=verify-full") }))).rejects.toThrow(
      /unable to verify the first certificate|self[- ]signed certificate in certificate chain/,
    );
    const byAddress = `postgres://switchboard@127.0.0.1:${port}/postgres?sslmode=verify-full`;
    await expect(sslInUse(pool({ DATABASE_URL: byAddress, POSTGRES_CA_FILE: file("ca.pem") }))).rejects.toThrow(
      /IP: 127\.0\.0\.1 is not in the cert's list/,
    );
    // verify-ca checks the chain only, as libpq's does.
    expect(
      await sslInUse(
        pool({ DATABASE_URL: byAddress.replace("verify-full", "verify-ca"), POSTGRES_CA_FILE: file("ca.pem") }),
      ),
    ).toBe(true);
  });

  it("no sslmode: plain, as before", async () => {
    expect(await sslInUse(pool({ DATABASE_URL: url("application_name=plain") }))).toBe(false);
  });

  it("libpq (the training package's psycopg) gets the same: the CA file as sslrootcert", () => {
    const libpq = libpqDatabaseUrl(url("sslmode=verify-full"), file("ca.pem"));
    expect(
      execFileSync("psql", [libpq, "-tAc", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"])
        .toString()
        .trim(),
    ).toBe("t");
  });
});
