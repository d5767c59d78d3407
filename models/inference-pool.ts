import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { InferenceSession, Tensor } from "onnxruntime-node";
import type { Logger } from "pino";
import { loadConfig } from "../config/settings.js";
import { createSession, fromWire, toWire, type WireTensors } from "./onnx-session.js";

/**
 * onnxruntime-node runs a session synchronously on the calling thread: on the main thread, a
 * run holds up all of a processor's I/O. The pool runs sessions in worker threads instead. Each
 * version's session lives in one worker (a slot runs one batch at a time, so copies in several
 * workers would not run in parallel); a worker runs one request at a time, so a crash is charged
 * to the request it interrupted. A worker that exits (killed, out of memory, an uncaught error)
 * is replaced: the new one loads the sessions again, from disk and verified, and the interrupted
 * request runs again, up to MAX_ATTEMPTS times.
 */

export type Feeds = Record<string, Tensor>;
export type Outputs = Record<string, Tensor>;

/** One version's ONNX session, on the main thread or in an inference worker. */
export interface ModelSession {
  readonly inputMetadata: readonly InferenceSession.ValueMetadata[];
  readonly outputMetadata: readonly InferenceSession.ValueMetadata[];
  /**
   * Runs the feeds that `feeds()` builds. A function, because the pool hands the feeds' buffers
   * over to the worker: a run retried after a crash builds them again.
   */
  run(feeds: () => Feeds): Promise<Outputs>;
  release(): Promise<void>;
}

/** A session on the calling thread (SWITCHBOARD_INFERENCE_THREADS=0). */
export async function inlineSession(bytes: Uint8Array, file: string): Promise<ModelSession> {
  const session = await createSession(bytes, file);
  return {
    inputMetadata: session.inputMetadata,
    outputMetadata: session.outputMetadata,
    run: (feeds) => session.run(feeds()),
    release: () => session.release(),
  };
}

/** Attempts at one request, each in a fresh worker, before it fails with an InferenceWorkerCrash. */
export const MAX_ATTEMPTS = 3;
/** Longest wait before starting a worker again after workers keep exiting without answering. */
const MAX_RESTART_DELAY_MS = 5_000;

export type WorkerRequest = (
  | { id: number; kind: "load"; session: number; directory: string; file: string; sha256: string }
  | { id: number; kind: "run"; session: number; feeds: WireTensors }
  | { id: number; kind: "release"; session: number }
) & {
  /** Set only by InferencePoolHooks.crashWorker (tests): the worker exits after doing the work, before it answers. */
  exitBeforeReply?: boolean;
};

export type WorkerReply =
  | {
      id: number;
      kind: "loaded";
      inputMetadata: readonly InferenceSession.ValueMetadata[];
      outputMetadata: readonly InferenceSession.ValueMetadata[];
    }
  | { id: number; kind: "ran"; outputs: WireTensors }
  /** `held`: the sessions the worker still holds (undefined when no worker was asked). */
  | { id: number; kind: "released"; held?: number }
  | { id: number; kind: "failed"; error: string };

/** A request that crashed a worker on each of its MAX_ATTEMPTS attempts; names the model version. */
export class InferenceWorkerCrash extends Error {
  constructor(
    readonly model: string,
    what: string,
    attempts: number,
    exit: string,
  ) {
    super(
      `${model}: the inference worker exited during each of ${attempts} attempts to ${what} (last: ${exit}); not trying again`,
    );
    this.name = new.target.name;
  }
}

/** Where a version's model file is: each worker that holds it reads and verifies it itself. */
export interface SessionSource {
  /** "<name>@<version>", for errors and logs. */
  readonly model: string;
  readonly directory: string;
  readonly file: string;
  readonly sha256: string;
}

/** For tests only. */
export interface InferencePoolHooks {
  /**
   * Asked as each request is handed to a worker; true makes that worker exit (process.exit)
   * mid-request, after its work and before its answer. (worker.terminate() during a run aborts
   * the whole process: onnxruntime-node's binding throws a C++ exception when its JS
   * environment is torn down under it.)
   */
  crashWorker?(request: { kind: WorkerRequest["kind"]; model: string; attempt: number }): boolean;
}

