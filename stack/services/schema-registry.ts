import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CommandError, run } from "../exec.js";
import { mavenArtifact } from "../maven.js";
import type { LaunchSpec, ServiceContext, ServiceDefinition, StackPorts } from "../service.js";

/**
 * Apicurio Registry 3.0.9 (Quarkus, JVM) serving the Confluent Schema Registry REST API under
 * `/apis/ccompat/v7`, storing everything in an embedded H2 file database under the service's data
 * directory (no other service needed).
 *
 * Maven Central carries the registry only as library jars, so `install()` builds the runnable
 * Quarkus application from `stack/jvm/schema-registry/pom.xml` (whose header explains the few
 * modules of the release that the package registry lacks and what stands in for them).
 */

const NAME = "schema-registry";
const PROJECT_DIR = fileURLToPath(new URL("../jvm/schema-registry/", import.meta.url));
const POM = path.join(PROJECT_DIR, "pom.xml");

/** The registry release the pom builds (keep in step with `apicurio.version` in the pom). */
const APICURIO_VERSION = "3.0.9";
/** Published releases the stand-ins are made from (see the pom's header). */
const PARENT_POM_SOURCE = "3.0.7";
const CONFIG_INDEX_DEPLOYMENT_SOURCE = "3.0.6";

/** Path under which the Confluent-compatible API is served (clients use it as their base URL). */
const CCOMPAT_PATH = "/apis/ccompat/v7";
const HEAP = "512m";
const MIN_JAVA = 17;

/** Base URL that Confluent Schema Registry clients (e.g. @kafkajs/confluent-schema-registry) use. */
export function schemaRegistryUrl(ports: StackPorts): string {
  return `http://127.0.0.1:${ports.schemaRegistry}${CCOMPAT_PATH}`;
}

export const schemaRegistry: ServiceDefinition = {
  name: NAME,
  dependsOn: [],
  startTimeoutSeconds: 120,

  port(ports) {
    return ports.schemaRegistry;
  },

  async install(ctx) {
    const { root, buildDir } = await buildLocation(ctx);
    const marker = path.join(buildDir, ".complete");
    if (existsSync(marker) && existsSync(runnerJar(buildDir))) return;

    const java = await checkJava();
    ctx.log.info(
      { version: APICURIO_VERSION, dir: buildDir },
      "building Apicurio Registry with Maven (first run only)",
    );
    // A Maven local repository of its own: it receives the stand-ins, which must never be seen by
    // other builds through ~/.m2, and is rewritten with them before every build.
    const localRepo = path.join(root, "m2");
    await writeStandins(ctx, localRepo);

    // Build next to the final place, then move it in, so an interrupted build never looks complete.
    const tmp = `${buildDir}.partial`;
    await rm(tmp, { recursive: true, force: true });
    const started = Date.now();
    const build = () =>
      run(
        "mvn",
        [
          "-B",
          "-q",
          "--no-transfer-progress",
          "-f",
          POM,
          `-Dmaven.repo.local=${localRepo}`,
          `-Dswitchboard.buildDir=${tmp}`,
          "package",
        ],
        { env: java.home ? { JAVA_HOME: java.home } : {} },
      );
    try {
      await build().catch(async (error: unknown) => {
        // The Quarkus build step has failed once with a NullPointerException on a loaded machine
        // and passed on the next try with nothing changed, so one retry from scratch.
        ctx.log.warn({ err: error }, "Apicurio Registry build failed; retrying once");
        await rm(tmp, { recursive: true, force: true });
        await build();
      });
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      throw error;
    }
    if (!existsSync(runnerJar(tmp))) throw new Error(`Maven finished but produced no ${runnerJar(tmp)}`);
    await rm(buildDir, { recursive: true, force: true });
    await rename(tmp, buildDir);
    await writeFile(marker, new Date().toISOString());
    ctx.log.info({ seconds: Math.round((Date.now() - started) / 1000) }, "Apicurio Registry built");
    // Builds of earlier project versions are left in place: a registry still running from one must
    // not lose its jars. They can be deleted by hand when the stack is down.
  },

  async prepare(ctx) {
    // H2 creates the database file and the registry creates its tables on first start.
    await mkdir(path.join(ctx.paths.data, "tmp"), { recursive: true });
  },

  async launch(ctx): Promise<LaunchSpec> {
    const { buildDir } = await buildLocation(ctx);
    if (!existsSync(path.join(buildDir, ".complete"))) {
      throw new Error(`${NAME} is not built for the current stack/jvm/schema-registry project: run install first`);
    }
    const java = findJava();
    const data = ctx.paths.data;
    // DB_CLOSE_ON_EXIT=FALSE: the application closes the database on shutdown (not H2's own JVM
    // hook, which would race with it); WRITE_DELAY=0: a commit is written to the file before the
    // response, so it survives a killed process.
    const jdbcUrl = `jdbc:h2:file:${path.join(data, "registry")};DB_CLOSE_ON_EXIT=FALSE;WRITE_DELAY=0`;
    return {
      command: java.command,
      args: [
        `-Xmx${HEAP}`,
        // One small heap on a 2-core machine: the serial collector keeps the footprint lowest.
        "-XX:+UseSerialGC",
        `-Djava.io.tmpdir=${path.join(data, "tmp")}`,
        "-Dquarkus.http.host=127.0.0.1",
        `-Dquarkus.http.port=${ctx.ports.schemaRegistry}`,
        `-Dapicurio.datasource.url=${jdbcUrl}`,
        `-Dapicurio.storage.snapshot.location=${path.join(data, "tmp")}`,
        `-Dapicurio.import.work-dir=${path.join(data, "tmp")}`,
        "-jar",
        runnerJar(buildDir),
      ],
      // Quarkus also reads <cwd>/config/application.properties: a place for local overrides.
      cwd: data,
    };
  },

  async healthy(ctx) {
    try {
      const response = await fetch(`${schemaRegistryUrl(ctx.ports)}/subjects`, {
        signal: AbortSignal.timeout(2000),
      });
      await response.arrayBuffer();
      return response.status === 200;
    } catch {
      return false;
    }
  },
};

