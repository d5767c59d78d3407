import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import { connectorRedis } from "../../connectors/redis.js";
import { resolveEndpoints } from "../../stack/index.js";
import { freePort } from "../support/api.js";
import { testCertificates } from "../support/certificates.js";
import { quietLog } from "../support/topics.js";

/**
 * TLS through the settings to a real server: a second redis-server (Debian's is built with TLS)
 * on a certificate signed by a CA of this test's own, reached with REDIS_URL=rediss://... and
 * REDIS_CA_FILE, as a managed Redis with a private CA would be.
 */
describe("Redis over TLS with a private CA (settings → config/security.ts → ioredis)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-redis-tls-"));
  const file = (name: string) => path.join(dir, name);
  let server: ChildProcess | undefined;
  let port: number;
  const clients: Redis[] = [];

  beforeAll(async () => {
    testCertificates(dir, { altNames: "DNS:localhost,IP:127.0.0.1" });
    port = await freePort();
    server = spawn(
      "redis-server",
      [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        file("server.pem"),
        "--tls-key-file",
        file("server.key"),
        "--tls-ca-cert-file",
        file("ca.pem"),
        "--tls-auth-clients",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--bind",
        "127.0.0.1",
      ],
      { stdio: "ignore" },
    );
    // Up once it accepts a TLS connection; a few hundred ms.
    for (let i = 0; i < 50; i++) {
      try {
        execFileSync("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", file("ca.pem")], {
          input: "",
          stdio: "pipe",
          timeout: 2000,
        });
        return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error(`redis-server with TLS did not start on ${port}`);
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    server?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (env: NodeJS.ProcessEnv) => {
    const redis = connectorRedis(resolveEndpoints(loadConfig(env)), quietLog, {
      commandTimeoutMs: 3_000,
      whileDown: "test",
    });
    clients.push(redis);
    return redis;
  };

  it("connects and answers with REDIS_CA_FILE", async () => {
    const redis = client({ REDIS_URL: `rediss://localhost:${port}`, REDIS_CA_FILE: file("ca.pem") });
    // A connector's client has no offline queue: commands wait for the TLS handshake here.
    await new Promise<void>((resolve, reject) => {
      redis.once("ready", resolve);
      redis.once("error", reject);
    });
    await redis.set("switchboard:tls-test", "over tls");
    expect(await redis.get("switchboard:tls-test")).toBe("over tls");
  });

  it("refuses the server's certificate without it (the system CAs do not know the test CA)", async () => {
    const redis = client({ REDIS_URL: `rediss://localhost:${port}` });
    const error = await new Promise<Error>((resolve) => redis.once("error", resolve));
    expect(error.message).toMatch(
      /self[- ]signed certificate in certificate chain|unable to (get local issuer|verify)/,
    );
  });
});
