import { GenericContainer, Network, Wait, getContainerRuntimeClient, type StartedTestContainer } from "testcontainers";
import { NO_SECURITY } from "../../config/security.js";
import type { Config } from "../../config/settings.js";
import { stackPorts, type Endpoints } from "../../stack/index.js";
import { dovecotUrl } from "../../stack/services/dovecot.js";

async function dockerAvailable(): Promise<boolean> {
  try {
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/**
 * The same services as the local stack, as containers, when a Docker engine is present and no
 * external service is configured. Returns undefined otherwise (the local stack is used).
 */
export async function startContainers(config: Config): Promise<{ endpoints: Endpoints; stop: () => Promise<void> } | undefined> {
  const anyExternal = config.kafkaBrokers ?? config.schemaRegistryUrl ?? config.databaseUrl ?? config.redisUrl ?? config.elasticsearchUrl;
  if (anyExternal || process.env.SWITCHBOARD_TEST_STACK === "local" || !(await dockerAvailable())) return undefined;
  const network = await new Network().start();
  const started: StartedTestContainer[] = [];
  const start = async (container: GenericContainer) => {
    const running = await container.withNetwork(network).start();
    started.push(running);
    return running;
  };
  const kafkaPort = 19092;
  await start(
    new GenericContainer("apache/kafka:3.9.1")
      .withNetworkAliases("kafka")
      .withExposedPorts({ container: kafkaPort, host: kafkaPort })
      .withEnvironment({
        KAFKA_NODE_ID: "1",
        KAFKA_PROCESS_ROLES: "broker,controller",
        KAFKA_LISTENERS: `PLAINTEXT://:${kafkaPort},INTERNAL://:9092,CONTROLLER://:9093`,
        KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${kafkaPort},INTERNAL://kafka:9092`,
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        KAFKA_INTER_BROKER_LISTENER_NAME: "INTERNAL",
        KAFKA_CONTROLLER_LISTENER_NAMES: "CONTROLLER",
        KAFKA_CONTROLLER_QUORUM_VOTERS: "1@kafka:9093",
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: "1",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: "1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: "1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: "0",
        KAFKA_AUTO_CREATE_TOPICS_ENABLE: "false",
      })
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/)),
  );
  const registry = await start(
    new GenericContainer("apicurio/apicurio-registry:3.0.9").withExposedPorts(8080).withWaitStrategy(Wait.forHttp("/apis/ccompat/v7/subjects", 8080)),
  );
  const postgres = await start(
    new GenericContainer("postgres:15")
      .withEnvironment({ POSTGRES_USER: "switchboard", POSTGRES_DB: "switchboard", POSTGRES_HOST_AUTH_METHOD: "trust" })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2)),
  );
  const redis = await start(new GenericContainer("redis:7").withExposedPorts(6379));
  const elasticsearch = await start(
    new GenericContainer("docker.elastic.co/elasticsearch/elasticsearch:8.19.4")
      .withEnvironment({ "discovery.type": "single-node", "xpack.security.enabled": "false", ES_JAVA_OPTS: "-Xms512m -Xmx1g" })
      .withExposedPorts(9200)
      .withWaitStrategy(Wait.forHttp("/_cluster/health", 9200)),
  );
  const url = (container: StartedTestContainer, port: number, scheme: string, path = "") =>
    `${scheme}://${container.getHost()}:${container.getMappedPort(port)}${path}`;
  return {
    endpoints: {
      kafkaBrokers: [`127.0.0.1:${kafkaPort}`],
      schemaRegistryUrl: url(registry, 8080, "http", "/apis/ccompat/v7"),
      databaseUrl: url(postgres, 5432, "postgres", "/switchboard").replace("postgres://", "postgres://switchboard@"),
      redisUrl: url(redis, 6379, "redis"),
      elasticsearchUrl: url(elasticsearch, 9200, "http"),
      // Dovecot is the local stack's in this mode too (global-setup starts it): Debian's package, no image.
      imapUrl: config.imapUrl ?? dovecotUrl(stackPorts(config)),
      // The containers take plain connections, as the local stack's services do.
      security: NO_SECURITY,
    },
    stop: async () => {
      for (const container of started.reverse()) await container.stop();
      await network.stop();
    },
  };
}
