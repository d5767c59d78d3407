import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, readdir, realpath, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { stringify } from "yaml";
import { run } from "../exec.js";
import { mavenArtifact } from "../maven.js";
import type { ServiceContext, ServiceDefinition, StackPorts } from "../service.js";

/**
 * Elasticsearch 8 from Maven Central's `integ-test-zip` distribution: the real server with no
 * bundled JDK and only the modules transport-netty4, x-pack-core, x-pack-security and apm.
 * Core search (BM25 `match`, `knn` on `dense_vector`, bool/hybrid queries, aggregations built into
 * the server) works; anything that lives in another module does not exist here: `rrf` retriever,
 * painless scripts, `_reindex`/`_update_by_query`/`_delete_by_query`, language analyzers and
 * stemmers (analysis-common), ingest processors, data streams, ILM. The `GET /` and `HEAD /`
 * endpoints (module rest-root, behind the clients' `info()` and `ping()`) are missing too: install
 * compiles a small plugin of ours that provides them (ROOT_PLUGIN below).
 */
const VERSION = "8.19.21";
const COORDINATES = `org.elasticsearch.distribution.integ-test-zip:elasticsearch:${VERSION}:zip`;
const CLUSTER_NAME = "switchboard-local";
/** Elasticsearch refuses to run as root: when the stack runs as root it drops to this system user. */
const OS_USER = "switchboard";
/** Oldest Java this Elasticsearch accepts, and the newest it was tried with. */
const JAVA_MIN = 17;
const JAVA_MAX = 25;
const HEAP = ["-Xms512m", "-Xmx1g"];
/** Makes `useradd`/`chown` reachable when the stack is started from a shell without sbin in PATH. */
const SBIN_PATH = { PATH: `${process.env.PATH ?? "/usr/bin:/bin"}:/usr/sbin:/sbin` };

export function elasticsearchUrl(ports: StackPorts): string {
  return `http://127.0.0.1:${ports.elasticsearch}`;
}

const isRoot = () => process.getuid?.() === 0;
const esHome = (ctx: ServiceContext) => path.join(ctx.paths.cache, "elasticsearch", `elasticsearch-${VERSION}`);
const installedMarker = (ctx: ServiceContext) => path.join(esHome(ctx), ".switchboard-installed");
const dirs = (ctx: ServiceContext) => ({
  config: path.join(ctx.paths.data, "config"),
  data: path.join(ctx.paths.data, "data"),
  logs: path.join(ctx.paths.data, "logs"),
  tmp: path.join(ctx.paths.data, "tmp"),
});

/** Creates the unprivileged system user (and its group) once; a no-op when it exists. */
async function ensureServiceUser(): Promise<void> {
  const exists = () =>
    run("id", ["-u", OS_USER]).then(
      () => true,
      () => false,
    );
  if (await exists()) return;
  try {
    await run(
      "useradd",
      [
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        OS_USER,
      ],
      { env: SBIN_PATH },
    );
  } catch (error) {
    // Another service may have created it concurrently.
    if (!(await exists())) throw error;
  }
}

/** Prefixes a command so that it runs as the service user (setpriv execs: no process stays between). */
function asServiceUser(command: string, args: readonly string[]): [string, string[]] {
  if (!isRoot()) return [command, [...args]];
  return [
    "setpriv",
    ["--reuid", OS_USER, "--regid", OS_USER, "--init-groups", "--no-new-privs", "--", command, ...args],
  ];
}

async function javaMajor(home: string): Promise<number | undefined> {
  try {
    const release = await readFile(path.join(home, "release"), "utf8");
    const version = /^JAVA_VERSION="([^"]+)"/m.exec(release)?.[1];
    const major = Number(version?.startsWith("1.") ? version.split(".")[1] : version?.split(".")[0]);
    return Number.isInteger(major) ? major : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The JDK for Elasticsearch (`ES_JAVA_HOME`): `ES_JAVA_HOME` from the environment when set, else
 * the newest JDK in /usr/lib/jvm between JAVA_MIN and JAVA_MAX, else the `java` on PATH.
 */
