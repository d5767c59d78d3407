import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { run } from "./exec.js";
import type { ServiceContext } from "./service.js";

/** Maven's local repository caches downloads between runs; the stack cache holds the resolved layout. */
const MAVEN_FLAGS = ["-B", "-q", "--no-transfer-progress"];

/**
 * Resolves every runtime dependency of a `stack/jvm/<project>/pom.xml` into one folder of jars
 * (a classpath). Cached: a second call with the same pom does nothing.
 */
export async function mavenClasspath(ctx: ServiceContext, pomFile: string, name: string): Promise<string> {
  const lib = path.join(ctx.paths.cache, name, "lib");
  const marker = path.join(lib, ".complete");
  if (existsSync(marker)) return lib;
  ctx.log.info({ pom: pomFile }, "resolving jars with Maven (first run only)");
  await mkdir(lib, { recursive: true });
  await run("mvn", [
    ...MAVEN_FLAGS,
    "-f",
    pomFile,
    "dependency:copy-dependencies",
    "-DincludeScope=runtime",
    `-DoutputDirectory=${lib}`,
  ]);
  const jars = (await readdir(lib)).filter((f) => f.endsWith(".jar"));
  if (jars.length === 0) throw new Error(`Maven resolved no jars for ${name} from ${pomFile}`);
  await writeFile(marker, new Date().toISOString());
  return lib;
}

/**
 * Fetches one artifact (`group:artifact:version[:packaging[:classifier]]`) into the stack cache
 * and returns the file's path. Cached.
 */
export async function mavenArtifact(ctx: ServiceContext, coordinates: string, name: string): Promise<string> {
  const dir = path.join(ctx.paths.cache, name, "artifacts");
  const [, artifactId, version, packaging = "jar", classifier] = coordinates.split(":");
  if (!artifactId || !version) throw new Error(`bad Maven coordinates "${coordinates}"`);
  const file = path.join(dir, `${artifactId}-${version}${classifier ? `-${classifier}` : ""}.${packaging}`);
  if (existsSync(file)) return file;
  ctx.log.info({ artifact: coordinates }, "fetching artifact with Maven (first run only)");
  await mkdir(dir, { recursive: true });
  await run("mvn", [...MAVEN_FLAGS, "dependency:copy", `-Dartifact=${coordinates}`, `-DoutputDirectory=${dir}`]);
  if (!existsSync(file)) throw new Error(`Maven did not produce ${file} for ${coordinates}`);
  return file;
}
