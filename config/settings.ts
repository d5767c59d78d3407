import { isIP } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { SASL_MECHANISMS, pemFileProblem, securityProblems } from "./security.js";

/** The repository root, so that defaults work from any working directory. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().positive();
const url = z.string().url();
const webhookSecret = z.string().min(16, "a webhook secret needs at least 16 characters");
/** A certificate or key file: checked readable and PEM once, at start-up, rather than at the first connection. */
const pemFile = z
  .string()
  .min(1)
  .superRefine((file, ctx) => {
    const problem = pemFileProblem(file);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/**
 * Every setting Switchboard reads, with its environment variable, default and meaning.
 * This table is the single source: `loadConfig` validates it and README documents it
 * (a test keeps the two in step).
 */
export const SETTINGS = {
  stackHome: {
    env: "SWITCHBOARD_STACK_HOME",
    schema: z.string().min(1),
    default: path.join(REPO_ROOT, ".stack"),
    doc: "Folder for the local stack's downloads, data and logs (git-ignored).",
  },
  logLevel: {
    env: "LOG_LEVEL",
    schema: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]),
    default: "info",
    doc: "Minimum level of the logs (on stderr).",
  },
  logFormat: {
    env: "LOG_FORMAT",
    schema: z.enum(["auto", "pretty", "json"]),
    default: "auto",
    doc: "`json`: one JSON object a line; `pretty`: one coloured line per event, for people; `auto`: pretty when stderr is a terminal and CI is not set, else JSON (processors started by `up` log JSON to files).",
  },
  kafkaBrokers: {
    env: "KAFKA_BROKERS",
    schema: z.string().regex(/^[^,\s]+:\d+(,[^,\s]+:\d+)*$/, "expected host:port[,host:port...]").optional(),
    default: undefined,
    doc: "Comma-separated Kafka bootstrap servers. When set, the local Kafka is not started and this cluster is used.",
  },
  schemaRegistryUrl: {
    env: "SCHEMA_REGISTRY_URL",
    schema: url.optional(),
    default: undefined,
    doc: "Base URL of a Confluent-compatible schema registry. When set, the local registry is not started.",
  },
  databaseUrl: {
    env: "DATABASE_URL",
    schema: url.optional(),
    default: undefined,
    doc: "PostgreSQL connection URL. When set, the local PostgreSQL is not started.",
  },
  redisUrl: {
    env: "REDIS_URL",
    schema: url.optional(),
    default: undefined,
    doc: "Redis URL. When set, the local Redis is not started.",
  },
  prometheusUrl: {
    env: "PROMETHEUS_URL",
    schema: url.optional(),
    default: undefined,
    doc: "Prometheus whose HTTP API `switchboard status` and the API's status page (`/v1/status`, `/v1/series`) read (series and active alerts). Unset: the local stack's, on `SWITCHBOARD_PROMETHEUS_PORT`.",
  },
  elasticsearchUrl: {
    env: "ELASTICSEARCH_URL",
    schema: url.optional(),
    default: undefined,
    doc: "Elasticsearch URL. When set, the local Elasticsearch is not started.",
  },
  imapUrl: {
    env: "IMAP_URL",
    schema: url.regex(/^imaps?:\/\//, "expected imap://user:password@host:port (imaps:// for TLS)").optional(),
    default: undefined,
    doc: "IMAP server and mailbox account the email connector reads: `imap://user:password@host:port` (`imaps://` for TLS; user and password URL-encoded). When set, the local Dovecot is not started.",
  },
  smtpUrl: {
    env: "SMTP_URL",
    schema: url.regex(/^smtps?:\/\//, "expected smtp://[user:password@]host:port (smtps:// for TLS)").optional(),
    default: undefined,
    doc: "SMTP server the email connector sends automatic replies through: `smtp://[user:password@]host:port` (`smtps://` for TLS). Unset, replies stay drafts; set, a reply is sent only where the routing rules' `auto_reply` allows it.",
  },
  kafkaSaslMechanism: {
    env: "KAFKA_SASL_MECHANISM",
    schema: z.string().toLowerCase().pipe(z.enum(SASL_MECHANISMS)).optional(),
    default: undefined,
    doc: "SASL mechanism of the external Kafka cluster: `scram-sha-256`, `scram-sha-512` or `plain` (only with `KAFKA_TLS`). Needs `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD`; unset, no SASL.",
  },
  kafkaSaslUsername: {
    env: "KAFKA_SASL_USERNAME",
    schema: z.string().min(1).optional(),
    default: undefined,
    doc: "SASL user name (a managed cluster's API key).",
  },
  kafkaSaslPassword: {
    env: "KAFKA_SASL_PASSWORD",
    schema: z.string().min(1).optional(),
    default: undefined,
    secret: true,
    doc: "SASL password (a managed cluster's API secret); never logged.",
  },
  kafkaTls: {
    env: "KAFKA_TLS",
    schema: z.stringbool(),
    default: "false",
    doc: "`true`: connect to the external Kafka cluster over TLS (SSL, or SASL_SSL with a SASL mechanism), trusting the system CAs or `KAFKA_TLS_CA_FILE`.",
  },
  kafkaTlsCaFile: {
    env: "KAFKA_TLS_CA_FILE",
    schema: pemFile.optional(),
    default: undefined,
    doc: "PEM file of the CA certificates that sign the brokers' certificates, for a private CA.",
  },
  kafkaTlsCertFile: {
    env: "KAFKA_TLS_CERT_FILE",
    schema: pemFile.optional(),
    default: undefined,
    doc: "PEM client certificate, for brokers that authenticate clients by certificate (mutual TLS); with `KAFKA_TLS_KEY_FILE`.",
  },
  kafkaTlsKeyFile: {
    env: "KAFKA_TLS_KEY_FILE",
    schema: pemFile.optional(),
    default: undefined,
    doc: "PEM private key (unencrypted) of `KAFKA_TLS_CERT_FILE`.",
  },
  schemaRegistryCaFile: {
    env: "SCHEMA_REGISTRY_CA_FILE",
    schema: pemFile.optional(),
    default: undefined,
    doc: "PEM CA certificates the schema registry's HTTPS certificate is checked against (system CAs when unset). TLS itself is an `https://` `SCHEMA_REGISTRY_URL`; user and password in that URL are sent as basic auth.",
  },
  postgresCaFile: {
    env: "POSTGRES_CA_FILE",
    schema: pemFile.optional(),
    default: undefined,
    doc: "PEM CA certificates PostgreSQL's certificate is checked against (system CAs when unset). TLS itself is `sslmode` in `DATABASE_URL`: `verify-full` or `require` (certificate and host name checked), `verify-ca` (certificate only), `no-verify`, `disable` (the default).",
  },
  redisCaFile: {
    env: "REDIS_CA_FILE",
    schema: pemFile.optional(),
    default: undefined,
    doc: "PEM CA certificates Redis's certificate is checked against (system CAs when unset). TLS itself is a `rediss://` `REDIS_URL`.",
  },
  elasticsearchCaFile: {
    env: "ELASTICSEARCH_CA_FILE",
    schema: pemFile.optional(),
    default: undefined,
    doc: "PEM CA certificates Elasticsearch's certificate is checked against (system CAs when unset). TLS itself is an `https://` `ELASTICSEARCH_URL` (user and password in it are basic auth).",
  },
  kafkaPort: { env: "SWITCHBOARD_KAFKA_PORT", schema: port, default: 9092, doc: "Port of the local Kafka broker." },
  kafkaControllerPort: {
    env: "SWITCHBOARD_KAFKA_CONTROLLER_PORT",
    schema: port,
    default: 9093,
    doc: "Port of the local Kafka KRaft controller.",
  },
  kafkaSaslPort: {
    env: "SWITCHBOARD_KAFKA_SASL_PORT",
    schema: port,
    default: 9094,
    doc: "Port of the local Kafka broker's SASL_PLAINTEXT listener (SCRAM-SHA-512, user `switchboard`, password made once in `.stack/secrets/kafka-scram-password`), for testing the SASL path; everything else uses the plaintext port.",
  },
  schemaRegistryPort: {
    env: "SWITCHBOARD_SCHEMA_REGISTRY_PORT",
    schema: port,
    default: 8081,
    doc: "Port of the local schema registry.",
  },
  postgresPort: {
    env: "SWITCHBOARD_POSTGRES_PORT",
    schema: port,
    default: 5433,
    doc: "Port of the local PostgreSQL (not 5432, to stay clear of a system cluster).",
  },
  redisPort: {
    env: "SWITCHBOARD_REDIS_PORT",
    schema: port,
    default: 6380,
    doc: "Port of the local Redis (not 6379, to stay clear of a system server).",
  },
  elasticsearchPort: {
    env: "SWITCHBOARD_ELASTICSEARCH_PORT",
    schema: port,
    default: 9200,
    doc: "HTTP port of the local Elasticsearch.",
  },
  prometheusPort: {
    env: "SWITCHBOARD_PROMETHEUS_PORT",
    schema: port,
    default: 9090,
    doc: "Port of the local Prometheus.",
  },
  alertmanagerPort: {
    env: "SWITCHBOARD_ALERTMANAGER_PORT",
    schema: port,
    default: 9095,
    doc: "Port of the local Alertmanager (not 9093: the local Kafka's controller has it), which the local Prometheus sends its alerts to (monitoring/alerts.yml).",
  },
  postgresExporterPort: {
    env: "SWITCHBOARD_POSTGRES_EXPORTER_PORT",
    schema: port,
    default: 9187,
    doc: "Port of the local stack's PostgreSQL exporter (Debian's prometheus-postgres-exporter), which the local Prometheus scrapes.",
  },
  redisExporterPort: {
    env: "SWITCHBOARD_REDIS_EXPORTER_PORT",
    schema: port,
    default: 9121,
    doc: "Port of the local stack's Redis exporter (prometheus-redis-exporter).",
  },
  elasticsearchExporterPort: {
    env: "SWITCHBOARD_ELASTICSEARCH_EXPORTER_PORT",
    schema: port,
    default: 9114,
    doc: "Port of the local stack's Elasticsearch exporter (prometheus-elasticsearch-exporter).",
  },
  imapPort: {
    env: "SWITCHBOARD_IMAP_PORT",
    schema: port,
    default: 1143,
    doc: "IMAP port of the local Dovecot (not 143, to stay clear of a system server).",
  },
  metricsPort: {
    env: "SWITCHBOARD_METRICS_PORT",
    schema: z.coerce.number().int().min(0).max(65535).optional(),
    default: undefined,
    doc: "Port of a processor's or connector's HTTP server (/healthz, /metrics, a connector's own routes); defaults to its port in the topology (0 picks a free port).",
  },
  inquiryPartitions: {
    env: "SWITCHBOARD_INQUIRY_PARTITIONS",
    schema: z.coerce.number().int().min(1).max(10_000),
    default: 6,
    doc: "Partitions of every inquiry topic (`inquiries.*`, `predictions.feedback`, `route.timeouts`: all share the count, so that one inquiry's records meet in one partition number) that `topics create` makes; bounds each processor group's parallelism. Existing topics are never repartitioned (that would move keys): `topics create` says when they differ.",
  },
  instanceId: {
    env: "SWITCHBOARD_INSTANCE_ID",
    schema: z.string().regex(/^[A-Za-z0-9._-]+$/, "letters, digits, . _ - only"),
    default: os.hostname(),
    doc: "Identity of this processor instance, part of its Kafka transactional id. Stable across restarts so a restarted instance fences its predecessor; unique per instance when several run on one host.",
  },
  sessionTimeoutMs: {
    env: "SWITCHBOARD_SESSION_TIMEOUT_MS",
    schema: z.coerce.number().int().min(6000).max(300_000),
    default: 30_000,
    doc: "Kafka consumer session timeout: how soon a crashed instance's partitions move to the others (the broker's minimum is 6000).",
  },
  commitIntervalMs: {
    env: "SWITCHBOARD_COMMIT_INTERVAL_MS",
    schema: positiveInt,
    default: 200,
    doc: "Longest a processor works on one fetch before it commits what it has processed (one Kafka transaction); the rest of the fetch goes into the next one. Bounds end-to-end latency and the work redone after a crash when a fetch is large (a backlog) or records are slow.",
  },
  maxAttempts: {
    env: "SWITCHBOARD_MAX_ATTEMPTS",
    schema: positiveInt,
    default: 5,
    doc: "Attempts a processor makes on a record that fails with a transient error before it goes to the DLQ.",
  },
  retryBackoffMs: {
    env: "SWITCHBOARD_RETRY_BACKOFF_MS",
    schema: positiveInt,
    default: 200,
    doc: "First retry delay in ms; doubles on each attempt (with jitter), capped at 30 s.",
  },
  maxRecordBytes: {
    env: "SWITCHBOARD_MAX_RECORD_BYTES",
    schema: positiveInt,
    default: 1_048_576,
    doc: "Largest input record value a processor accepts; larger records go to the DLQ as oversized.",
  },
  shutdownTimeoutMs: {
    env: "SWITCHBOARD_SHUTDOWN_TIMEOUT_MS",
    schema: positiveInt,
    default: 30_000,
    doc: "On SIGTERM, how long a processor may take to finish its batch and leave the group before it exits anyway.",
  },
  modelsDir: {
    env: "SWITCHBOARD_MODELS_DIR",
    schema: z.string().min(1),
    default: path.join(REPO_ROOT, ".stack", "models"),
    doc: "Artifact directory of model versions (`<model>/<version>/model.onnx` + `manifest.json`); training writes it, processors read it.",
  },
  modelPollMs: {
    env: "SWITCHBOARD_MODEL_POLL_MS",
    schema: positiveInt,
    default: 60_000,
    doc: "How often a model-running processor asks the registry for its production and shadow versions without being told: the fallback, since a `models.lifecycle` record (promoted, rolled back, shadow started, rejected) makes it ask at once.",
  },
  driftWindowRows: {
    env: "SWITCHBOARD_DRIFT_WINDOW_ROWS",
    schema: positiveInt,
    default: 500,
    doc: "`drift`: predictions of one model version per window, when windows are by count (SWITCHBOARD_DRIFT_WINDOW_MS 0). Up to 1,000 rows a window is judged by tests (χ², KS at p < 0.05), above by distances (Jensen–Shannon, Wasserstein over 0.1), as Evidently does.",
  },
  driftWindowMs: {
    env: "SWITCHBOARD_DRIFT_WINDOW_MS",
    schema: z.coerce.number().int().min(0),
    default: 0,
    doc: "`drift`: windows by time instead, of this many ms aligned to the epoch, closed by the first record past their end (event time: a replay gives the same windows). 0: windows by count.",
  },
  driftRaiseAfter: {
    env: "SWITCHBOARD_DRIFT_RAISE_AFTER",
    schema: positiveInt,
    default: 3,
    doc: "`drift`: consecutive windows over a statistic's threshold before its drift event is raised (one in 8,000 stable windows by chance at p < 0.05).",
  },
  driftClearAfter: {
    env: "SWITCHBOARD_DRIFT_CLEAR_AFTER",
    schema: positiveInt,
    default: 3,
    doc: "`drift`: consecutive settled windows (p ≥ 0.2, or half the distance threshold) before a raised drift clears.",
  },
  driftCooldownMs: {
    env: "SWITCHBOARD_DRIFT_COOLDOWN_MS",
    schema: z.coerce.number().int().min(0),
    default: 3_600_000,
    doc: "`drift`: least time between two raises of one statistic of one model version, so a shift that comes and goes does not storm.",
  },
  driftTextIntervalMs: {
    env: "SWITCHBOARD_DRIFT_TEXT_INTERVAL_MS",
    schema: z.coerce.number().int().min(0),
    default: 3_600_000,
    doc: "`drift`: how often each watched model version's recent inputs are tested for text drift by a domain classifier against its training texts (ROC AUC over 0.55 or the chance bound). 0: never.",
  },
  driftTextRows: {
    env: "SWITCHBOARD_DRIFT_TEXT_ROWS",
    schema: z.coerce.number().int().min(20),
    default: 500,
    doc: "`drift`: texts a side in the text-drift test (training texts, latest live inputs); fewer live inputs than half this and the test waits.",
  },
  qualityRefreshMs: {
    env: "SWITCHBOARD_QUALITY_REFRESH_MS",
    schema: z.coerce.number().int().min(0),
    default: 60_000,
    doc: "`drift`: how often live model quality (measured on labels, estimated without them, and the check of the estimate) is computed from PostgreSQL into its metrics (quality/README.md), and the agents' queues (waiting inquiries, the oldest's age: monitoring/queues.ts). 0: never.",
  },
  qualityWindows: {
    env: "SWITCHBOARD_QUALITY_WINDOWS",
    schema: z.string().regex(/^\s*(\d+[mhd]?)(\s*,\s*\d+[mhd]?)*\s*$/, "expected windows such as 1h,1d,1000 (minutes m, hours h, days d, or a count of predictions)"),
    default: "1h,1d,1000",
    doc: "`drift`: the windows live model quality is reported over: a time back from now (`15m`, `1h`, `7d`) or the last N predictions of each version (`1000`).",
  },
  inferenceThreads: {
    env: "SWITCHBOARD_INFERENCE_THREADS",
    schema: z.coerce.number().int().min(0).max(64),
    default: 2,
    doc: "Worker threads a process runs its ONNX models in, off the event loop (each version's session lives in one, one run at a time each; a worker that dies is replaced and its runs retried). `0`: on the main thread, which a run then blocks. Two let the triage chain's five models run two at a time (its saturation 247/s with one, 342/s with two, on a 2-core machine).",
  },
  outOfScopeThreshold: {
    env: "SWITCHBOARD_OUT_OF_SCOPE_THRESHOLD",
    schema: z.coerce.number().min(0).max(1),
    default: 0.4,
    doc: "Intent confidence below which `classify` flags an inquiry out of scope when the answering intent version has no served operating point in its manifest, and for inquiries not in English answered by an English head whose point is on in-scope similarity (chosen on English text).",
  },
  routingRules: {
    env: "SWITCHBOARD_ROUTING_RULES",
    schema: z.string().min(1),
    default: path.join(REPO_ROOT, "config", "routing-rules.yaml"),
    doc: "YAML file of routing rules (departments, escalation, tiers, language queues); reloaded when it changes.",
  },
  routeJoinTimeoutMs: {
    env: "SWITCHBOARD_ROUTE_JOIN_TIMEOUT_MS",
    schema: positiveInt,
    default: 5_000,
    doc: "How long `route` waits for all predictions of an inquiry before routing it with what is known, flagged for review.",
  },
  repeatContactWindowMs: {
    env: "SWITCHBOARD_REPEAT_CONTACT_WINDOW_MS",
    schema: positiveInt,
    default: 86_400_000,
    doc: "Window in which a second inquiry from the same customer fires the `repeat_contact` urgency signal.",
  },
  knowledgeBaseIndex: {
    env: "SWITCHBOARD_KB_INDEX",
    schema: z.string().regex(/^[a-z0-9._-]+$/, "lower-case Elasticsearch index name"),
    default: "switchboard-kb",
    doc: "Elasticsearch index of the knowledge base that `respond` retrieves from.",
  },
  inquiryIndex: {
    env: "SWITCHBOARD_INQUIRY_INDEX",
    schema: z.string().regex(/^[a-z0-9._-]+$/, "lower-case Elasticsearch index name"),
    default: "switchboard-inquiries",
    doc: "Elasticsearch index of inquiries for full-text search.",
  },
  apiBodyLimitBytes: {
    env: "SWITCHBOARD_API_BODY_LIMIT_BYTES",
    schema: positiveInt,
    default: 262_144,
    doc: "Largest request body the REST API reads; a larger one is answered 413.",
  },
  apiRateLimit: {
    env: "SWITCHBOARD_API_RATE_LIMIT",
    schema: positiveInt,
    default: 6_000,
    doc: "Requests one API key may make per rate window; more are answered 429 with Retry-After.",
  },
  apiRateWindowMs: {
    env: "SWITCHBOARD_API_RATE_WINDOW_MS",
    schema: positiveInt,
    default: 60_000,
    doc: "The REST API's rate-limit window (fixed windows, counted in Redis across API instances).",
  },
  apiIdempotencyTtlMs: {
    env: "SWITCHBOARD_API_IDEMPOTENCY_TTL_MS",
    schema: positiveInt,
    default: 86_400_000,
    doc: "How long the REST API remembers an Idempotency-Key. (That it accepted an inquiry, so that its status reads `received` before the archive has it, is kept an hour.)",
  },
  apiKeyCacheMs: {
    env: "SWITCHBOARD_API_KEY_CACHE_MS",
    schema: positiveInt,
    default: 5_000,
    doc: "How long the REST API trusts a verified API key before asking PostgreSQL again: a revoked key stops working within this.",
  },
  chatTokenSecret: {
    env: "SWITCHBOARD_CHAT_TOKEN_SECRET",
    schema: z.string().min(32, "a chat token secret needs at least 32 characters").optional(),
    default: undefined,
    secret: true,
    doc: "Key that signs chat session tokens; the API (which issues them) and every chat gateway instance (which verifies them) need the same. Unset, the main job makes a local one in `.stack/secrets/chat-token-secret`.",
  },
  chatGuestSessions: {
    env: "SWITCHBOARD_CHAT_GUEST_SESSIONS",
    schema: z.stringbool(),
    default: "true",
    doc: "`true`: the chat gateway issues a session to any visitor of its chat page (`POST /chat/sessions`, rate-limited per address); `false`: only sessions the API issues to an integration (`POST /v1/chat/sessions`) are accepted.",
  },
  chatGuestSessionLimit: {
    env: "SWITCHBOARD_CHAT_GUEST_SESSION_LIMIT",
    schema: positiveInt,
    default: 30,
    doc: "Guest sessions one client address may open per chat rate window (`POST /chat/sessions`, counted in Redis across instances); more are refused with 429.",
  },
  trustedProxies: {
    env: "SWITCHBOARD_TRUSTED_PROXIES",
    schema: z
      .string()
      .refine(
        (list) => list.split(",").every((entry) => {
          const [address, prefix, ...rest] = entry.trim().split("/");
          const family = isIP(address ?? "");
          const bits = family === 4 ? 32 : 128;
          return family !== 0 && rest.length === 0 && (prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= bits));
        }),
        "expected comma-separated IP addresses or CIDR ranges (10.0.0.0/8,::1)",
      )
      .optional(),
    default: undefined,
    doc: "Comma-separated addresses or CIDR ranges of the load balancers or reverse proxies in front of the connectors (the API, the chat gateway, the webhooks): a request from one of them counts as coming from the client address its `X-Forwarded-For` names, so the per-address limits (guest chat sessions, console sign-in) count customers, not the proxy. Unset: the connection's own address, and `X-Forwarded-For` is ignored (any client could write it).",
  },
  chatSessionTtlSeconds: {
    env: "SWITCHBOARD_CHAT_SESSION_TTL_SECONDS",
    schema: positiveInt,
    default: 86_400,
    doc: "How long a chat session token is valid, and how long the session's undelivered replies are kept for it to resume.",
  },
  chatMaxMessageBytes: {
    env: "SWITCHBOARD_CHAT_MAX_MESSAGE_BYTES",
    schema: positiveInt,
    default: 16_384,
    doc: "Largest WebSocket message the chat gateway reads; a larger one closes the socket with 1009.",
  },
  chatRateLimit: {
    env: "SWITCHBOARD_CHAT_RATE_LIMIT",
    schema: positiveInt,
    default: 20,
    doc: "Customer messages one chat session may send per rate window (across instances and reconnects); more are refused with an error event, the socket stays open.",
  },
  chatRateWindowMs: {
    env: "SWITCHBOARD_CHAT_RATE_WINDOW_MS",
    schema: positiveInt,
    default: 60_000,
    doc: "The chat gateway's rate-limit window (fixed windows, counted in Redis).",
  },
  chatHeartbeatMs: {
    env: "SWITCHBOARD_CHAT_HEARTBEAT_MS",
    schema: positiveInt,
    default: 30_000,
    doc: "How often the chat gateway pings each socket; one that has not answered the previous ping is closed.",
  },
  chatPagePingMs: {
    env: "SWITCHBOARD_CHAT_PAGE_PING_MS",
    schema: z.coerce.number().int().min(500),
    default: 25_000,
    doc: "How long the chat page waits having received nothing before it sends a `ping` (the gateway announces it in `welcome` and answers `pong` at once); no frame within as long again, the page takes the connection for dead and reconnects. A browser cannot see the gateway's own pings, so this is how an idle page finds out its connection died without a close.",
  },
  chatMaxBufferedBytes: {
    env: "SWITCHBOARD_CHAT_MAX_BUFFERED_BYTES",
    schema: positiveInt,
    default: 1_048_576,
    doc: "Bytes a socket may have queued unsent before the gateway closes it (4008, slow client): its replies stay in the session's mailbox for it to resume.",
  },
  chatInstanceId: {
    env: "SWITCHBOARD_CHAT_INSTANCE_ID",
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "expected 1-64 letters, digits, dots, dashes or underscores").optional(),
    default: undefined,
    doc: "Name of this chat gateway instance in Redis's session → instance map; defaults to host name and process id.",
  },
  chatGatewayUrls: {
    env: "SWITCHBOARD_CHAT_GATEWAY_URLS",
    schema: z.string().regex(/^wss?:\/\/[^,\s]+(,wss?:\/\/[^,\s]+)*$/, "expected ws://host:port[,ws://host:port...]").optional(),
    default: undefined,
    doc: "Comma-separated WebSocket URLs the chat page tries in turn when its connection drops (instances behind no load balancer); unset, the page reconnects to the instance that served it.",
  },
  consoleSessionTtlSeconds: {
    env: "SWITCHBOARD_CONSOLE_SESSION_TTL_SECONDS",
    schema: positiveInt,
    default: 28_800,
    doc: "How long an agent's console login lasts (a session in Redis behind an HttpOnly cookie) before the agent signs in again.",
  },
  imapMailbox: {
    env: "SWITCHBOARD_IMAP_MAILBOX",
    schema: z.string().min(1),
    default: "INBOX",
    doc: "Mailbox the email connector watches (IMAP IDLE). A message it refuses stays there, flagged `$SwitchboardRefused` and `$SwitchboardReason_<reason>`.",
  },
  imapProcessedMailbox: {
    env: "SWITCHBOARD_IMAP_PROCESSED_MAILBOX",
    schema: z.string().min(1),
    default: "Processed",
    doc: "Mailbox a message is moved to, flagged `$Switchboard`, once Kafka has acknowledged its inquiry; created when missing.",
  },
  emailMaxBytes: {
    env: "SWITCHBOARD_EMAIL_MAX_BYTES",
    schema: positiveInt,
    default: 26_214_400,
    doc: "Largest email (all of it, attachments included) the email connector and `import-mail` accept; a larger one is refused as `too_large` without being downloaded.",
  },
  emailFrom: {
    env: "SWITCHBOARD_EMAIL_FROM",
    schema: z.string().min(3),
    default: "Switchboard <switchboard@localhost>",
    doc: "From address of automatic replies to email inquiries.",
  },
  llmUrl: {
    env: "SWITCHBOARD_LLM_URL",
    schema: url.optional(),
    default: undefined,
    doc: "Base URL of an OpenAI-compatible endpoint (`.../v1`) for drafting replies; unset keeps the LLM off.",
  },
  llmModel: {
    env: "SWITCHBOARD_LLM_MODEL",
    schema: z.string().min(1),
    default: "gpt-4o-mini",
    doc: "Model name sent to the LLM endpoint.",
  },
  llmApiKey: {
    env: "SWITCHBOARD_LLM_API_KEY",
    schema: z.string().optional(),
    default: undefined,
    doc: "Bearer token for the LLM endpoint, if it needs one.",
  },
  zendeskWebhookSecret: {
    env: "SWITCHBOARD_ZENDESK_WEBHOOK_SECRET",
    schema: webhookSecret.optional(),
    default: undefined,
    secret: true,
    doc: "Signing secret of the Zendesk webhook (Admin Center > Apps and integrations > Webhooks > the webhook > Signing secret); unset, `/v1/webhooks/zendesk` refuses every request.",
  },
  freshdeskWebhookSecret: {
    env: "SWITCHBOARD_FRESHDESK_WEBHOOK_SECRET",
    schema: webhookSecret.optional(),
    default: undefined,
    secret: true,
    doc: "Secret Freshdesk deliveries are signed with (`X-Freshdesk-Signature`, see Ticket webhooks); unset, `/v1/webhooks/freshdesk` refuses every request.",
  },
  genericWebhookSecret: {
    env: "SWITCHBOARD_GENERIC_WEBHOOK_SECRET",
    schema: webhookSecret.optional(),
    default: undefined,
    secret: true,
    doc: "Secret of the generic ticket webhook (`X-Switchboard-Signature`); unset, `/v1/webhooks/generic` refuses every request.",
  },
  webhookToleranceSeconds: {
    env: "SWITCHBOARD_WEBHOOK_TOLERANCE_SECONDS",
    schema: positiveInt,
    default: 300,
    doc: "How far a ticket webhook's signed timestamp may be from now before the request is refused as stale; each signature is remembered for twice as long, and refused when it comes again.",
  },
  webhookMaxBytes: {
    env: "SWITCHBOARD_WEBHOOK_MAX_BYTES",
    schema: positiveInt,
    default: 524_288,
    doc: "Largest ticket webhook body accepted (413 above): well under the 1 MB Kafka caps a record at.",
  },
  ticketLabels: {
    env: "SWITCHBOARD_TICKET_LABELS",
    schema: z.string().min(1),
    default: path.join(REPO_ROOT, "config", "ticket-labels.yaml"),
    doc: "YAML file mapping help-desk groups, ticket types and intent fields to the departments, categories and intents that ticket updates label; read when the API starts.",
  },
  registrySchema: {
    env: "SWITCHBOARD_REGISTRY_SCHEMA",
    schema: z.string().regex(/^[a-z_][a-z0-9_]*$/, "lower-case PostgreSQL schema name"),
    default: "model_registry",
    doc: "PostgreSQL schema of the model registry that model-running processors serve their production and shadow versions from and `retrain` and its lifecycle relay act on, passed on to the training package it runs (which reads the same variable).",
  },
  retrainDriftSeverity: {
    env: "SWITCHBOARD_RETRAIN_DRIFT_SEVERITY",
    schema: z.enum(["info", "warning", "critical"]),
    default: "critical",
    doc: "`retrain`: least severity of a `models.drift` record (about a model's production version) that asks for a retraining.",
  },
  retrainNewLabels: {
    env: "SWITCHBOARD_RETRAIN_NEW_LABELS",
    schema: z.coerce.number().int().min(0),
    default: 500,
    doc: "`retrain`: resolved human labels of the production version's predictions, given since it was created and since the model's last retraining job, that ask for a retraining. 0: labels never do.",
  },
  retrainLabelCheckMs: {
    env: "SWITCHBOARD_RETRAIN_LABEL_CHECK_MS",
    schema: positiveInt,
    default: 300_000,
    doc: "`retrain`: how often the new labels of each model are counted.",
  },
  retrainPollMs: {
    env: "SWITCHBOARD_RETRAIN_POLL_MS",
    schema: positiveInt,
    default: 5_000,
    doc: "`retrain`: how often the job runner starts queued jobs, checks shadow evaluations and marks its jobs alive.",
  },
  retrainCooldownMs: {
    env: "SWITCHBOARD_RETRAIN_COOLDOWN_MS",
    schema: z.coerce.number().int().min(0),
    default: 3_600_000,
    doc: "`retrain`: least time from the end of a model's job to the start of its next one asked for by drift or labels (a `switchboard retrain` command does not wait).",
  },
  retrainStaleAfterMs: {
    env: "SWITCHBOARD_RETRAIN_STALE_AFTER_MS",
    schema: positiveInt,
    default: 60_000,
    doc: "`retrain`: a running job whose process has not marked it alive for this long is taken over: a shadow evaluation is resumed, an interrupted training fails with that reason.",
  },
  retrainMaxSeconds: {
    env: "SWITCHBOARD_RETRAIN_MAX_SECONDS",
    schema: positiveInt,
    default: 3_600,
    doc: "`retrain`: wall time one training run may take (the training package's --max-seconds); past it the run fails.",
  },
  retrainMaxMemoryMb: {
    env: "SWITCHBOARD_RETRAIN_MAX_MEMORY_MB",
    schema: positiveInt,
    default: 3_072,
    doc: "`retrain`: memory one training run may take (the training package's --max-memory-mb); past it the run fails.",
  },
  retrainLimit: {
    env: "SWITCHBOARD_RETRAIN_LIMIT",
    schema: positiveInt.optional(),
    default: undefined,
    doc: "`retrain`: train on a class-balanced slice of this many base rows (the training package's --limit), for trials and tests; unset, the whole base dataset.",
  },
  retrainShadowInquiries: {
    env: "SWITCHBOARD_RETRAIN_SHADOW_INQUIRIES",
    schema: positiveInt,
    default: 1_000,
    doc: "`retrain`: inquiries a shadow version must score beside production before it is judged.",
  },
  retrainShadowMinLabelled: {
    env: "SWITCHBOARD_RETRAIN_SHADOW_MIN_LABELLED",
    schema: z.coerce.number().int().min(0),
    default: 100,
    doc: "`retrain`: of those, inquiries with a resolved human label, on which the shadow must be at least as accurate as production.",
  },
  retrainShadowMaxConfidenceDrop: {
    env: "SWITCHBOARD_RETRAIN_SHADOW_MAX_CONFIDENCE_DROP",
    schema: z.coerce.number().min(0).max(1),
    default: 0.05,
    doc: "`retrain`: largest drop of the shadow's mean confidence below production's, on the same inquiries, that still promotes.",
  },
  retrainShadowMaxLatencyRatio: {
    env: "SWITCHBOARD_RETRAIN_SHADOW_MAX_LATENCY_RATIO",
    schema: z.coerce.number().positive(),
    default: 1.5,
    doc: "`retrain`: largest ratio of the shadow's latency p95 to production's, on the same inquiries, that still promotes.",
  },
  retrainShadowTimeoutMs: {
    env: "SWITCHBOARD_RETRAIN_SHADOW_TIMEOUT_MS",
    schema: positiveInt,
    default: 259_200_000,
    doc: "`retrain`: a shadow version that has not scored and collected labels enough within this time is rejected for it (default 3 days).",
  },
  lifecycleRelayPollMs: {
    env: "SWITCHBOARD_LIFECYCLE_RELAY_POLL_MS",
    schema: positiveInt,
    default: 1_000,
    doc: "`retrain`: how often the lifecycle relay looks for registry decisions not yet on `models.lifecycle`.",
  },
} as const;

type Settings = typeof SETTINGS;
export type Config = { readonly [K in keyof Settings]: z.output<Settings[K]["schema"]> };

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/** Reads and validates every setting once; throws a ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const raw = env[setting.env];
    const input = raw === undefined || raw === "" ? setting.default : raw;
    const parsed = (setting.schema as z.ZodType).safeParse(input);
    // A secret's value never goes into the error (it is printed and logged).
    const shown = "secret" in setting && setting.secret ? "<secret>" : JSON.stringify(raw);
    if (parsed.success) values[key] = parsed.data;
    else problems.push(`${setting.env}=${shown}: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  }
  // Settings that depend on each other, once each of them is valid on its own.
  if (problems.length === 0) problems.push(...securityProblems(values as Config, (key) => SETTINGS[key].env));
  if (problems.length > 0) throw new ConfigError(problems);
  return values as Config;
}
