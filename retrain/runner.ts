import type pg from "pg";
import type { Logger } from "pino";
import { APP_SCHEMA } from "../storage/postgres.js";
import { errorMessage } from "../streams/errors.js";
import type { Job, JobOutcome, JobStore, Request } from "./jobs.js";
import { JOB_STATES, type RetrainMetrics } from "./metrics.js";
import type { RegistryReader } from "./registry.js";
import { judgeShadow, shadowFigures, type ShadowBounds } from "./shadow.js";
import { failureOf, type CliEvent, type TrainingCli } from "./training-cli.js";

export interface RunnerOptions {
  readonly pool: pg.Pool;
  readonly store: JobStore;
  readonly registry: RegistryReader;
  readonly cli: TrainingCli;
  readonly metrics: RetrainMetrics;
  readonly log: Logger;
  /** Names this process in the jobs it runs. */
  readonly owner: string;
  readonly staleAfterMs: number;
  readonly cooldownMs: number;
  readonly maxSeconds: number;
  readonly maxMemoryMb: number;
  readonly limit: number | undefined;
  readonly newLabels: number;
  readonly shadow: ShadowBounds;
}

export interface JobRunner {
  /** Records a request (process() calls this). */
  request(request: Request): Promise<void>;
  /** One round: takes over abandoned jobs, adopts unwatched shadows, starts a queued job, judges shadows, marks its jobs alive. */
  tick(): Promise<void>;
  /**
   * Counts the resolved labels of each production version's predictions given since the later of
   * its creation and the model's last job, and asks for a retraining where there are enough.
   */
  checkLabels(): Promise<void>;
  /** Resolves once the training under way (if any) has ended. */
  idle(): Promise<void>;
  /** Stops the training under way (its job goes back to the queue) and hands shadow jobs over at once. */
  stop(): Promise<void>;
}

interface Evaluated {
  readonly decision: "shadow_started" | "promoted" | "rejected";
  readonly version: string;
  readonly reason: string;
}

/**
 * The job runner: one training at a time in this process (training takes the machine's cores and
 * its memory bound), any number of shadow evaluations, at most one open job per model (the
 * jobs table enforces it across instances). Training is `python -m training train` bounded by
 * --max-seconds and --max-memory-mb; its JSON lines move the job on.
 */
