import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { REPO_ROOT } from "../../config/settings.js";
import { ALERT_RULES_FILE, alertNames, alertRules, alertRulesFile } from "../../monitoring/alerts.js";
import { METRICS } from "../../monitoring/metric-names.js";
import { composePrometheusConfig, prometheusConfig } from "../../monitoring/scrape-config.js";
import { ALERTMANAGER_CONFIG } from "../../stack/services/alertmanager.js";
import { TOPOLOGIES, deployedTasks } from "../../streams/topology.js";

const MONITORING = path.join(REPO_ROOT, "monitoring");
const TESTS = path.join(MONITORING, "tests");
const PROMTOOL = process.env["PROMTOOL"] ?? "/usr/bin/promtool";
const AMTOOL = process.env["AMTOOL"] ?? "/usr/bin/amtool";

/** Runs a Prometheus tool; its output is the failure message. The tools are Debian's (`prometheus`, `prometheus-alertmanager`). */
function run(tool: string, args: readonly string[]): { status: number | null; output: string; stdout: string } {
  const result = spawnSync(tool, args, { cwd: MONITORING, encoding: "utf8", timeout: 60_000 });
  if (result.error) throw new Error(`${tool} could not run (${result.error.message}): apt-get install -y prometheus prometheus-alertmanager`);
  return { status: result.status, output: `${result.stdout}${result.stderr}`, stdout: result.stdout };
}

interface PromtoolTest {
  readonly alert_rule_test?: readonly { readonly alertname: string; readonly exp_alerts: readonly unknown[] }[];
}

describe("alert rules (monitoring/alerts.yml)", () => {
  it("are generated from the topology and the metric definitions (npm run monitoring:generate)", () => {
    expect(readFileSync(ALERT_RULES_FILE, "utf8")).toBe(alertRulesFile());
  });

  it("watch every scrape job of the topology for up == 0", () => {
    const down = alertRules().filter((r) => r.alert === "ProcessDown");
    const jobs = TOPOLOGIES.flatMap((t) => [...deployedTasks(t).chains, ...deployedTasks(t).processors, ...t.connectors].map((p) => p.name));
    expect(down.map((r) => r.labels["job"]).sort()).toEqual([...jobs].sort());
    for (const rule of down) expect(rule.expr).toBe(`up{job="${rule.labels["job"]}"} == 0`);
  });

  it("query only metrics declared in code", () => {
    const declared = new Set(Object.values(METRICS).flatMap((names) => Object.values(names) as string[]));
    for (const rule of alertRules()) {
      const metrics = [...rule.expr.matchAll(/\b(switchboard_[a-z0-9_]+?)(?:_bucket)?\b(?=[{[)\s])/g)].map((m) => m[1]!);
      for (const metric of metrics) expect(declared, `${rule.alert}: ${metric}`).toContain(metric);
    }
  });

  it("each have a severity, a summary, a description and a runbook that exists", () => {
    for (const rule of alertRules()) {
      expect(["critical", "warning"]).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length, rule.alert).toBeGreaterThan(0);
      expect(rule.annotations.description.length, rule.alert).toBeGreaterThan(0);
      expect(rule.annotations.runbook_url).toBe(`monitoring/runbooks/${rule.alert}.md`);
      const runbook = readFileSync(path.join(REPO_ROOT, rule.annotations.runbook_url), "utf8");
      expect(runbook, rule.alert).toMatch(new RegExp(`^# ${rule.alert}\\n`));
      expect(runbook, rule.alert).toContain("**What it means.**");
      expect(runbook, rule.alert).toContain("**First checks.**");
      expect(runbook, rule.alert).toContain("**Fixes.**");
    }
    const runbooks = readdirSync(path.join(MONITORING, "runbooks")).filter((f) => f !== "README.md");
    expect(runbooks.sort()).toEqual(alertNames().map((a) => `${a}.md`).sort());
  });

  it("pass promtool check rules", () => {
    const { status, output } = run(PROMTOOL, ["check", "rules", fileURLToPath(ALERT_RULES_FILE)]);
    expect(output).toContain("SUCCESS");
    expect(status, output).toBe(0);
  });

  it("pass promtool test rules (monitoring/tests/*.yml), where every alert is seen firing and not firing", () => {
    const files = readdirSync(TESTS).filter((f) => f.endsWith(".yml"));
    expect(files.length).toBeGreaterThan(0);
    const { status, output } = run(PROMTOOL, ["test", "rules", ...files.map((f) => path.join("tests", f))]);
    expect(status, output).toBe(0);
    const cases = files.flatMap((f) => ((parse(readFileSync(path.join(TESTS, f), "utf8")) as { tests: PromtoolTest[] }).tests ?? []).flatMap((t) => t.alert_rule_test ?? []));
    for (const alert of alertNames()) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(mine.some((c) => c.exp_alerts.length > 0), `${alert} firing`).toBe(true);
      expect(mine.some((c) => c.exp_alerts.length === 0), `${alert} not firing`).toBe(true);
    }
  });

  it("are loaded by the local stack's and docker-compose's Prometheus, which send alerts to an Alertmanager (promtool check config)", () => {
    const compose = composePrometheusConfig();
    expect(compose).toContain('rule_files:\n  - "/etc/prometheus/alerts.yml"');
    expect(compose).toContain('targets: ["alertmanager:9093"]');
    const local = prometheusConfig(() => "127.0.0.1", { ruleFiles: [fileURLToPath(ALERT_RULES_FILE)], alertmanagers: ["127.0.0.1:9093"] });
    const file = path.join(mkdtempSync(path.join(tmpdir(), "prometheus-")), "prometheus.yml");
    writeFileSync(file, local);
    const { status, output } = run(PROMTOOL, ["check", "config", file]);
    expect(status, output).toBe(0);
    expect(output).toContain(`SUCCESS: ${alertRules().length} rules found`);
  });
});

describe("Alertmanager (monitoring/alertmanager.yml)", () => {
  it("passes amtool check-config", () => {
    expect(existsSync(ALERTMANAGER_CONFIG)).toBe(true);
    const { status, output } = run(AMTOOL, ["check-config", ALERTMANAGER_CONFIG]);
    expect(status, output).toBe(0);
    expect(output).toContain("SUCCESS");
  });

  it("routes critical alerts to oncall-critical, the models' to models, the rest to oncall", () => {
    const route = (...labels: string[]) => run(AMTOOL, ["config", "routes", "test", `--config.file=${ALERTMANAGER_CONFIG}`, ...labels]).stdout.trim();
    expect(route("alertname=ProcessDown", "severity=critical", "job=triage")).toBe("oncall-critical");
    expect(route("alertname=ModelDrift", "severity=warning")).toBe("models");
    expect(route("alertname=DLQGrowing", "severity=warning")).toBe("oncall");
  });
});