async function javaHome(): Promise<string> {
  const fromEnv = process.env.ES_JAVA_HOME;
  if (fromEnv) {
    if (!existsSync(path.join(fromEnv, "bin", "java"))) throw new Error(`ES_JAVA_HOME=${fromEnv} has no bin/java`);
    return fromEnv;
  }
  const candidates: { home: string; major: number }[] = [];
  const root = "/usr/lib/jvm";
  for (const entry of existsSync(root) ? await readdir(root) : []) {
    const home = path.join(root, entry);
    const major = await javaMajor(home);
    if (major !== undefined && major >= JAVA_MIN && major <= JAVA_MAX && existsSync(path.join(home, "bin", "java"))) {
      candidates.push({ home: await realpath(home), major });
    }
  }
  candidates.sort((a, b) => b.major - a.major || a.home.localeCompare(b.home));
  if (candidates[0]) return candidates[0].home;
  try {
    const java = await realpath((await run("sh", ["-c", "command -v java"])).trim());
    const home = path.dirname(path.dirname(java));
    const major = await javaMajor(home);
    if (major === undefined || major >= JAVA_MIN) return home;
  } catch {
    // Reported below.
  }
  throw new Error(
    `Elasticsearch ${VERSION} needs Java ${JAVA_MIN}+: run \`apt-get install -y openjdk-17-jdk-headless\` (a JDK: install compiles a small plugin)`,
  );
}

function elasticsearchYml(ctx: ServiceContext): string {
  const { data, logs } = dirs(ctx);
  const settings: Record<string, string | number | boolean> = {
    "cluster.name": CLUSTER_NAME,
    "node.name": "switchboard-es",
    "path.data": data,
    "path.logs": logs,
    // Loopback only keeps the node in development mode: no production bootstrap checks.
    "network.host": "127.0.0.1",
    "http.port": ctx.ports.elasticsearch,
    "transport.port": ctx.ports.elasticsearch + 100,
    "discovery.type": "single-node",
    "bootstrap.memory_lock": false,
    // A local stack without TLS or users (this build has no auto-configured security either).
    "xpack.security.enabled": false,
    // A nearly full developer disk must not turn indices read-only or leave shards unassigned.
    "cluster.routing.allocation.disk.threshold_enabled": false,
    "action.destructive_requires_name": false,
    // Nothing here reaches the internet: this build has no ingest-geoip (setting its
    // `ingest.geoip.downloader.enabled` is even fatal: "unknown setting") and no machine learning,
    // and APM/telemetry are off by default.
  };
  return `# Written by stack/services/elasticsearch.ts on every start; edits are overwritten.\n${stringify(settings)}`;
}

/**
 * The distribution's jvm.options with every file it writes moved into the logs directory (the
 * distribution's relative paths would land in the read-only install folder).
 */