export function createJobRunner(options: RunnerOptions): JobRunner {
  const { store, registry, cli, metrics, log, owner } = options;
  const shadows = new Map<string, Job>();
  const lastWait = new Map<string, string>();
  let training: { job: Job; done: Promise<void> } | undefined;
  let stopping = false;

  const showState = (model: string, state: string | undefined) => {
    for (const s of JOB_STATES) metrics.jobState.set({ model, state: s }, s === state ? 1 : 0);
  };

  const finish = async (job: Job, outcome: JobOutcome, reason: string, numbers?: Readonly<Record<string, number>>) => {
    const ended = await store.finish(job.id, outcome, reason, numbers);
    shadows.delete(job.id);
    lastWait.delete(job.id);
    showState(job.model, undefined);
    metrics.jobs.inc({ model: job.model, outcome });
    const startedAt = ended.started_at ?? ended.requested_at;
    metrics.jobSeconds.observe({ model: job.model, outcome }, Math.max(0, (Date.now() - startedAt.getTime()) / 1000));
    log[outcome === "failed" ? "warn" : "info"]({ job: job.id, model: job.model, version: ended.version, outcome, reason }, "retraining job ended");
  };

  const watchShadow = async (job: Job, version: string, reason: string) => {
    const watched = await store.toShadow(job.id, version, reason);
    shadows.set(job.id, watched);
    showState(job.model, "shadow");
    log.info({ job: job.id, model: job.model, version, reason }, "shadow evaluation started");
  };

  const trainArgs = (job: Job, family: string | undefined): string[] => [
    "train",
    "--model",
    job.model,
    // The production version's family: the gate compares like with like, and one family trains once (not every family in turn).
    ...(family ? ["--family", family] : []),
    "--with-feedback",
    "--shadow",
    "--json",
    "--trigger",
    JSON.stringify({ ...job.lineage, job: job.id }),
    "--max-seconds",
    String(options.maxSeconds),
    "--max-memory-mb",
    String(options.maxMemoryMb),
    ...(options.limit === undefined ? [] : ["--limit", String(options.limit)]),
  ];

  const train = async (job: Job): Promise<void> => {
    const live = await registry.inStage(job.model, "shadow");
    if (live) {
      await watchShadow(job, live.version, `${job.model}@${live.version} was already in shadow: it is evaluated instead of training another`);
      return;
    }
    const family = (await registry.inStage(job.model, "production"))?.family;
    const args = trainArgs(job, family);
    showState(job.model, "training");
    log.info({ job: job.id, model: job.model, trigger: job.trig, family, args }, "retraining job started");
    const started = performance.now();
    let evaluated: Evaluated | undefined;
    const onEvent = async (event: CliEvent) => {
      if (event.event === "trained") {
        const version = String(event.version);
        await store.update(job.id, { version });
        log.info({ job: job.id, model: job.model, version, family: event.family, metrics: event.metrics }, "candidate trained");
      } else if (event.event === "evaluated") {
        evaluated = { decision: event.decision as Evaluated["decision"], version: String(event.version), reason: String(event.reason ?? "") };
        const numbers = numbersOf(event.numbers);
        await store.update(job.id, { version: evaluated.version, reason: evaluated.reason, numbers });
        log.info({ job: job.id, model: job.model, version: evaluated.version, decision: evaluated.decision, reason: evaluated.reason }, "candidate evaluated by the gate");
      }
    };
    const run = await cli.run(args, { onEvent, onLog: (line) => log.info({ job: job.id, model: job.model, training: line }, "training") });
    const seconds = (performance.now() - started) / 1000;
    if (run.code !== 0 && stopping) {
      await store.requeue(job.id);
      showState(job.model, "queued");
      log.warn({ job: job.id, model: job.model }, "training stopped by shutdown; the job goes back to the queue");
      return;
    }
    if (run.code !== 0 || !evaluated) {
      metrics.trainingSeconds.observe({ model: job.model, result: "failed" }, seconds);
      const why = run.code !== 0 ? failureOf(run) : "the training CLI ended without an `evaluated` line";
      await finish(job, "failed", `training failed (${why})`);
      return;
    }
    metrics.trainingSeconds.observe({ model: job.model, result: evaluated.decision }, seconds);
    if (evaluated.decision === "shadow_started") await watchShadow(job, evaluated.version, evaluated.reason);
    else await finish(job, evaluated.decision, `gate: ${evaluated.reason}`);
  };

  const startTraining = (job: Job) => {
    const done = train(job)
      .catch(async (error: unknown) => {
        log.error({ job: job.id, model: job.model, error: errorMessage(error) }, "retraining job failed");
        await finish(job, "failed", `retrain: ${errorMessage(error)}`).catch(() => undefined);
      })
      .finally(() => {
        if (training?.job.id === job.id) training = undefined;
      });
    training = { job, done };
  };

  const decide = async (job: Job, verdict: "promote" | "reject", reason: string, numbers: Readonly<Record<string, number>>) => {
    const version = job.version!;
    const args =
      verdict === "promote"
        ? ["promote", "--model", job.model, "--version", version, "--after-shadow", "--numbers", JSON.stringify(numbers), "--reason", reason, "--json"]
        : ["reject", "--model", job.model, "--version", version, "--reason", reason, "--numbers", JSON.stringify(numbers), "--json"];
    const run = await cli.run(args, { onLog: (line) => log.info({ job: job.id, model: job.model, training: line }, verdict) });
    if (run.code !== 0) await finish(job, "failed", `${verdict} of ${job.model}@${version} failed (${failureOf(run)}); shadow evaluation: ${reason}`, numbers);
    else await finish(job, verdict === "promote" ? "promoted" : "rejected", `shadow: ${reason}`, numbers);
  };

  const checkShadow = async (job: Job) => {
    const version = job.version!;
    const current = await registry.version(job.model, version);
    if (current?.stage !== "shadow") {
      // Promoted, rejected or rolled back by hand (or by another shadow): the job has nothing left to judge.
      const stage = current?.stage ?? "gone from the registry";
      await finish(job, stage === "production" ? "promoted" : stage === "archived" ? "rejected" : "failed", `${job.model}@${version} is ${stage}: its stage changed outside the job`);
      return;
    }
    const figures = await shadowFigures(options.pool, `${job.model}@${version}`);
    const since = (job.shadow_started_at ?? job.started_at ?? job.requested_at).getTime();
    const verdict = judgeShadow(figures, options.shadow, Date.now() - since);
    metrics.shadowComparisons.inc({ model: job.model, verdict: verdict.verdict });
    for (const [figure, value] of Object.entries("numbers" in verdict ? verdict.numbers : {})) metrics.shadowFigure.set({ model: job.model, figure }, value);
    metrics.shadowFigure.set({ model: job.model, figure: "shadow_scored" }, figures.scored);
    metrics.shadowFigure.set({ model: job.model, figure: "shadow_labelled" }, figures.labelled);
    if (verdict.verdict === "wait") {
      if (lastWait.get(job.id) !== verdict.reason) log.info({ job: job.id, model: job.model, version, progress: verdict.reason }, "shadow evaluation collecting");
      lastWait.set(job.id, verdict.reason);
      return;
    }
    log.info({ job: job.id, model: job.model, version, verdict: verdict.verdict, reason: verdict.reason }, "shadow evaluated");
    await decide(job, verdict.verdict, verdict.reason, verdict.numbers);
  };

  /** A job whose process died: a shadow is watched on; a training is resumed where the registry says it got to, or failed. */
  const takeOver = async (job: Job, previousOwner: string | null) => {
    log.warn({ job: job.id, model: job.model, state: job.state, previousOwner }, "taking over a retraining job whose process stopped");
    if (job.state === "shadow") {
      shadows.set(job.id, job);
      showState(job.model, "shadow");
      return;
    }
    const last = await registry.lastDecisionOfJob(job.model, job.id);
    if (last?.action === "shadow_started") await watchShadow(job, last.version, last.reason);
    else if (last?.action === "promoted" || last?.action === "rejected") await finish(job, last.action, `gate: ${last.reason}`);
    else await finish(job, "failed", `interrupted: the process running its training (${previousOwner ?? "unknown"}) stopped before the gate decided`);
  };

  const tick = async () => {
    if (stopping) return;
    for (const { job, previousOwner } of await store.takeOverStale(owner, options.staleAfterMs)) await takeOver(job, previousOwner);
    for (const shadow of await registry.shadows()) {
      const adopted = await store.adoptShadow(owner, shadow.model, shadow.version, shadow.stage_changed_at);
      if (adopted) {
        shadows.set(adopted.id, adopted);
        showState(adopted.model, "shadow");
        log.info({ job: adopted.id, model: adopted.model, version: shadow.version }, "watching a shadow version no job watched");
      }
    }
    if (!training && !stopping) {
      const job = await store.claim(owner);
      if (job) startTraining(job);
    }
    for (const job of [...shadows.values()]) {
      try {
        await checkShadow(job);
      } catch (error) {
        log.warn({ job: job.id, model: job.model, error: errorMessage(error) }, "shadow evaluation failed; retrying at the next round");
      }
    }
    await store.heartbeat(owner, [...shadows.keys(), ...(training ? [training.job.id] : [])]);
  };

  const checkLabels = async () => {
    if (options.newLabels <= 0) return;
    for (const production of await registry.productions()) {
      if (await store.open(production.model)) continue;
      const last = await store.lastRequestedAt(production.model);
      const since = last && last > production.created_at ? last : production.created_at;
      const { rows } = await options.pool.query<{ labels: number }>(
        `SELECT count(*)::int AS labels FROM ${APP_SCHEMA}.resolved_labels WHERE judged_model = $1 AND labeled_at > $2`,
        [`${production.model}@${production.version}`, since],
      );
      const labels = rows[0]!.labels;
      if (labels < options.newLabels) continue;
      const reason = `${labels} new labels since ${since.toISOString()} (threshold ${options.newLabels})`;
      await runner.request({
        id: `labels:${production.model}:${production.version}:${since.toISOString()}`,
        model: production.model,
        trigger: "labels",
        reason,
        requestedBy: "retrain",
        requestedAt: Date.now(),
        lineage: { trigger: "labels", labels: String(labels), labels_since: since.toISOString() },
      });
    }
  };

  const runner: JobRunner = {
    async request(request) {
      const result = await store.request(request, options.cooldownMs);
      metrics.requests.inc({ model: request.model, trigger: request.trigger, result: result.outcome });
      if (result.outcome === "duplicate") return;
      const { job } = result;
      log.info(
        { job: job.id, model: request.model, trigger: request.trigger, reason: request.reason, state: job.state, notBefore: job.not_before },
        result.outcome === "joined" ? "retraining request joined the model's open job" : "retraining requested",
      );
      if (result.outcome === "queued") showState(request.model, "queued");
    },
    tick,
    checkLabels,
    async idle() {
      await training?.done;
    },
    async stop() {
      stopping = true;
      await cli.stopAll();
      await training?.done;
      // Another instance (or this one restarted) takes the shadow jobs over at once, not after staleAfterMs.
      await options.pool
        .query(`UPDATE ${APP_SCHEMA}.retrain_jobs SET heartbeat_at = NULL WHERE owner = $1 AND state = 'shadow'`, [owner])
        .catch((error: unknown) => log.warn({ error: errorMessage(error) }, "could not hand the shadow jobs over"));
    },
  };
  return runner;
}

function numbersOf(value: unknown): Record<string, number> {
  const numbers: Record<string, number> = {};
  if (value && typeof value === "object") {
    for (const [key, n] of Object.entries(value)) if (typeof n === "number" && Number.isFinite(n)) numbers[key] = n;
  }
  return numbers;
}
