import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, REPO_ROOT, SETTINGS, loadConfig } from "../../config/settings.js";

describe("configuration", () => {
  it("has a default for every setting", () => {
    const config = loadConfig({});
    expect(config.kafkaPort).toBe(9092);
    expect(config.maxAttempts).toBe(5);
    expect(config.kafkaBrokers).toBeUndefined();
  });

  it("names every bad setting in one error", () => {
    const attempt = () => loadConfig({ SWITCHBOARD_KAFKA_PORT: "abc", KAFKA_BROKERS: "no-port", LOG_LEVEL: "loud" });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      expect((error as ConfigError).problems.map((p) => p.split("=")[0])).toEqual(["LOG_LEVEL", "KAFKA_BROKERS", "SWITCHBOARD_KAFKA_PORT"]);
    }
  });

  it("is documented in README, setting by setting", () => {
    const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    const undocumented = Object.values(SETTINGS)
      .map((s) => s.env)
      .filter((env) => !readme.includes(`\`${env}\``));
    expect(undocumented).toEqual([]);
  });
});
