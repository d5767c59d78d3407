import { execFile } from "node:child_process";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import { prometheusReader, prometheusUrl } from "../../monitoring/status.js";
import { loadConfig, REPO_ROOT } from "../../config/settings.js";
import { alertRules } from "../../monitoring/alerts.js";
import { TOPOLOGIES, deployedTasks } from "../../streams/topology.js";
import { serviceEnv } from "../support/topics.js";

const exec = promisify(execFile);
const CLI = path.join(REPO_ROOT, "bin/switchboard.js");

/**
 * `switchboard status` against the real Prometheus of the local stack (port 9090, or
 * PROMETHEUS_URL): the command runs, shows every scrape job of the topology as Prometheus sees
 * it, and that Prometheus has loaded the alert rules and found the stack's Alertmanager.
 */
describe("switchboard status against the local Prometheus", () => {
  const config = loadConfig();
  const url = prometheusUrl(config);
  const env = () => ({ ...serviceEnv(inject("endpoints")), LOG_LEVEL: "warn" });
  const jobs = TOPOLOGIES.flatMap((t) => [...deployedTasks(t).chains, ...deployedTasks(t).processors, ...t.connectors].map((p) => p.name));

  it("Prometheus has the alert rules loaded and sends to the local Alertmanager", async () => {
    const rules = (await (await fetch(`${url}/api/v1/rules?type=alert`)).json()) as { data: { groups: { rules: { name: string }[] }[] } };
    const loaded = new Set(rules.data.groups.flatMap((g) => g.rules.map((r) => r.name)));
    expect([...loaded].sort()).toEqual([...new Set(alertRules().map((r) => r.alert))].sort());
    if (!config.prometheusUrl) {
      const managers = (await (await fetch(`${url}/api/v1/alertmanagers`)).json()) as { data: { activeAlertmanagers: { url: string }[] } };
      expect(managers.data.activeAlertmanagers.map((a) => a.url)).toContain(`http://127.0.0.1:${config.alertmanagerPort}/api/v2/alerts`);
    }
  });

  it("shows every scrape job of the topology, up or down as Prometheus's up says", async () => {
    const up = await prometheusReader(url).query("up");
    const { stdout } = await exec(process.execPath, [CLI, "status"], { env: env(), timeout: 60_000 });
    expect(stdout).toContain(`from ${url}:`);
    for (const job of jobs) {
      const series = up.filter((s) => s.metric["job"] === job);
      expect(series.length, `${job} is a scrape job of the running Prometheus`).toBeGreaterThan(0);
      const line = stdout.split("\n").find((l) => l.startsWith(`${job} `));
      expect(line, job).toBeDefined();
      // The state can change between the two reads only for a process starting or stopping meanwhile.
      expect(line, job).toMatch(/\s(UP|DOWN|PARTLY DOWN)(\s|$)/);
    }
    expect(stdout).toMatch(/^Models in production:|^Models: /m);
    expect(stdout).toMatch(/^Alerts: /m);
  });

  it("--json gives the same processes for scripts", async () => {
    const { stdout } = await exec(process.execPath, [CLI, "status", "--json"], { env: env(), timeout: 60_000 });
    const snapshot = JSON.parse(stdout) as { prometheus: string; processes: { name: string; state: string }[]; alerts: { name: string }[] };
    expect(snapshot.prometheus).toBe(url);
    expect(snapshot.processes.map((p) => p.name)).toEqual(jobs);
    for (const p of snapshot.processes) expect(["up", "down", "partly down"]).toContain(p.state);
    // A process the rules see down is listed among the alerts once its minute has passed.
    const down = snapshot.processes.filter((p) => p.state === "down");
    if (down.length > 0 && snapshot.alerts.length > 0) expect(snapshot.alerts.map((a) => a.name)).toContain("ProcessDown");
  });

  it("says clearly when Prometheus is not reachable", async () => {
    // A port nothing listens on: one the system just gave out and took back.
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    server.close();
    const failed = exec(process.execPath, [CLI, "status"], { env: { ...env(), PROMETHEUS_URL: `http://127.0.0.1:${port}` }, timeout: 60_000 });
    await expect(failed).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^Prometheus is not reachable at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): start the local stack's \(`switchboard stack up prometheus`\) or point PROMETHEUS_URL at yours\n$/),
    });
  });
});

describe("the queues' figures", () => {
  it("are read from the archive's tables in the real PostgreSQL (the SQL runs against the migrated schema)", async () => {
    const { createPool } = await import("../../storage/postgres.js");
    const { readQueues } = await import("../../monitoring/queues.js");
    const pool = createPool(inject("endpoints"), "queues-test");
    try {
      const rows = await readQueues(pool);
      for (const row of rows) {
        expect(row.open).toBeGreaterThan(0);
        expect(row.oldest_seconds).toBeGreaterThanOrEqual(0);
      }
    } finally {
      await pool.end();
    }
  });
});