function runnerJar(buildDir: string): string {
  return path.join(buildDir, "quarkus-app", "quarkus-run.jar");
}

/**
 * The build is keyed by the content of the Maven project (pom, application.properties, sources)
 * and of the stand-in recipe, so editing any of them triggers a rebuild on the next install.
 */
async function buildLocation(ctx: ServiceContext): Promise<{ root: string; buildDir: string }> {
  const hash = createHash("sha256");
  hash.update(`${APICURIO_VERSION}:${PARENT_POM_SOURCE}:${CONFIG_INDEX_DEPLOYMENT_SOURCE}\n`);
  for (const file of await projectFiles(PROJECT_DIR)) {
    hash.update(path.relative(PROJECT_DIR, file));
    hash.update(await readFile(file));
  }
  const root = path.join(ctx.paths.cache, NAME);
  return { root, buildDir: path.join(root, `build-${hash.digest("hex").slice(0, 16)}`) };
}

async function projectFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "target") files.push(...(await projectFiles(full)));
    } else {
      files.push(full);
    }
  }
  return files.sort();
}

/**
 * Writes into the build's Maven local repository the stand-ins the pom's header describes, each
 * made from a published release fetched from Maven Central: the 3.0.9 parent POM (the 3.0.7 one
 * with the version changed) and the 3.0.9 config-index deployment module (the 3.0.6 jar). Files
 * written straight into a local repository count as locally installed for Maven.
 */