export interface InferencePoolOptions {
  readonly threads: number;
  readonly log: Logger;
  readonly hooks?: InferencePoolHooks;
}

interface SessionState extends SessionSource {
  readonly id: number;
  released: boolean;
  /** Why the session cannot run any more (its reload in a replacement worker failed). */
  broken?: string;
}

interface Job {
  readonly kind: WorkerRequest["kind"];
  readonly session: SessionState;
  /** A reload after a crash: no caller waits for it. */
  readonly reload?: boolean;
  readonly request: (id: number) => { message: WorkerRequest; transfer: ArrayBuffer[] };
  readonly resolve: (reply: WorkerReply) => void;
  readonly reject: (error: Error) => void;
  attempts: number;
}

const WHAT: Record<WorkerRequest["kind"], string> = {
  load: "load its session",
  run: "run a batch",
  release: "release its session",
};

/**
 * The worker runs TypeScript, so it registers tsx's loader before importing its module: a worker
 * does not inherit the loader the main thread registered (bin/switchboard.js, vitest), and
 * `--import` in a worker's execArgv does not apply to its entry module on Node 20.
 */
function bootstrap(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve("tsx/package.json");
  const api = (
    JSON.parse(readFileSync(manifest, "utf8")) as { exports: Record<string, { import: { default: string } }> }
  ).exports["./esm/api"]!.import.default;
  const apiUrl = pathToFileURL(path.join(path.dirname(manifest), api)).href;
  const workerUrl = new URL("./inference-worker.ts", import.meta.url).href;
  return `import(${JSON.stringify(apiUrl)}).then(({ register }) => { register(); return import(${JSON.stringify(workerUrl)}); });`;
}

/** One worker slot: its current worker, the sessions it holds, and its queue of requests. */
class InferenceThread {
  private worker: Worker | undefined;
  private current: { job: Job; id: number } | undefined;
  private queue: Job[] = [];
  /** Loaded sessions: what a replacement worker loads again. */
  readonly sessions = new Map<number, SessionState>();
  /** Sessions placed here and still loading (for placement). */
  pendingLoads = 0;
  /** Workers that exited in a row without answering a request: the restart delay grows with it. */
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;
  private nextId = 1;
  private closed = false;
  /** Set by close() while it waits for the request under way. */
  private settled: (() => void) | undefined;

  constructor(
    readonly index: number,
    private readonly code: string,
    private readonly log: Logger,
    private readonly hooks: InferencePoolHooks | undefined,
  ) {}

  get placed(): number {
    return this.sessions.size + this.pendingLoads;
  }

  /** The live worker, if one is running (for tests). */
  get liveWorker(): Worker | undefined {
    return this.worker;
  }

  call(job: Omit<Job, "attempts">): void {
    if (this.closed) return job.reject(new Error(`${job.session.model}: the inference pool is closed`));
    this.queue.push({ ...job, attempts: 0 });
    this.pump();
  }

  private pump(): void {
    while (!this.closed && !this.current && !this.restartTimer) {
      const job = this.queue.shift();
      if (!job) return;
      if (job.reload && job.session.released) {
        job.resolve({ id: 0, kind: "released" });
        continue;
      }
      if (job.kind === "run" && job.session.broken) {
        job.reject(new Error(`${job.session.model} cannot run: ${job.session.broken}`));
        continue;
      }
      const worker = this.worker ?? this.start();
      const id = this.nextId++;
      try {
        const { message, transfer } = job.request(id);
        job.attempts++;
        if (this.hooks?.crashWorker?.({ kind: job.kind, model: job.session.model, attempt: job.attempts }))
          message.exitBeforeReply = true;
        worker.postMessage(message, transfer);
      } catch (error) {
        // Feeds that cannot be built or sent fail their caller, not the pool.
        job.reject(
          new Error(`${job.session.model}: cannot send the request (${(error as Error).message})`, { cause: error }),
        );
        continue;
      }
      this.current = { job, id };
      // Referenced only while it works: an idle pool does not keep a finished command alive.
      worker.ref();
    }
  }

