import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Agent as HttpsAgent } from "node:https";
import { afterAll, describe, expect, it } from "vitest";
import {
  NO_SECURITY,
  elasticsearchOptions,
  kafkaSecurityOptions,
  libpqDatabaseUrl,
  postgresOptions,
  redisOptions,
  schemaRegistryOptions,
} from "../../config/security.js";
import { ConfigError, loadConfig } from "../../config/settings.js";
import { resolveEndpoints } from "../../stack/index.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-security-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Any PEM block will do for reading and passing on; a real key keeps it honest.
const keyPem = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();
const pemFile = (name: string, text = keyPem) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};
const ca = pemFile("ca.pem");
const notPem = pemFile("not-pem.txt", "just text\n");

const SASL = {
  KAFKA_BROKERS: "broker-1.example.net:9096,broker-2.example.net:9096",
  KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
  KAFKA_SASL_USERNAME: "switchboard",
  KAFKA_SASL_PASSWORD: "p4ss-w0rd-never-shown",
};

function problems(env: NodeJS.ProcessEnv): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("security settings", () => {
  it("default to plain connections", () => {
    const config = loadConfig({});
    expect(config.kafkaTls).toBe(false);
    expect(config.kafkaSaslMechanism).toBeUndefined();
    expect(resolveEndpoints(config).security).toEqual(NO_SECURITY);
    expect(kafkaSecurityOptions(NO_SECURITY)).toEqual({});
  });

  it("take SASL with every mechanism, case-insensitively", () => {
    for (const mechanism of ["scram-sha-256", "SCRAM-SHA-512"]) {
      expect(loadConfig({ ...SASL, KAFKA_SASL_MECHANISM: mechanism }).kafkaSaslMechanism).toBe(mechanism.toLowerCase());
    }
    expect(loadConfig({ ...SASL, KAFKA_SASL_MECHANISM: "PLAIN", KAFKA_TLS: "true" }).kafkaSaslMechanism).toBe("plain");
    expect(problems({ ...SASL, KAFKA_SASL_MECHANISM: "gssapi" })).toEqual([
      expect.stringMatching(/^KAFKA_SASL_MECHANISM="gssapi": /),
    ]);
  });

  it("name the variables a SASL mechanism lacks", () => {
    expect(problems({ KAFKA_BROKERS: SASL.KAFKA_BROKERS, KAFKA_SASL_MECHANISM: "scram-sha-256" })).toEqual([
      expect.stringMatching(
        /^KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD: SASL needs .*missing KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD$/,
      ),
    ]);
    expect(problems({ ...SASL, KAFKA_SASL_MECHANISM: undefined })).toEqual([
      expect.stringMatching(/^KAFKA_SASL_MECHANISM: /),
    ]);
  });

  it("refuse SASL or TLS for the local broker, PLAIN without TLS, and files without TLS", () => {
    expect(problems({ ...SASL, KAFKA_BROKERS: undefined })).toEqual([
      expect.stringMatching(/^KAFKA_SASL_MECHANISM: applies to an external cluster; set KAFKA_BROKERS/),
    ]);
    expect(problems({ ...SASL, KAFKA_SASL_MECHANISM: "plain" })).toEqual([
      expect.stringMatching(/^KAFKA_SASL_MECHANISM=plain sends the password in clear text/),
    ]);
    expect(problems({ KAFKA_BROKERS: SASL.KAFKA_BROKERS, KAFKA_TLS_CA_FILE: ca })).toEqual([
      expect.stringMatching(/^KAFKA_TLS_CA_FILE: set KAFKA_TLS=true too/),
    ]);
    expect(problems({ KAFKA_BROKERS: SASL.KAFKA_BROKERS, KAFKA_TLS: "true", KAFKA_TLS_CERT_FILE: ca })).toEqual([
      expect.stringMatching(/^KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE: /),
    ]);
    expect(problems({ KAFKA_TLS: "maybe" })).toEqual([expect.stringMatching(/^KAFKA_TLS="maybe": /)]);
  });

  it("name a certificate file that does not exist or is not PEM", () => {
    const missing = path.join(dir, "nowhere.pem");
    expect(problems({ ...SASL, KAFKA_TLS: "true", KAFKA_TLS_CA_FILE: missing })).toEqual([
      `KAFKA_TLS_CA_FILE=${JSON.stringify(missing)}: cannot read ${missing}: ENOENT`,
    ]);
    expect(problems({ REDIS_URL: "rediss://cache.example.net:6380", REDIS_CA_FILE: notPem })).toEqual([
      expect.stringMatching(/^REDIS_CA_FILE=.*not a PEM file/),
    ]);
  });

  it("want each CA file's service to use TLS", () => {
    expect(problems({ SCHEMA_REGISTRY_URL: "http://registry.example.net", SCHEMA_REGISTRY_CA_FILE: ca })).toEqual([
      expect.stringMatching(/^SCHEMA_REGISTRY_CA_FILE: needs an https:\/\/ SCHEMA_REGISTRY_URL/),
    ]);
    expect(problems({ ELASTICSEARCH_CA_FILE: ca })).toEqual([
      expect.stringMatching(/^ELASTICSEARCH_CA_FILE: needs an https:\/\//),
    ]);
    expect(problems({ REDIS_URL: "redis://cache.example.net:6380", REDIS_CA_FILE: ca })).toEqual([
      expect.stringMatching(/^REDIS_CA_FILE: needs a rediss:\/\//),
    ]);
    expect(problems({ POSTGRES_CA_FILE: ca })).toEqual([
      expect.stringMatching(/^POSTGRES_CA_FILE: applies to an external PostgreSQL/),
    ]);
    expect(problems({ DATABASE_URL: "postgres://u@db.example.net/switchboard", POSTGRES_CA_FILE: ca })).toEqual([
      expect.stringMatching(/^POSTGRES_CA_FILE: needs TLS that verifies/),
    ]);
    expect(problems({ DATABASE_URL: "postgres://u@db.example.net/switchboard?sslmode=prefer" })).toEqual([
      expect.stringMatching(/^DATABASE_URL: sslmode=prefer is not supported/),
    ]);
    expect(
      problems({ DATABASE_URL: "postgres://u@db.example.net/switchboard?sslmode=require&sslrootcert=/ca.pem" }),
    ).toEqual([expect.stringMatching(/^DATABASE_URL: sslrootcert in the URL is not read; set POSTGRES_CA_FILE/)]);
  });

  it("never put a secret's value in the error", () => {
    const secret = "too-short";
    const found = problems({ SWITCHBOARD_GENERIC_WEBHOOK_SECRET: secret });
    expect(found).toEqual([expect.stringMatching(/^SWITCHBOARD_GENERIC_WEBHOOK_SECRET=<secret>: /)]);
    expect(found.join()).not.toContain(secret);
    expect(problems({ ...SASL, KAFKA_BROKERS: undefined }).join()).not.toContain(SASL.KAFKA_SASL_PASSWORD);
  });
});

describe("client options built from the settings", () => {
  it("Kafka: SASL and TLS with the CA file's text and a client certificate", () => {
    const cert = pemFile("client.pem");
    const key = pemFile("client-key.pem");
    const { security } = resolveEndpoints(
      loadConfig({
        ...SASL,
        KAFKA_TLS: "true",
        KAFKA_TLS_CA_FILE: ca,
        KAFKA_TLS_CERT_FILE: cert,
        KAFKA_TLS_KEY_FILE: key,
      }),
    );
    expect(kafkaSecurityOptions(security)).toEqual({
      ssl: { ca: [keyPem], cert: keyPem, key: keyPem },
      sasl: { mechanism: "scram-sha-512", username: "switchboard", password: SASL.KAFKA_SASL_PASSWORD },
    });
    // TLS trusting the system CAs; SASL_PLAINTEXT.
    expect(
      kafkaSecurityOptions(
        resolveEndpoints(loadConfig({ KAFKA_BROKERS: SASL.KAFKA_BROKERS, KAFKA_TLS: "1" })).security,
      ),
    ).toEqual({ ssl: true });
    expect(
      kafkaSecurityOptions(resolveEndpoints(loadConfig({ ...SASL, KAFKA_SASL_MECHANISM: "scram-sha-256" })).security),
    ).toEqual({
      sasl: { mechanism: "scram-sha-256", username: "switchboard", password: SASL.KAFKA_SASL_PASSWORD },
    });
  });

  it("schema registry: basic auth from the URL, an HTTPS agent trusting the CA file", () => {
    const endpoints = resolveEndpoints(
      loadConfig({
        SCHEMA_REGISTRY_URL: "https://KEY:s%2Fcret@registry.example.net/ccompat",
        SCHEMA_REGISTRY_CA_FILE: ca,
      }),
    );
    const options = schemaRegistryOptions(endpoints, "classify");
    expect(options).toMatchObject({
      host: "https://registry.example.net/ccompat",
      clientId: "classify",
      auth: { username: "KEY", password: "s/cret" },
    });
    expect(options.agent).toBeInstanceOf(HttpsAgent);
    expect((options.agent as HttpsAgent).options.ca).toBe(keyPem);
    expect(schemaRegistryOptions(resolveEndpoints(loadConfig({})))).toEqual({
      host: "http://127.0.0.1:8081/apis/ccompat/v7",
    });
  });

  it("PostgreSQL: ssl from sslmode (taken out of the URL, which would override it), with the CA", () => {
    const url = "postgres://u:pw@db.example.net:5432/switchboard";
    const options = (mode: string, env: NodeJS.ProcessEnv = {}) =>
      postgresOptions(resolveEndpoints(loadConfig({ DATABASE_URL: `${url}?sslmode=${mode}`, ...env })));
    expect(options("verify-full", { POSTGRES_CA_FILE: ca })).toEqual({
      connectionString: url,
      ssl: { rejectUnauthorized: true, ca: keyPem },
    });
    expect(options("require")).toEqual({ connectionString: url, ssl: { rejectUnauthorized: true } });
    const verifyCa = options("verify-ca", { POSTGRES_CA_FILE: ca }).ssl as {
      checkServerIdentity?: () => undefined;
      rejectUnauthorized: boolean;
    };
    expect(verifyCa.rejectUnauthorized).toBe(true);
    expect(verifyCa.checkServerIdentity?.()).toBeUndefined();
    expect(options("no-verify")).toEqual({ connectionString: url, ssl: { rejectUnauthorized: false } });
    expect(options("disable")).toEqual({ connectionString: url, ssl: false });
    expect(postgresOptions(resolveEndpoints(loadConfig({ DATABASE_URL: `${url}?application_name=x` })))).toEqual({
      connectionString: `${url}?application_name=x`,
      ssl: false,
    });
    const local = resolveEndpoints(loadConfig({}));
    expect(postgresOptions(local)).toEqual({ connectionString: local.databaseUrl, ssl: false });
  });

  it("PostgreSQL for libpq (the training package): the CA file as sslrootcert, no-verify as require", () => {
    const url = "postgres://u:pw@db.example.net:5432/switchboard";
    expect(libpqDatabaseUrl(`${url}?sslmode=verify-full`, "/etc/ssl/db-ca.pem")).toBe(
      `${url}?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fdb-ca.pem`,
    );
    expect(libpqDatabaseUrl(`${url}?sslmode=no-verify`, undefined)).toBe(`${url}?sslmode=require`);
    expect(libpqDatabaseUrl(url, undefined)).toBe(url);
  });

  it("Redis and Elasticsearch: the CA for rediss:// and https://", () => {
    const endpoints = resolveEndpoints(
      loadConfig({
        REDIS_URL: "rediss://:pw@cache.example.net:6380/2",
        REDIS_CA_FILE: ca,
        ELASTICSEARCH_URL: "https://elastic:pw@search.example.net:9243",
        ELASTICSEARCH_CA_FILE: ca,
      }),
    );
    expect(redisOptions(endpoints)).toEqual({ tls: { ca: keyPem, servername: "cache.example.net" } });
    expect(elasticsearchOptions(endpoints)).toEqual({
      node: "https://elastic:pw@search.example.net:9243",
      tls: { ca: keyPem },
    });
    const local = resolveEndpoints(loadConfig({}));
    expect(redisOptions(local)).toEqual({});
    expect(elasticsearchOptions(local)).toEqual({ node: "http://127.0.0.1:9200" });
  });
});
