import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";

const exec = promisify(execFile);
const CLI = path.join(REPO_ROOT, "bin/switchboard.js");
const SERVICES = ["kafka", "postgres", "redis", "prometheus", "alertmanager"];

/** A second stack on other ports and in another folder, so the suite's own stack is untouched. */
const home = mkdtempSync(path.join(os.tmpdir(), "switchboard-stack-"));
// PostgreSQL and Elasticsearch run as unprivileged users, who must reach their data folders.
chmodSync(home, 0o755);
const env = {
  ...process.env,
  SWITCHBOARD_STACK_HOME: home,
  SWITCHBOARD_KAFKA_PORT: "29092",
  SWITCHBOARD_KAFKA_CONTROLLER_PORT: "29093",
  SWITCHBOARD_KAFKA_SASL_PORT: "29094",
  SWITCHBOARD_POSTGRES_PORT: "25433",
  SWITCHBOARD_REDIS_PORT: "26380",
  SWITCHBOARD_PROMETHEUS_PORT: "29090",
  SWITCHBOARD_ALERTMANAGER_PORT: "29095",
  LOG_LEVEL: "warn",
  // This stack is local whatever the suite itself runs against.
  DATABASE_URL: "",
  REDIS_URL: "",
  ELASTICSEARCH_URL: "",
};
const switchboard = (...args: string[]) => exec(process.execPath, [CLI, ...args], { env });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.runIf(!loadConfig().kafkaBrokers)("stack up/down", () => {
  afterAll(async () => {
    await switchboard("stack", "down", ...SERVICES).catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
  });

  it("up twice and down twice are harmless, and down leaves no process behind", async () => {
    await switchboard("stack", "up", ...SERVICES);
    const pidsOf = () => readdirSync(path.join(home, "run")).map((f) => Number(readFileSync(path.join(home, "run", f), "utf8")));
    const first = pidsOf();
    expect(first).toHaveLength(SERVICES.length);

    await switchboard("stack", "up", ...SERVICES);
    expect(pidsOf().sort()).toEqual([...first].sort());

    await switchboard("stack", "down", ...SERVICES);
    await switchboard("stack", "down", ...SERVICES);
    expect(first.filter(alive)).toEqual([]);
    const status = await switchboard("stack", "status").catch((e: { stdout: string }) => e);
    expect(status.stdout).not.toMatch(/true/);
  }, 240_000);
});
