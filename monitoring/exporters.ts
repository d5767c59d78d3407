/**
 * The stack's Prometheus exporters (Debian packages) and the series of theirs the Stack dashboard
 * reads. These names are the exporters' own, not Switchboard's, so they are written down once
 * here, beside the exporter that serves them; the scrape jobs (monitoring/scrape-config.ts), the
 * local stack's services (stack/services/exporters.ts) and docker-compose's all come from this list.
 * Kafka has none: its broker's JMX needs an agent jar; its health is read from the processes'
 * own Kafka clients (streams/metrics.ts).
 */
export interface Exporter {
  /** Scrape job and local stack service name. */
  readonly job: string;
  /** The service it watches. */
  readonly watches: "postgres" | "redis" | "elasticsearch";
  readonly binary: string;
  readonly debianPackage: string;
  /** Its conventional port: docker-compose's, and the local stack's default. */
  readonly port: number;
}

export const EXPORTERS = {
  postgres: { job: "postgres-exporter", watches: "postgres", binary: "/usr/bin/prometheus-postgres-exporter", debianPackage: "prometheus-postgres-exporter", port: 9187 },
  redis: { job: "redis-exporter", watches: "redis", binary: "/usr/bin/prometheus-redis-exporter", debianPackage: "prometheus-redis-exporter", port: 9121 },
  elasticsearch: {
    job: "elasticsearch-exporter",
    watches: "elasticsearch",
    binary: "/usr/bin/prometheus-elasticsearch-exporter",
    debianPackage: "prometheus-elasticsearch-exporter",
    port: 9114,
  },
} as const satisfies Record<string, Exporter>;

/** prometheus-postgres-exporter 0.11's series. */
export const POSTGRES = {
  up: "pg_up",
  backends: "pg_stat_database_numbackends",
  commits: "pg_stat_database_xact_commit",
  rollbacks: "pg_stat_database_xact_rollback",
  deadlocks: "pg_stat_database_deadlocks",
  blocksHit: "pg_stat_database_blks_hit",
  blocksRead: "pg_stat_database_blks_read",
  locks: "pg_locks_count",
  maxConnections: "pg_settings_max_connections",
} as const;

/** prometheus-redis-exporter 1.45's series. */
export const REDIS = {
  up: "redis_up",
  clients: "redis_connected_clients",
  memory: "redis_memory_used_bytes",
  commands: "redis_commands_processed_total",
  hits: "redis_keyspace_hits_total",
  misses: "redis_keyspace_misses_total",
  keys: "redis_db_keys",
  rejectedConnections: "redis_rejected_connections_total",
} as const;

/** prometheus-elasticsearch-exporter 1.5's series. */
export const ELASTICSEARCH = {
  healthUp: "elasticsearch_cluster_health_up",
  status: "elasticsearch_cluster_health_status",
  unassignedShards: "elasticsearch_cluster_health_unassigned_shards",
  heapUsed: "elasticsearch_jvm_memory_used_bytes",
  heapMax: "elasticsearch_jvm_memory_max_bytes",
  searches: "elasticsearch_indices_search_query_total",
  searchSeconds: "elasticsearch_indices_search_query_time_seconds",
  indexed: "elasticsearch_indices_indexing_index_total",
  docs: "elasticsearch_indices_docs",
} as const;
