import { errors as esErrors } from "@elastic/elasticsearch";
import pino from "pino";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createDependencyMetrics, watchDependencies, type Dependency, type Probe } from "../../streams/dependencies.js";
import { DependencyUnavailableError, InvalidInputError, TransientError, isUnavailable } from "../../streams/errors.js";

const log = pino({ level: "silent" });
const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5433"), { code: "ECONNREFUSED" });

describe("a service away (isUnavailable)", () => {
  it("is a refused or reset connection, PostgreSQL shutting down, Elasticsearch unreachable or 503, through the causes processors wrap", () => {
    expect(isUnavailable(refused())).toBe(true);
    expect(isUnavailable(new TransientError("route join store: connecting failed", { cause: refused() }))).toBe(true);
    expect(isUnavailable(Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }))).toBe(true);
    expect(isUnavailable(Object.assign(new Error("the database system is starting up"), { code: "57P03" }))).toBe(true);
    expect(isUnavailable(new TransientError("knowledge-base retrieval failed", { cause: new esErrors.ConnectionError("connect ECONNREFUSED") }))).toBe(true);
    expect(isUnavailable(new esErrors.NoLivingConnectionsError("no living connections", { body: null, statusCode: null, headers: null, warnings: null, meta: {} } as never))).toBe(true);
    expect(isUnavailable(Object.assign(new Error("search_phase_execution_exception"), { meta: { statusCode: 503 } }))).toBe(true);
    expect(isUnavailable(new DependencyUnavailableError("schema registry away"))).toBe(true);
  });

  it("is not a record's own failure nor an unknown one", () => {
    expect(isUnavailable(new InvalidInputError("empty body"))).toBe(false);
    expect(isUnavailable(new TransientError("toxicity check failed", { cause: new Error("model output has no scores") }))).toBe(false);
    expect(isUnavailable(Object.assign(new Error("duplicate key value"), { code: "23505" }))).toBe(false);
    expect(isUnavailable(Object.assign(new Error("parsing_exception"), { meta: { statusCode: 400 } }))).toBe(false);
    expect(isUnavailable("a string")).toBe(false);
  });
});

describe("dependency checks (switchboard_dependency_up)", () => {
  const gauge = async (registry: Registry) =>
    Object.fromEntries(((await registry.getSingleMetric("switchboard_dependency_up")?.get())?.values ?? []).map((v) => [v.labels["dependency"], v.value]));
  const until = async (condition: () => Promise<boolean>) => {
    for (let i = 0; i < 200 && !(await condition()); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  };

  it("sets 1 for a service that answers, 0 for one that fails or does not answer in time, and follows it back", async () => {
    const registry = new Registry();
    let postgresUp = false;
    let redisCalls = 0;
    const probes = new Map<Dependency, Probe>([
      ["kafka", async () => undefined],
      ["postgres", async () => void (postgresUp || (await Promise.reject(refused())))],
      // Never answers: the timeout decides, and a hung check is not started again meanwhile.
      ["redis", () => (redisCalls++, new Promise<void>(() => undefined))],
    ]);
    const watcher = watchDependencies(() => probes, createDependencyMetrics(registry), { intervalMs: 20, timeoutMs: 50, log });
    try {
      await until(async () => Object.keys(await gauge(registry)).length === 3);
      expect(await gauge(registry)).toEqual({ kafka: 1, postgres: 0, redis: 0 });
      postgresUp = true;
      await until(async () => (await gauge(registry))["postgres"] === 1);
      expect(await gauge(registry)).toEqual({ kafka: 1, postgres: 1, redis: 0 });
      expect(redisCalls).toBe(1);
    } finally {
      watcher.stop();
    }
  });
});
