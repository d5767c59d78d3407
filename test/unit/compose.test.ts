import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { REPO_ROOT } from "../../config/settings.js";
import { TOPOLOGIES } from "../../streams/topology.js";
import { EXPORTERS } from "../../monitoring/exporters.js";

interface ComposeService {
  readonly image?: string;
  readonly build?: unknown;
  readonly command?: readonly string[];
  readonly environment?: Record<string, string>;
  readonly volumes?: readonly string[];
  readonly ports?: readonly string[];
  readonly healthcheck?: { readonly test: readonly string[] };
  readonly depends_on?: Record<string, { readonly condition: string }>;
  readonly profiles?: readonly string[];
}

/** docker-compose.yml as Compose reads it: YAML 1.1 merge keys (`<<: *switchboard`) resolved. */
const compose = parse(readFileSync(path.join(REPO_ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const services = compose.services;

const INFRASTRUCTURE = [
  "kafka",
  "schema-registry",
  "postgres",
  "redis",
  "elasticsearch",
  "prometheus",
  "alertmanager",
  "grafana",
  "dovecot",
  ...Object.values(EXPORTERS).map((e) => e.job),
];
const processors = TOPOLOGIES.flatMap((t) => t.processors);
const chains = TOPOLOGIES.flatMap((t) => t.chains);
const chained = new Set(chains.flatMap((c) => c.processors));
const connectors = TOPOLOGIES.flatMap((t) => t.connectors);

describe("docker-compose.yml", () => {
  it("has the infrastructure, each with a healthcheck", () => {
    for (const name of INFRASTRUCTURE) {
      expect(services[name]?.image, name).toBeTruthy();
      expect(services[name]?.healthcheck?.test.length, `${name} healthcheck`).toBeGreaterThan(0);
    }
    expect(services.kafka!.environment!.KAFKA_PROCESS_ROLES).toBe("broker,controller");
  });

  it("runs every chain, processor and connector of the topology as its own service, after init prepared the stack", () => {
    expect(services.init?.command).toEqual(["prepare"]);
    for (const dependency of ["kafka", "schema-registry", "postgres", "redis", "elasticsearch"]) {
      expect(services.init!.depends_on?.[dependency]?.condition, `init after ${dependency}`).toBe("service_healthy");
    }
    for (const { name } of [...chains, ...processors, ...connectors]) {
      const service = services[name];
      expect(service?.command, name).toEqual(["run", name]);
      expect(service!.depends_on?.init?.condition, `${name} after init`).toBe("service_completed_successfully");
      expect(service!.environment?.KAFKA_BROKERS, `${name} environment`).toBe("kafka:19092");
      expect(service!.volumes, `${name} models volume`).toContain("models:/models");
    }
  });

  it("runs a chain's members only in the unchained profile, instead of the chain", () => {
    for (const { name } of processors) expect(services[name]?.profiles ?? [], name).toEqual(chained.has(name) ? ["unchained"] : []);
    for (const { name } of chains) expect(services[name]?.profiles, name).toBeUndefined();
  });

  it("runs nothing the topology does not declare", () => {
    const declared = new Set([...chains, ...processors, ...connectors].map((p) => p.name));
    const runs = Object.values(services).flatMap((s) => (s.command?.[0] === "run" ? [s.command[1]!] : []));
    expect(runs.filter((name) => !declared.has(name))).toEqual([]);
    expect(runs).toHaveLength(declared.size);
  });

  it("publishes the API connector's port and points the email connector at the IMAP server", () => {
    const api = connectors.find((c) => c.name === "api")!;
    expect(services.api!.ports).toContain(`${api.port}:${api.port}`);
    expect(services.email!.environment?.IMAP_URL).toMatch(/^imap:\/\/[^@]+@dovecot:143$/);
    expect(services.email!.depends_on?.dovecot?.condition).toBe("service_healthy");
  });

  it("mounts files and folders that exist: the generated Prometheus config and alert rules, Alertmanager's config, Grafana's provisioning and dashboards", () => {
    expect(services.prometheus!.volumes).toEqual([
      "./monitoring/prometheus.compose.yml:/etc/prometheus/prometheus.yml:ro",
      "./monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro",
    ]);
    expect(services.alertmanager!.volumes).toEqual(["./monitoring/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"]);
    expect(services.grafana!.volumes).toEqual(
      expect.arrayContaining([
        "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro",
        "./monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro",
      ]),
    );
    const binds = Object.values(services).flatMap((s) => (s.volumes ?? []).filter((v) => v.startsWith("./")));
    for (const bind of binds) expect(existsSync(path.join(REPO_ROOT, bind.split(":")[0]!)), bind).toBe(true);
  });

  it("declares every named volume it uses", () => {
    const named = Object.values(services).flatMap((s) =>
      (s.volumes ?? []).map((v) => v.split(":")[0]!).filter((v) => /^[a-z]/.test(v)),
    );
    for (const volume of named) expect(Object.keys(compose.volumes), volume).toContain(volume);
  });
});
