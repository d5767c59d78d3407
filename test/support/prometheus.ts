import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, until } from "./api.js";

/** One scrape job of a test's Prometheus: `target` is host:port. */
export interface ScrapeJob {
  readonly job: string;
  readonly target: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export interface TestPrometheus {
  readonly url: string;
  readonly port: number;
  stop(): void;
}

/**
 * Debian's Prometheus at `port` (a free one by default), scraping `jobs` and evaluating
 * `ruleFiles` every second: a test's own, since the stack's scrapes the main job's ports only.
 */
export async function startTestPrometheus(
  jobs: readonly ScrapeJob[],
  options: { readonly port?: number; readonly ruleFiles?: readonly string[] } = {},
): Promise<TestPrometheus> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-test-prometheus-"));
  const config = [
    "global: { scrape_interval: 1s, evaluation_interval: 1s }",
    `rule_files: ${JSON.stringify(options.ruleFiles ?? [])}`,
    "scrape_configs:",
    ...jobs.map(
      ({ job, target, labels }) =>
        `  - { job_name: ${JSON.stringify(job)}, static_configs: [{ targets: [${JSON.stringify(target)}], labels: ${JSON.stringify(labels ?? {})} }] }`,
    ),
    "",
  ].join("\n");
  writeFileSync(path.join(dir, "prometheus.yml"), config);
  const child = spawn(
    "/usr/bin/prometheus",
    [`--config.file=${path.join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${path.join(dir, "tsdb")}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: "ignore" },
  );
  const stop = () => {
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const ready = await until(() => fetch(`${url}/-/ready`).then((r) => (r.ok ? true : undefined), () => undefined), 30_000, 200);
  if (!ready) {
    stop();
    throw new Error(`the test's Prometheus did not get ready at ${url}`);
  }
  return { url, port, stop };
}