function jvmOptions(distribution: string, logs: string): string {
  const lines = distribution
    .split("\n")
    .filter((line) => !/^\s*#/.test(line) && line.trim() !== "")
    .map((line) =>
      line
        .replace(/^(-Xlog:[^:]*:)file=[^:]+:(.*)$/, (_m, head: string, tail: string) => {
          const rotation = tail.replace(/filecount=\d+/, "filecount=4").replace(/filesize=\w+/, "filesize=16m");
          return `${head}file=${path.join(logs, "gc.log")}:${rotation}`;
        })
        .replace(/^-XX:ErrorFile=.*$/, `-XX:ErrorFile=${path.join(logs, "hs_err_pid%p.log")}`),
    );
  lines.push(`-XX:HeapDumpPath=${logs}`);
  return `# Written by stack/services/elasticsearch.ts from the distribution's jvm.options.\n${lines.join("\n")}\n`;
}

/**
 * `GET /` (cluster info, as the rest-root module answers it) and `HEAD /`, compiled at install
 * time against the unpacked server jars. Reads only this node's cluster state.
 */
const ROOT_PLUGIN = {
  name: "switchboard-root",
  className: "org.switchboard.stack.esroot.RootEndpointPlugin",
  source: `package org.switchboard.stack.esroot;

import java.util.Collection;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.bytes.BytesArray;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

public final class RootEndpointPlugin extends Plugin implements ActionPlugin {
    private volatile ClusterService clusterService;

    @Override
    public Collection<?> createComponents(PluginServices services) {
        clusterService = services.clusterService();
        return List.of();
    }

    @Override
    public Collection<RestHandler> getRestHandlers(Settings settings, NamedWriteableRegistry registry,
            RestController controller, ClusterSettings clusterSettings, IndexScopedSettings indexScopedSettings,
            SettingsFilter settingsFilter, IndexNameExpressionResolver resolver, Supplier<DiscoveryNodes> nodes,
            Predicate<NodeFeature> clusterSupportsFeature) {
        return List.of(new RootHandler());
    }

    private final class RootHandler extends BaseRestHandler {
        @Override
        public String getName() {
            return "switchboard_root_action";
        }

        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
        }

        @Override
        protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) {
            if (request.method() == RestRequest.Method.HEAD) {
                return channel -> channel.sendResponse(
                    new RestResponse(RestStatus.OK, RestResponse.TEXT_CONTENT_TYPE, BytesArray.EMPTY));
            }
            return channel -> {
                ClusterState state = clusterService.state();
                Build build = Build.current();
                XContentBuilder body = channel.newBuilder();
                body.startObject()
                    .field("name", clusterService.localNode().getName())
                    .field("cluster_name", state.getClusterName().value())
                    .field("cluster_uuid", state.metadata().clusterUUID())
                    .startObject("version")
                    .field("number", build.qualifiedVersion())
                    .field("build_flavor", build.flavor())
                    .field("build_type", build.type().displayName())
                    .field("build_hash", build.hash())
                    .field("build_date", build.date())
                    .field("build_snapshot", build.isSnapshot())
                    .field("lucene_version", org.apache.lucene.util.Version.LATEST.toString())
                    .field("minimum_wire_compatibility_version", build.minWireCompatVersion())
                    .field("minimum_index_compatibility_version", build.minIndexCompatVersion())
                    .endObject()
                    .field("tagline", "You Know, for Search")
                    .endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, body));
            };
        }
    }
}
`,
};

/** Builds ROOT_PLUGIN into `<es home>/plugins` unless the same source is already built there. */
async function installRootPlugin(ctx: ServiceContext, java: string): Promise<void> {
  const digest = createHash("sha256").update(ROOT_PLUGIN.source).digest("hex");
  const target = path.join(esHome(ctx), "plugins", ROOT_PLUGIN.name);
  const stamp = path.join(target, ".source-sha256");
  if (existsSync(stamp) && (await readFile(stamp, "utf8")).trim() === digest) return;
  const javac = path.join(java, "bin", "javac");
  if (!existsSync(javac)) {
    ctx.log.warn({ java }, "no javac in this Java: GET / and HEAD / (client info() and ping()) stay unavailable");
    return;
  }
  ctx.log.info({ plugin: ROOT_PLUGIN.name }, "compiling the GET / endpoint plugin (first run only)");
  const build = path.join(path.dirname(esHome(ctx)), `.build-${process.pid}`);
  await rm(build, { recursive: true, force: true });
  try {
    const sourceFile = path.join(build, "src", ...ROOT_PLUGIN.className.split(".")) + ".java";
    const classes = path.join(build, "classes");
    const plugin = path.join(build, ROOT_PLUGIN.name);
    await mkdir(path.dirname(sourceFile), { recursive: true });
    await mkdir(classes, { recursive: true });
    await mkdir(plugin, { recursive: true });
    await writeFile(sourceFile, ROOT_PLUGIN.source);
    await run(javac, [
      "--release",
      String(JAVA_MIN),
      "-nowarn",
      "-cp",
      `${path.join(esHome(ctx), "lib")}/*`,
      "-d",
      classes,
      sourceFile,
    ]);
    await run(path.join(java, "bin", "jar"), ["cf", path.join(plugin, `${ROOT_PLUGIN.name}.jar`), "-C", classes, "."]);
    await writeFile(
      path.join(plugin, "plugin-descriptor.properties"),
      [
        "description=GET and HEAD / for a distribution without the rest-root module",
        "version=1.0.0",
        `name=${ROOT_PLUGIN.name}`,
        `classname=${ROOT_PLUGIN.className}`,
        `java.version=${JAVA_MIN}`,
        `elasticsearch.version=${VERSION}`,
        "",
      ].join("\n"),
    );
    await writeFile(path.join(plugin, ".source-sha256"), `${digest}\n`);
    await rm(target, { recursive: true, force: true });
    await rename(plugin, target);
  } finally {
    await rm(build, { recursive: true, force: true });
  }
}

async function unpack(ctx: ServiceContext): Promise<void> {
  const zip = await mavenArtifact(ctx, COORDINATES, "elasticsearch");
  const parent = path.dirname(esHome(ctx));
  const staging = path.join(parent, `.unpack-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  try {
    ctx.log.info({ zip }, "unpacking Elasticsearch (first run only)");
    await run("unzip", ["-q", zip, "-d", staging]);
    const unpacked = path.join(staging, `elasticsearch-${VERSION}`);
    if (!existsSync(path.join(unpacked, "bin", "elasticsearch"))) {
      throw new Error(`${zip} does not hold elasticsearch-${VERSION}/bin/elasticsearch`);
    }
    await rm(esHome(ctx), { recursive: true, force: true });
    await rename(unpacked, esHome(ctx));
    await writeFile(installedMarker(ctx), `${COORDINATES}\n`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  // Maven's local repository keeps the zip; the unpacked copy is all the stack needs.
  await rm(zip, { force: true });
}

export const elasticsearch: ServiceDefinition = {
  name: "elasticsearch",
  dependsOn: [],
  startTimeoutSeconds: 120,
  port: (ports) => ports.elasticsearch,

  async install(ctx) {
    if (!existsSync(installedMarker(ctx))) await unpack(ctx);
    await installRootPlugin(ctx, await javaHome());
    if (isRoot()) await ensureServiceUser();
  },

  async prepare(ctx) {
    const { config, data, logs, tmp } = dirs(ctx);
    for (const dir of [config, path.join(config, "jvm.options.d"), data, logs, tmp])
      await mkdir(dir, { recursive: true });
    // The rest of the distribution's config (log4j2.properties, security files) once; the
    // keystore Elasticsearch creates in this folder stays.
    const shipped = path.join(esHome(ctx), "config");
    for (const entry of await readdir(shipped, { withFileTypes: true })) {
      const target = path.join(config, entry.name);
      if (entry.isFile() && !existsSync(target)) await copyFile(path.join(shipped, entry.name), target);
    }
    await writeFile(path.join(config, "elasticsearch.yml"), elasticsearchYml(ctx));
    const distributionJvm = await readFile(path.join(shipped, "jvm.options"), "utf8");
    await writeFile(path.join(config, "jvm.options"), jvmOptions(distributionJvm, logs));
    await writeFile(path.join(config, "jvm.options.d", "heap.options"), `${HEAP.join("\n")}\n`);
    if (isRoot()) {
      await run("chown", ["-R", `${OS_USER}:${OS_USER}`, ctx.paths.data], { env: SBIN_PATH });
      // Fail here, with a clear message, rather than with a Java stack trace in the log.
      const [command, args] = asServiceUser("sh", [
        "-c",
        'test -w "$1" && test -x "$2/bin/elasticsearch" && test -r "$2/lib"',
        "sh",
        ctx.paths.data,
        esHome(ctx),
      ]);
      await run(command, args).catch(() => {
        throw new Error(
          `user ${OS_USER} cannot write ${ctx.paths.data} or read ${esHome(ctx)}: every parent folder needs o+x`,
        );
      });
    }
  },

  async launch(ctx) {
    const { config, tmp } = dirs(ctx);
    const [command, args] = asServiceUser(path.join(esHome(ctx), "bin", "elasticsearch"), []);
    return {
      command,
      args,
      cwd: esHome(ctx),
      env: {
        ES_JAVA_HOME: await javaHome(),
        ES_PATH_CONF: config,
        ES_TMPDIR: tmp,
        HOME: ctx.paths.data,
        ...(isRoot() ? { USER: OS_USER, LOGNAME: OS_USER } : {}),
      },
    };
  },

  async healthy(ctx) {
    try {
      const response = await fetch(`${elasticsearchUrl(ctx.ports)}/_cluster/health`, {
        signal: AbortSignal.timeout(2000),
      });
      if (!response.ok) return false;
      const health = (await response.json()) as { cluster_name?: string; status?: string };
      // Another Elasticsearch on the port is not ours.
      return health.cluster_name === CLUSTER_NAME && (health.status === "green" || health.status === "yellow");
    } catch {
      return false;
    }
  },
};
