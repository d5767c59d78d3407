import { clientSecurity, type ClientSecurity } from "../config/security.js";
import type { Config } from "../config/settings.js";
import type { ServiceDefinition, StackPorts } from "./service.js";
import { alertmanager } from "./services/alertmanager.js";
import { dovecot, dovecotUrl } from "./services/dovecot.js";
import { elasticsearch, elasticsearchUrl } from "./services/elasticsearch.js";
import { elasticsearchExporter, postgresExporter, redisExporter } from "./services/exporters.js";
import { kafka, kafkaBrokers } from "./services/kafka.js";
import { postgres, postgresUrl } from "./services/postgres.js";
import { prometheus } from "./services/prometheus.js";
import { redis, redisUrl } from "./services/redis.js";
import { schemaRegistry, schemaRegistryUrl } from "./services/schema-registry.js";

/** Every service of the local stack, in no particular order (the supervisor orders by dependencies). */
export const SERVICES: readonly ServiceDefinition[] = [
  kafka,
  schemaRegistry,
  postgres,
  redis,
  elasticsearch,
  prometheus,
  alertmanager,
  postgresExporter,
  redisExporter,
  elasticsearchExporter,
  dovecot,
];

export function stackPorts(config: Config): StackPorts {
  return {
    kafka: config.kafkaPort,
    kafkaController: config.kafkaControllerPort,
    kafkaSasl: config.kafkaSaslPort,
    schemaRegistry: config.schemaRegistryPort,
    postgres: config.postgresPort,
    redis: config.redisPort,
    elasticsearch: config.elasticsearchPort,
    prometheus: config.prometheusPort,
    alertmanager: config.alertmanagerPort,
    postgresExporter: config.postgresExporterPort,
    redisExporter: config.redisExporterPort,
    elasticsearchExporter: config.elasticsearchExporterPort,
    imap: config.imapPort,
  };
}

/** Where Switchboard's processes find each service: the configured external one, or the local stack's. */
export interface Endpoints {
  readonly kafkaBrokers: readonly string[];
  readonly schemaRegistryUrl: string;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly elasticsearchUrl: string;
  /** IMAP server of the email connector, credentials included (`imap://user:password@host:port`). */
  readonly imapUrl: string;
  /** TLS and SASL of the clients of the services above (`config/security.ts`); every client factory takes it from here. */
  readonly security: ClientSecurity;
}

export function resolveEndpoints(config: Config): Endpoints {
  const ports = stackPorts(config);
  return {
    kafkaBrokers: config.kafkaBrokers?.split(",") ?? kafkaBrokers(ports),
    schemaRegistryUrl: config.schemaRegistryUrl ?? schemaRegistryUrl(ports),
    databaseUrl: config.databaseUrl ?? postgresUrl(ports),
    redisUrl: config.redisUrl ?? redisUrl(ports),
    elasticsearchUrl: config.elasticsearchUrl ?? elasticsearchUrl(ports),
    imapUrl: config.imapUrl ?? dovecotUrl(ports),
    security: clientSecurity(config),
  };
}

/** The services to run locally: all but those the configuration points elsewhere. */
export function localServices(config: Config): ServiceDefinition[] {
  const external = new Set<string>();
  if (config.kafkaBrokers) external.add(kafka.name);
  if (config.schemaRegistryUrl) external.add(schemaRegistry.name);
  // An external service is watched by whoever runs it: its exporter stays out with it.
  if (config.databaseUrl) external.add(postgres.name).add(postgresExporter.name);
  if (config.redisUrl) external.add(redis.name).add(redisExporter.name);
  if (config.elasticsearchUrl) external.add(elasticsearch.name).add(elasticsearchExporter.name);
  if (config.imapUrl) external.add(dovecot.name);
  return SERVICES.filter((service) => !external.has(service.name));
}