  private start(): Worker {
    // The process's loader flags (tsx) stay out of the worker; a CPU profiler's come along, so a profiled process profiles its inference too.
    const execArgv = process.execArgv.filter((arg) => arg.startsWith("--cpu-prof"));
    const worker = new Worker(this.code, { eval: true, execArgv, name: `inference-${this.index}` });
    worker.unref();
    this.lastError = undefined;
    worker.on("message", (reply: WorkerReply) => this.answered(worker, reply));
    worker.on("error", (error) => {
      if (worker === this.worker) this.lastError = error;
    });
    worker.on("messageerror", (error) =>
      this.answered(worker, {
        id: this.current?.id ?? 0,
        kind: "failed",
        error: `unreadable reply (${error.message})`,
      }),
    );
    worker.on("exit", (code) => this.exited(worker, code));
    this.worker = worker;
    return worker;
  }

  private answered(worker: Worker, reply: WorkerReply): void {
    if (worker !== this.worker || reply.id !== this.current?.id) return;
    const { job } = this.current;
    this.current = undefined;
    this.settled?.();
    this.failures = 0;
    worker.unref();
    // A load's error reads as the main thread's would (ModelLoadError adds the directory); a run's names the model.
    if (reply.kind === "failed")
      job.reject(new Error(job.kind === "load" ? reply.error : `${job.session.model}: ${reply.error}`));
    else job.resolve(reply);
    this.pump();
  }

  private exited(worker: Worker, code: number): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    this.settled?.();
    const interrupted = this.current?.job;
    this.current = undefined;
    if (this.closed) {
      interrupted?.reject(new Error(`${interrupted.session.model}: the inference pool is closed`));
      return;
    }
    const exit = this.lastError ? `exit code ${code}, ${this.lastError.message}` : `exit code ${code}`;
    this.failures++;
    // What the dead worker held is loaded again first, then the interrupted request runs again.
    const reloads = [...this.sessions.values()].filter((s) => !s.released).map((s) => this.reloadJob(s));
    this.sessions.clear();
    const again: Job[] = [];
    if (interrupted?.kind === "release") interrupted.resolve({ id: 0, kind: "released" });
    else if (interrupted && interrupted.attempts >= MAX_ATTEMPTS) {
      const crash = new InferenceWorkerCrash(
        interrupted.session.model,
        WHAT[interrupted.kind],
        interrupted.attempts,
        exit,
      );
      interrupted.reject(crash);
    } else if (interrupted) again.push(interrupted);
    this.queue = [...reloads, ...again, ...this.queue];
    const delay = this.failures <= 1 ? 0 : Math.min(100 * 2 ** (this.failures - 2), MAX_RESTART_DELAY_MS);
    this.log.error(
      {
        thread: this.index,
        exit,
        model: interrupted?.session.model,
        request: interrupted?.kind,
        attempt: interrupted?.attempts,
        retried: again.length > 0,
        reloading: reloads.map((job) => job.session.model),
        queued: this.queue.length,
        restartInMs: delay,
      },
      "inference worker exited; a new one takes over",
    );
    if (delay === 0) this.pump();
    else
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        this.pump();
      }, delay);
  }

  private reloadJob(session: SessionState): Job {
    return {
      kind: "load",
      session,
      reload: true,
      attempts: 0,
      request: (id) => ({ message: loadRequest(id, session), transfer: [] }),
      resolve: () => {
        if (!session.released) this.sessions.set(session.id, session);
      },
      reject: (error) => {
        session.broken = `its session could not be loaded again after the inference worker was replaced (${error.message})`;
        this.log.error(
          { thread: this.index, model: session.model, error: error.message },
          "model session lost with its inference worker",
        );
      },
    };
  }

  /** Fails what is queued and stops the worker once its request under way has finished: terminating it mid-run would abort the process (see InferencePoolHooks). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    for (const job of this.queue) job.reject(new Error(`${job.session.model}: the inference pool is closed`));
    this.queue = [];
    if (this.current) await new Promise<void>((resolve) => (this.settled = resolve));
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}

function loadRequest(id: number, session: SessionState): WorkerRequest {
  return {
    id,
    kind: "load",
    session: session.id,
    directory: session.directory,
    file: session.file,
    sha256: session.sha256,
  };
}

/** Runs ONNX sessions in `threads` worker threads; see the top of this file. */
export class InferencePool {
  private readonly threads: InferenceThread[];
  private readonly log: Logger;
  private nextSession = 1;

