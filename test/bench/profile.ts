/**
 * Summaries of V8 CPU profiles (`node --cpu-prof`): where a process's threads spent their time, by
 * what the code is (a package, a folder of this repository, Node itself, garbage collection, idle)
 * and by function. `npm run bench` with BENCH_PROFILE=1 profiles the chained deployment's
 * processes and prints these, the profile behind each figure it reports.
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "../../config/settings.js";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface Share {
  readonly what: string;
  readonly ms: number;
  /** Of the thread's profiled time. */
  readonly share: number;
}

export interface ThreadProfile {
  readonly file: string;
  readonly pid: number;
  /** 0 for the main thread; a worker thread's id otherwise (inference workers). */
  readonly thread: number;
  readonly totalMs: number;
  readonly categories: readonly Share[];
  /** Functions by self time, idle and garbage collection left out. */
  readonly functions: readonly Share[];
}

/** Node names its profiles CPU.<date>.<time>.<pid>.<thread id>.<sequence>.cpuprofile. */
const PROFILE_NAME = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/;
const REPO_URL = `file://${REPO_ROOT}/`;

function categoryOf({ functionName, url }: ProfileNode["callFrame"]): string {
  if (functionName === "(idle)") return "idle";
  if (functionName === "(garbage collector)") return "garbage collection";
  if (functionName === "(program)" || functionName === "(root)") return "native (onnxruntime, V8, libuv)";
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + "node_modules/".length).split("/");
    return scope!.startsWith("@") ? `${scope}/${name}` : scope!;
  }
  if (url.startsWith(REPO_URL)) return `${url.slice(REPO_URL.length).split("/")[0]}/`;
  if (url.startsWith("node:") || url === "") return "node internals";
  return url;
}

function shares(totals: Map<string, number>, totalMs: number, limit: number): Share[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([what, ms]) => ({ what, ms, share: ms / totalMs }));
}

export function summarizeProfile(file: string, topFunctions = 15): ThreadProfile {
  const match = PROFILE_NAME.exec(path.basename(file));
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  let totalMs = 0;
  for (const [id, ms] of selfMs) {
    const frame = byId.get(id)!.callFrame;
    const category = categoryOf(frame);
    totalMs += ms;
    categories.set(category, (categories.get(category) ?? 0) + ms);
    if (category === "idle" || category === "garbage collection") continue;
    const where = frame.url.startsWith(REPO_URL) ? frame.url.slice(REPO_URL.length) : frame.url.replace(/^.*node_modules\//, "");
    const name = `${frame.functionName || "(anonymous)"} ${where}:${frame.lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + ms);
  }
  return {
    file,
    pid: Number(match?.[1] ?? 0),
    thread: Number(match?.[2] ?? 0),
    totalMs,
    categories: shares(categories, totalMs, 12),
    functions: shares(functions, totalMs, topFunctions),
  };
}

/** Every profile Node wrote into `directory`, main threads first. */
export function summarizeProfiles(directory: string): ThreadProfile[] {
  return readdirSync(directory)
    .filter((name) => PROFILE_NAME.test(name))
    .map((name) => summarizeProfile(path.join(directory, name)))
    .sort((a, b) => a.pid - b.pid || a.thread - b.thread);
}

export function printProfiles(profiles: readonly ThreadProfile[], processOf: (pid: number) => string): void {
  const percent = (share: number) => `${(share * 100).toFixed(1)} %`;
  for (const p of profiles) {
    const thread = p.thread === 0 ? "main thread" : `worker thread ${p.thread}`;
    console.log(`\nprofile of ${processOf(p.pid)}, ${thread}: ${(p.totalMs / 1000).toFixed(1)} s sampled (${p.file})`);
    console.table(p.categories.map((c) => ({ "what ran": c.what, "self s": (c.ms / 1000).toFixed(2), share: percent(c.share) })));
    console.table(p.functions.map((f) => ({ function: f.what, "self s": (f.ms / 1000).toFixed(2), share: percent(f.share) })));
  }
}
