import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { REPO_ROOT } from "../../config/settings.js";
import { DASHBOARDS, DASHBOARDS_DIR, DATASOURCE, RATE, dashboardFile, dashboardJson } from "../../monitoring/dashboards.js";
import { ELASTICSEARCH, POSTGRES, REDIS } from "../../monitoring/exporters.js";
import { METRICS, PROCESS_METRICS } from "../../monitoring/metric-names.js";

const PROMTOOL = process.env["PROMTOOL"] ?? "/usr/bin/promtool";
const queries = DASHBOARDS.flatMap((d) => [
  ...d.rows.flatMap((r) => r.panels.flatMap((p) => p.targets.map((t) => ({ where: `${d.title} / ${p.title}`, expr: t.expr })))),
  ...(d.annotations ?? []).map((a) => ({ where: `${d.title} / annotation ${a.name}`, expr: a.expr })),
]);

describe("Grafana dashboards (monitoring/grafana/dashboards)", () => {
  it("are generated from the topology and the metric definitions (npm run monitoring:generate), one file each and no other", () => {
    for (const spec of DASHBOARDS) expect(readFileSync(dashboardFile(spec), "utf8"), spec.uid).toBe(dashboardJson(spec));
    expect(readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith(".json")).sort()).toEqual(DASHBOARDS.map((d) => `${d.uid}.json`).sort());
  });

  it("query only metrics declared in code or by the stack's exporters", () => {
    const histogramSeries = (name: string) => [name, `${name}_bucket`, `${name}_sum`, `${name}_count`];
    const known = new Set([
      ...Object.values(METRICS).flatMap((names) => Object.values(names).flatMap(histogramSeries)),
      ...[POSTGRES, REDIS, ELASTICSEARCH, PROCESS_METRICS].flatMap((names) => Object.values(names)),
    ]);
    for (const { where, expr } of queries) {
      const named = expr.match(/\b(switchboard|pg|redis|elasticsearch|process|nodejs)_[a-z0-9_]+/g) ?? [];
      // Prometheus's own `up` aside, every query reads a named metric.
      if (!/^up\{/.test(expr)) expect(named.length, where).toBeGreaterThan(0);
      for (const name of named) expect(known, `${where}: ${name}`).toContain(name);
    }
  });

  it("every query is valid PromQL (promtool checks it as a recording rule)", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "dashboards-"));
    const file = path.join(dir, "queries.yml");
    const rules = queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr.replaceAll(RATE, "1m") }));
    writeFileSync(file, stringify({ groups: [{ name: "dashboards", rules }] }));
    const result = spawnSync(PROMTOOL, ["check", "rules", file], { encoding: "utf8", timeout: 60_000 });
    if (result.error) throw new Error(`promtool could not run (${result.error.message}): apt-get install -y prometheus`);
    expect(`${result.stdout}${result.stderr}`, "promtool check rules").toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("are provisioned by docker-compose's Grafana from the Prometheus data source they name", () => {
    const provisioning = path.join(REPO_ROOT, "monitoring/grafana/provisioning");
    const datasources = parse(readFileSync(path.join(provisioning, "datasources/prometheus.yml"), "utf8")) as { datasources: { uid: string; type: string; url: string }[] };
    expect(datasources.datasources).toContainEqual(expect.objectContaining({ uid: DATASOURCE.uid, type: DATASOURCE.type, url: "http://prometheus:9090" }));
    const providers = parse(readFileSync(path.join(provisioning, "dashboards/switchboard.yml"), "utf8")) as { providers: { options: { path: string } }[] };
    const compose = parse(readFileSync(path.join(REPO_ROOT, "docker-compose.yml"), "utf8")) as { services: Record<string, { volumes?: string[] }> };
    const volumes = compose.services["grafana"]?.volumes ?? [];
    expect(volumes).toContain(`./${path.relative(REPO_ROOT, fileURLToPath(DASHBOARDS_DIR))}:${providers.providers[0]!.options.path}:ro`);
    expect(volumes).toContain("./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro");
  });
});
