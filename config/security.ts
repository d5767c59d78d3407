import { readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import type { SchemaRegistryAPIClientArgs } from "@kafkajs/confluent-schema-registry/dist/api/index.js";
import type { ClientOptions as ElasticsearchOptions } from "@elastic/elasticsearch";
import type { RedisOptions } from "ioredis";
import type { KafkaConfig, SASLOptions } from "kafkajs";
import type { PoolConfig } from "pg";
import type { Config } from "./settings.js";

/**
 * TLS and SASL of every client Switchboard builds, from the settings: the one place that turns
 * KAFKA_SASL_*, KAFKA_TLS* and the *_CA_FILE settings into client options. `resolveEndpoints`
 * puts it into the endpoints every client is made from, and each client factory takes it from
 * there, so no client is made without it. Plain data (PEM text, no sockets or agents): the test
 * set-up hands endpoints across processes.
 */
export interface ClientSecurity {
  readonly kafka: {
    readonly tls: boolean;
    /** PEM text of the CA bundle that signs the brokers' certificates (system CAs when absent). */
    readonly ca?: string;
    /** PEM text of a client certificate and its key, for brokers that authenticate clients by certificate. */
    readonly cert?: string;
    readonly key?: string;
    readonly sasl?: { readonly mechanism: SaslMechanism; readonly username: string; readonly password: string };
  };
  /** PEM text of each HTTPS / TLS service's CA bundle; TLS itself is the URL's (https://, rediss://, sslmode). */
  readonly schemaRegistryCa?: string;
  readonly postgresCa?: string;
  readonly redisCa?: string;
  readonly elasticsearchCa?: string;
}

export const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Plain connections, as the local stack's services take (and the test containers). */
export const NO_SECURITY: ClientSecurity = { kafka: { tls: false } };

type SecuritySettings = Pick<
  Config,
  | "kafkaBrokers"
  | "kafkaSaslMechanism"
  | "kafkaSaslUsername"
  | "kafkaSaslPassword"
  | "kafkaTls"
  | "kafkaTlsCaFile"
  | "kafkaTlsCertFile"
  | "kafkaTlsKeyFile"
  | "schemaRegistryUrl"
  | "schemaRegistryCaFile"
  | "databaseUrl"
  | "postgresCaFile"
  | "redisUrl"
  | "redisCaFile"
  | "elasticsearchUrl"
  | "elasticsearchCaFile"
>;

/** sslmode values of a PostgreSQL URL that node-postgres can honour (it cannot fall back, so no `prefer`/`allow`). */
const PG_SSL_MODES = ["disable", "require", "verify-ca", "verify-full", "no-verify"] as const;
type PgSslMode = (typeof PG_SSL_MODES)[number];

/**
 * What one setting cannot be without another, each naming the variables (never a value: some are
 * secrets). `loadConfig` reports these with the per-setting problems. `env` maps a setting to its
 * variable, passed in so that this module needs nothing from settings.ts at run time.
 */
export function securityProblems(config: SecuritySettings, env: (key: keyof SecuritySettings) => string): string[] {
  const problems: string[] = [];
  const set = (value: unknown) => value !== undefined;
  const sasl = [config.kafkaSaslMechanism, config.kafkaSaslUsername, config.kafkaSaslPassword];
  if (sasl.some(set) && !sasl.every(set)) {
    const missing = (["kafkaSaslMechanism", "kafkaSaslUsername", "kafkaSaslPassword"] as const)
      .filter((k) => !set(config[k]))
      .map(env);
    problems.push(
      `${missing.join(", ")}: SASL needs ${env("kafkaSaslMechanism")}, ${env("kafkaSaslUsername")} and ${env("kafkaSaslPassword")} together; missing ${missing.join(" and ")}`,
    );
  }
  const kafkaTlsFiles = (["kafkaTlsCaFile", "kafkaTlsCertFile", "kafkaTlsKeyFile"] as const).filter((k) =>
    set(config[k]),
  );
  if (kafkaTlsFiles.length > 0 && !config.kafkaTls) {
    problems.push(
      `${kafkaTlsFiles.map(env).join(", ")}: set ${env("kafkaTls")}=true too (the files are used only over TLS)`,
    );
  }
  if (set(config.kafkaTlsCertFile) !== set(config.kafkaTlsKeyFile)) {
    problems.push(
      `${env("kafkaTlsCertFile")}, ${env("kafkaTlsKeyFile")}: a client certificate needs its key, and a key its certificate`,
    );
  }
  if ((set(config.kafkaSaslMechanism) || config.kafkaTls) && !config.kafkaBrokers) {
    problems.push(
      `${env(config.kafkaTls ? "kafkaTls" : "kafkaSaslMechanism")}: applies to an external cluster; set ${env("kafkaBrokers")} (the local broker's own port is plaintext)`,
    );
  }
  if (config.kafkaSaslMechanism === "plain" && !config.kafkaTls) {
    problems.push(
      `${env("kafkaSaslMechanism")}=plain sends the password in clear text: set ${env("kafkaTls")}=true (or use scram-sha-256 / scram-sha-512)`,
    );
  }
  const scheme = (url: string | undefined) => (url ? new URL(url).protocol : undefined);
  if (set(config.schemaRegistryCaFile) && scheme(config.schemaRegistryUrl) !== "https:") {
    problems.push(`${env("schemaRegistryCaFile")}: needs an https:// ${env("schemaRegistryUrl")}`);
  }
  if (set(config.elasticsearchCaFile) && scheme(config.elasticsearchUrl) !== "https:") {
    problems.push(`${env("elasticsearchCaFile")}: needs an https:// ${env("elasticsearchUrl")}`);
  }
  if (set(config.redisCaFile) && scheme(config.redisUrl) !== "rediss:") {
    problems.push(`${env("redisCaFile")}: needs a rediss:// ${env("redisUrl")} (TLS)`);
  }
  if (config.databaseUrl) {
    const url = new URL(config.databaseUrl);
    const mode = url.searchParams.get("sslmode");
    if (mode !== null && !(PG_SSL_MODES as readonly string[]).includes(mode)) {
      problems.push(`${env("databaseUrl")}: sslmode=${mode} is not supported; use ${PG_SSL_MODES.join(", ")}`);
    }
    for (const parameter of ["sslrootcert", "sslcert", "sslkey"]) {
      if (url.searchParams.has(parameter))
        problems.push(
          `${env("databaseUrl")}: ${parameter} in the URL is not read; ${parameter === "sslrootcert" ? `set ${env("postgresCaFile")}` : "client certificates are not supported"}`,
        );
    }
    if (set(config.postgresCaFile) && (mode === null || mode === "disable" || mode === "no-verify")) {
      problems.push(
        `${env("postgresCaFile")}: needs TLS that verifies the server: sslmode=verify-full (or require, verify-ca) in ${env("databaseUrl")}`,
      );
    }
  } else if (set(config.postgresCaFile)) {
    problems.push(
      `${env("postgresCaFile")}: applies to an external PostgreSQL; set ${env("databaseUrl")} with sslmode=verify-full`,
    );
  }
  return problems;
}

/** A PEM file's text; loadConfig has checked that it is readable and PEM. */
const pem = (file: string | undefined) => (file === undefined ? undefined : readFileSync(file, "utf8"));

/** Reads the configured certificate files once (at start-up, with the rest of the configuration). */
export function clientSecurity(config: SecuritySettings): ClientSecurity {
  const { kafkaSaslMechanism: mechanism, kafkaSaslUsername: username, kafkaSaslPassword: password } = config;
  return {
    kafka: {
      tls: config.kafkaTls,
      ...(config.kafkaTlsCaFile ? { ca: pem(config.kafkaTlsCaFile) } : {}),
      ...(config.kafkaTlsCertFile ? { cert: pem(config.kafkaTlsCertFile), key: pem(config.kafkaTlsKeyFile) } : {}),
      ...(mechanism && username !== undefined && password !== undefined
        ? { sasl: { mechanism, username, password } }
        : {}),
    },
    ...(config.schemaRegistryCaFile ? { schemaRegistryCa: pem(config.schemaRegistryCaFile) } : {}),
    ...(config.postgresCaFile ? { postgresCa: pem(config.postgresCaFile) } : {}),
    ...(config.redisCaFile ? { redisCa: pem(config.redisCaFile) } : {}),
    ...(config.elasticsearchCaFile ? { elasticsearchCa: pem(config.elasticsearchCaFile) } : {}),
  };
}

/** kafkajs's `ssl` and `sasl`. */
export function kafkaSecurityOptions(security: ClientSecurity): Pick<KafkaConfig, "ssl" | "sasl"> {
  const { tls, ca, cert, key, sasl } = security.kafka;
  const ssl = !tls ? undefined : ca || cert ? { ...(ca ? { ca: [ca] } : {}), ...(cert ? { cert, key } : {}) } : true;
  return {
    ...(ssl ? { ssl } : {}),
    // kafkajs's SASLOptions is a union keyed by the mechanism; each of ours takes username and password.
    ...(sasl
      ? { sasl: { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions }
      : {}),
  };
}

/**
 * Arguments of `new SchemaRegistry(...)`: the host without credentials (user and password in the
 * URL become basic auth, as a managed registry's API key and secret are given), and an HTTPS agent
 * trusting SCHEMA_REGISTRY_CA_FILE when set.
 */
export function schemaRegistryOptions(
  endpoints: { readonly schemaRegistryUrl: string; readonly security: ClientSecurity },
  clientId?: string,
): SchemaRegistryAPIClientArgs {
  const url = new URL(endpoints.schemaRegistryUrl);
  const auth =
    url.username || url.password
      ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
      : undefined;
  url.username = "";
  url.password = "";
  const ca = endpoints.security.schemaRegistryCa;
  return {
    // URL keeps a trailing slash on a bare host; the client appends paths that start with one.
    host: url.href.replace(/\/$/, ""),
    ...(clientId ? { clientId } : {}),
    ...(auth ? { auth } : {}),
    ...(ca && url.protocol === "https:" ? { agent: new HttpsAgent({ ca, keepAlive: true }) } : {}),
  };
}

/**
 * node-postgres options: the URL without its TLS parameters, and `ssl` from its sslmode (which
 * node-postgres would otherwise read itself, overriding any `ssl` given beside it). `require` and
 * `verify-full` check the certificate and the host name, against POSTGRES_CA_FILE or the system
 * CAs; `verify-ca` the certificate only; `no-verify` encrypts without checking (testing only).
 */
export function postgresOptions(endpoints: {
  readonly databaseUrl: string;
  readonly security: ClientSecurity;
}): Pick<PoolConfig, "connectionString" | "ssl"> {
  const url = new URL(endpoints.databaseUrl);
  const mode = (url.searchParams.get("sslmode") ?? "disable") as PgSslMode;
  url.searchParams.delete("sslmode");
  const connectionString = url.href;
  if (mode === "disable") return { connectionString, ssl: false };
  const ca = endpoints.security.postgresCa;
  if (mode === "no-verify") return { connectionString, ssl: { rejectUnauthorized: false } };
  return {
    connectionString,
    ssl: {
      rejectUnauthorized: true,
      ...(ca ? { ca } : {}),
      ...(mode === "verify-ca" ? { checkServerIdentity: () => undefined } : {}),
    },
  };
}

/**
 * DATABASE_URL for a libpq client (the Python training package's psycopg): libpq reads TLS from
 * the URL itself, so POSTGRES_CA_FILE goes in as `sslrootcert`, and node-postgres's `no-verify`,
 * which libpq does not know, becomes `require` (encrypted, unchecked without a root certificate).
 */
export function libpqDatabaseUrl(databaseUrl: string, postgresCaFile: string | undefined): string {
  const url = new URL(databaseUrl);
  if (url.searchParams.get("sslmode") === "no-verify") url.searchParams.set("sslmode", "require");
  if (postgresCaFile) url.searchParams.set("sslrootcert", postgresCaFile);
  return url.href;
}

/** ioredis options for a `rediss://` URL: TLS trusting REDIS_CA_FILE (ioredis turns TLS on from the scheme, with the system CAs). */
export function redisOptions(endpoints: {
  readonly redisUrl: string;
  readonly security: ClientSecurity;
}): Pick<RedisOptions, "tls"> {
  const url = new URL(endpoints.redisUrl);
  const ca = endpoints.security.redisCa;
  if (url.protocol !== "rediss:" || !ca) return {};
  return { tls: { ca, servername: url.hostname } };
}

/** Elasticsearch client options: the node (credentials in its URL are the client's basic auth) and TLS trusting ELASTICSEARCH_CA_FILE. */
export function elasticsearchOptions(endpoints: {
  readonly elasticsearchUrl: string;
  readonly security: ClientSecurity;
}): Pick<ElasticsearchOptions, "node" | "tls"> {
  const ca = endpoints.security.elasticsearchCa;
  return {
    node: endpoints.elasticsearchUrl,
    ...(ca && new URL(endpoints.elasticsearchUrl).protocol === "https:" ? { tls: { ca } } : {}),
  };
}

/** Whether a file is readable PEM (a certificate or key); the reason when not. For the settings' schemas. */
export function pemFileProblem(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
  }
  return /-----BEGIN [A-Z0-9 ]+-----/.test(text)
    ? undefined
    : `${file} is not a PEM file (no -----BEGIN ...----- block)`;
}