  constructor(options: InferencePoolOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1)
      throw new Error(`an inference pool needs at least one thread, not ${options.threads}`);
    this.log = options.log;
    const code = bootstrap();
    this.threads = Array.from(
      { length: options.threads },
      (_, i) => new InferenceThread(i, code, options.log, options.hooks),
    );
  }

  get size(): number {
    return this.threads.length;
  }

  /** The running workers, for tests: terminating an idle one crashes it safely (a busy one: see InferencePoolHooks). */
  workers(): Worker[] {
    return this.threads.flatMap((thread) => (thread.liveWorker ? [thread.liveWorker] : []));
  }

  /** Loads a version's model file in the worker holding the fewest sessions; fails as loading on the main thread would. */
  async open(source: SessionSource): Promise<ModelSession> {
    const thread = this.threads.reduce((least, t) => (t.placed < least.placed ? t : least));
    const session: SessionState = { ...source, id: this.nextSession++, released: false };
    thread.pendingLoads++;
    let loaded: Extract<WorkerReply, { kind: "loaded" }>;
    try {
      loaded = await new Promise((resolve, reject) =>
        thread.call({
          kind: "load",
          session,
          request: (id) => ({ message: loadRequest(id, session), transfer: [] }),
          resolve: (reply) => {
            // At once, not in a continuation: a crash right after must reload it.
            thread.sessions.set(session.id, session);
            resolve(reply as typeof loaded);
          },
          reject,
        }),
      );
    } finally {
      thread.pendingLoads--;
    }
    const ask = (kind: "run" | "release", request: Job["request"]) =>
      new Promise<WorkerReply>((resolve, reject) => thread.call({ kind, session, request, resolve, reject }));
    return {
      inputMetadata: loaded.inputMetadata,
      outputMetadata: loaded.outputMetadata,
      run: async (feeds) => {
        if (session.released) throw new Error(`${session.model}: its session has been released`);
        const reply = await ask("run", (id) => {
          const { tensors, transfer } = toWire(feeds());
          return { message: { id, kind: "run", session: session.id, feeds: tensors }, transfer };
        });
        return fromWire((reply as Extract<WorkerReply, { kind: "ran" }>).outputs);
      },
      release: async () => {
        if (session.released) return;
        session.released = true;
        const reply = await ask("release", (id) => ({
          message: { id, kind: "release", session: session.id },
          transfer: [],
        }));
        thread.sessions.delete(session.id);
        this.log.debug(
          {
            model: session.model,
            thread: thread.index,
            held: (reply as Extract<WorkerReply, { kind: "released" }>).held,
          },
          "model session released in its inference worker",
        );
      },
    };
  }

  /** Stops the workers; requests under way or queued fail. */
  async close(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.close()));
  }
}

let shared: InferencePool | null | undefined;

/**
 * The process's pool, sized by SWITCHBOARD_INFERENCE_THREADS and started on first use; null
 * when it is 0 (sessions run on the main thread).
 */
export function sharedInferencePool(log: Logger): InferencePool | null {
  if (shared === undefined) {
    const threads = loadConfig().inferenceThreads;
    shared = threads === 0 ? null : new InferencePool({ threads, log });
    log.info(
      { threads },
      threads === 0 ? "model inference runs on the main thread" : "model inference runs in worker threads",
    );
  }
  return shared;
}
