import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pino, { type Logger } from "pino";
import { REPO_ROOT } from "../../config/settings.js";

const run = promisify(execFile);

/** A fresh models directory under the system temp folder. */
export function tempModelsDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `switchboard-${prefix}-`));
}

export interface TrainOptions {
  readonly task: string;
  /** Only this model of the task (its models by default). */
  readonly model?: string;
  /** `head` (and `all`) needs an embedder version under modelsDir/embedder (withEmbedder). */
  readonly family: "linear" | "encoder" | "ensemble" | "head" | "all";
  readonly limit: number;
  readonly seed?: number;
  /** Register (and run the gate) in the registry named by env DATABASE_URL / SWITCHBOARD_REGISTRY_SCHEMA. */
  readonly register?: boolean;
  /** A registered candidate that passes the gate becomes the shadow version, not production. */
  readonly shadow?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** Trains real (small) versions with the training CLI; returns their directories by family. */
export async function train(modelsDir: string, options: TrainOptions): Promise<Record<string, string>> {
  const args = [
    "-m",
    "training",
    "train",
    "--task",
    options.task,
    "--family",
    options.family,
    "--limit",
    String(options.limit),
    "--seed",
    String(options.seed ?? 0),
  ];
  if (!options.register) args.push("--no-register");
  if (options.shadow) args.push("--shadow");
  if (options.model) args.push("--model", options.model);
  const { stdout } = await python(args, { ...options.env, SWITCHBOARD_MODELS_DIR: modelsDir });
  const trained: Record<string, string> = {};
  for (const match of stdout.matchAll(/^trained \S+@\S+-(linear|encoder|ensemble|head)-[0-9a-f]{8} -> (.+)$/gm))
    trained[match[1]!] = match[2]!;
  return trained;
}

export async function python(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run("python3", args, {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: "WARNING", ...env },
      maxBuffer: 64 << 20,
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`python3 ${args.slice(0, 4).join(" ")} failed: ${stderr || stdout || (error as Error).message}`, {
      cause: error,
    });
  }
}

/** Probabilities of `texts` from training/predictor.py: onnxruntime in Python, inputs built by the Python side. */
export async function pythonProbabilities(versionDir: string, texts: readonly string[]): Promise<number[][]> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), "switchboard-parity-"));
  const input = path.join(scratch, "texts.json");
  writeFileSync(input, JSON.stringify(texts));
  const script = [
    "import json, sys",
    "from pathlib import Path",
    "from training.predictor import Predictor",
    "texts = json.load(open(sys.argv[2], encoding='utf-8'))",
    "print(json.dumps(Predictor(Path(sys.argv[1])).probabilities(texts).tolist()))",
  ].join("\n");
  try {
    const { stdout } = await python(["-c", script, versionDir, input]);
    return JSON.parse(stdout) as number[][];
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * A copy of an embedder version directory at modelsDir/embedder/<version>, where training looks
 * for the embedder a head is trained on, and serving for the one a head names.
 */
export function withEmbedder(modelsDir: string, embedderDir: string): string {
  return copyVersion(embedderDir, path.join(modelsDir, "embedder", path.basename(embedderDir)));
}

/** A copy of a version directory to break on purpose. */
export function copyVersion(source: string, target: string): string {
  mkdirSync(target, { recursive: true });
  for (const file of readdirSync(source)) copyFileSync(path.join(source, file), path.join(target, file));
  return target;
}

export function readManifest(
  versionDir: string,
): Record<string, unknown> & { files: Record<string, string>; labels: string[] } {
  return JSON.parse(readFileSync(path.join(versionDir, "manifest.json"), "utf8")) as Record<string, unknown> & {
    files: Record<string, string>;
    labels: string[];
  };
}

export function writeManifest(versionDir: string, manifest: Record<string, unknown>): void {
  writeFileSync(path.join(versionDir, "manifest.json"), JSON.stringify(manifest, null, 2));
}

/** Replaces a file of the version and records its new checksum, so only what the file holds is wrong. */
export function replaceFileKeepingManifestValid(versionDir: string, file: string, bytes: Buffer): void {
  writeFileSync(path.join(versionDir, file), bytes);
  const manifest = readManifest(versionDir);
  manifest.files[file] = createHash("sha256").update(bytes).digest("hex");
  writeManifest(versionDir, manifest);
}

export interface CapturedLog {
  readonly log: Logger;
  readonly entries: Record<string, unknown>[];
}

/** A real pino logger whose JSON lines are kept for assertions. */
export function capturedLog(): CapturedLog {
  const entries: Record<string, unknown>[] = [];
  const log = pino(
    { level: "debug" },
    { write: (line: string) => void entries.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, entries };
}

/** Waits until `condition` holds, polling; fails with `what` after the timeout. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