async function writeStandins(ctx: ServiceContext, repo: string): Promise<void> {
  const quarkusVersion = /<quarkus\.version>([^<]+)<\/quarkus\.version>/.exec(await readFile(POM, "utf8"))?.[1];
  if (!quarkusVersion) throw new Error(`no <quarkus.version> property in ${POM}`);
  const parentSource = await mavenArtifact(ctx, `io.apicurio:apicurio-registry:${PARENT_POM_SOURCE}:pom`, NAME);
  const source = await readFile(parentSource, "utf8");
  const ownVersion = `<artifactId>apicurio-registry</artifactId>\n  <version>${PARENT_POM_SOURCE}</version>`;
  if (!source.includes(ownVersion)) {
    throw new Error(`unexpected content in ${parentSource}: no "${ownVersion}"`);
  }
  const parentPom = source.replace(
    ownVersion,
    `<artifactId>apicurio-registry</artifactId>
  <!-- Stand-in written by Switchboard's stack/services/schema-registry.ts: the published ${PARENT_POM_SOURCE} parent POM with its version changed to ${APICURIO_VERSION}. -->
  <version>${APICURIO_VERSION}</version>`,
  );
  await writeArtifact(repo, "io.apicurio", "apicurio-registry", APICURIO_VERSION, "pom", parentPom);

  const deploymentJar = await mavenArtifact(
    ctx,
    `io.apicurio:apicurio-registry-config-index-deployment:${CONFIG_INDEX_DEPLOYMENT_SOURCE}`,
    NAME,
  );
  await writeArtifact(
    repo,
    "io.apicurio",
    "apicurio-registry-config-index-deployment",
    APICURIO_VERSION,
    "jar",
    await readFile(deploymentJar),
  );
  await writeArtifact(
    repo,
    "io.apicurio",
    "apicurio-registry-config-index-deployment",
    APICURIO_VERSION,
    "pom",
    `<?xml version="1.0" encoding="UTF-8"?>
<!-- Stand-in written by Switchboard's stack/services/schema-registry.ts: the published ${CONFIG_INDEX_DEPLOYMENT_SOURCE} jar of this module. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.apicurio</groupId>
  <artifactId>apicurio-registry-config-index-deployment</artifactId>
  <version>${APICURIO_VERSION}</version>
  <dependencies>
    <dependency>
      <groupId>io.apicurio</groupId>
      <artifactId>apicurio-registry-config-index</artifactId>
      <version>${APICURIO_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>io.apicurio</groupId>
      <artifactId>apicurio-registry-config-definitions</artifactId>
      <version>${CONFIG_INDEX_DEPLOYMENT_SOURCE}</version>
    </dependency>
    <dependency>
      <groupId>io.quarkus</groupId>
      <artifactId>quarkus-arc-deployment</artifactId>
      <version>${quarkusVersion}</version>
    </dependency>
  </dependencies>
</project>
`,
  );
}

async function writeArtifact(
  repo: string,
  groupId: string,
  artifactId: string,
  version: string,
  extension: string,
  content: string | Buffer,
): Promise<void> {
  const dir = path.join(repo, ...groupId.split("."), artifactId, version);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${artifactId}-${version}.${extension}`);
  await writeFile(file, content);
}

interface Java {
  readonly command: string;
  /** JAVA_HOME to hand to Maven, when one is set. */
  readonly home: string | undefined;
}

/** `$JAVA_HOME/bin/java` when JAVA_HOME is set, else `java` from PATH. */
function findJava(): Java {
  const home = process.env.JAVA_HOME;
  return home ? { command: path.join(home, "bin", "java"), home } : { command: "java", home: undefined };
}

async function checkJava(): Promise<Java> {
  const java = findJava();
  let output: string;
  try {
    // `--version` prints to stdout (and does not exist before Java 9).
    output = await run(java.command, ["--version"]);
  } catch (error) {
    const detail = error instanceof CommandError ? error.output.trim() : String(error);
    throw new Error(`${NAME} needs Java ${MIN_JAVA} or newer; \`${java.command} --version\` failed: ${detail}`, {
      cause: error,
    });
  }
  const major = Number(/(\d+)(?:\.\d+)*/.exec(output)?.[1] ?? "0");
  if (major < MIN_JAVA) {
    throw new Error(`${NAME} needs Java ${MIN_JAVA} or newer, found: ${output.split("\n")[0] ?? output}`);
  }
  return java;
}
