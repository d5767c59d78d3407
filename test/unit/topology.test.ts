import { describe, expect, it } from "vitest";
import { TOPOLOGIES, TRIAGE, allTopics, chainMembers, deployedTasks, dlqTopics, findProcessor, type Topology } from "../../streams/topology.js";
import { readFileSync } from "node:fs";
import { COMPOSE_PROMETHEUS_CONFIG, composePrometheusConfig, prometheusConfig } from "../../monitoring/scrape-config.js";

describe("topology", () => {
  it("every processor reads and writes declared topics, and every input has a DLQ", () => {
    for (const topology of TOPOLOGIES) {
      const names = new Set(allTopics(topology).map((t) => t.name));
      for (const p of topology.processors) {
        for (const topic of [...p.inputs, ...p.outputs, ...p.inputs.map((i) => `${i}.dlq`)]) expect(names, `${p.name}: ${topic}`).toContain(topic);
      }
    }
  });

  it("names and metrics ports are unique across topologies, chains included", () => {
    const tasks = TOPOLOGIES.flatMap((t) => [...t.processors, ...t.chains]);
    expect(new Set(tasks.map((p) => p.name)).size).toBe(tasks.length);
    expect(new Set(tasks.map((p) => p.metricsPort)).size).toBe(tasks.length);
  });

  it("the triage chain runs the reply path; the sinks run on their own", () => {
    expect(chainMembers(TRIAGE, TRIAGE.chains[0]!).map((m) => m.name)).toEqual(["clean", "classify", "sentiment", "urgency", "route", "respond"]);
    expect(deployedTasks(TRIAGE).processors.map((p) => p.name)).toEqual(["archive", "feedback", "drift", "retrain", "search"]);
  });

  it("a chain out of order, with a member twice or consuming what it writes is refused", () => {
    const chain = TRIAGE.chains[0]!;
    const variant = (processors: string[], inputs: string[] = [...chain.inputs]): Topology => ({ ...TRIAGE, chains: [{ ...chain, processors, inputs }] });
    const members = (t: Topology) => () => chainMembers(t, t.chains[0]!);
    expect(members(variant(["clean", "route", "classify", "sentiment", "urgency", "respond"]))).toThrow(/route reads inquiries.classified before a member earlier in the chain writes it/);
    expect(members(variant(["clean", "clean"]))).toThrow(/lists a processor twice/);
    expect(members(variant(["clean", "classify"], ["inquiries.received", "inquiries.cleaned"]))).toThrow(/consumes inquiries.cleaned, which one of its members writes/);
    expect(members(variant(["clean", "nope"]))).toThrow(/processor "nope" is not declared/);
  });

  it("the triage pipeline runs received → clean → three predictions → route → respond, with raw-byte DLQs", () => {
    const outputsOf = (name: string) => TRIAGE.processors.find((p) => p.name === name)!.outputs;
    const readers = (topic: string) => TRIAGE.processors.filter((p) => p.inputs.includes(topic)).map((p) => p.name);
    expect(readers("inquiries.received")).toEqual(["clean"]);
    expect(readers("inquiries.cleaned")).toEqual(["classify", "sentiment", "urgency", "route", "archive", "search"]);
    for (const name of ["classify", "sentiment", "urgency"]) expect(outputsOf(name)).toContain("predictions.feedback");
    expect(readers("inquiries.routed")).toEqual(["respond", "archive", "search"]);
    expect(dlqTopics(TRIAGE).every((t) => t.valueSchema === "raw")).toBe(true);
  });

  it("unknown processors are a clear error", () => {
    expect(() => findProcessor("nope")).toThrow(/unknown processor "nope"; known processors: clean, classify, sentiment, urgency, route, respond, archive, feedback, drift, retrain, search/);
  });

  it("Prometheus scrapes every chain and every processor in none at its declared port", () => {
    const config = prometheusConfig(() => "127.0.0.1");
    for (const topology of TOPOLOGIES) {
      const { chains, processors } = deployedTasks(topology);
      for (const p of [...chains, ...processors]) expect(config).toContain(`"127.0.0.1:${p.metricsPort}"`);
    }
  });

  it("docker-compose's Prometheus config is generated from the topology (npm run monitoring:generate)", () => {
    expect(readFileSync(COMPOSE_PROMETHEUS_CONFIG, "utf8")).toBe(composePrometheusConfig());
  });
});
