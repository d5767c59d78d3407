import type pg from "pg";
import type { Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import { backoffDelay } from "../streams/backoff.js";
import type { Prediction } from "./prediction.js";
import { productionVersionDir, REGISTRY_SCHEMA, shadowVersionDir } from "./registry.js";
import { openModelSlot, type ModelSlot } from "./slot.js";
import type { LoadedModel, LoadOptions } from "./version.js";

/** Why the registry was read again: a models.lifecycle record, the fallback poll, or the model's opening. */
export type RefreshTrigger = "lifecycle" | "poll" | "start";

export interface ServedPrediction {
  readonly prediction: Prediction;
  /** The version that answered: its manifest (operating point, labels) goes with its prediction. */
  readonly version: LoadedModel;
  /** From the call to its answer, the wait for a shared batch included. */
  readonly latencyMs: number;
}

export interface ServedAnswer {
  /** What the processor routes and outputs. */
  readonly production: ServedPrediction;
  /** The shadow version's prediction of the same input, when one is held and it answered; never routed. */
  readonly shadow?: ServedPrediction;
}

/**
 * A registry model as processors serve it: the production version, and the shadow version beside
 * it when the registry has one. refresh() asks the registry what to serve and follows it (a
 * models.lifecycle record, or the slower poll, is only the wake-up).
 */
export interface ServedModel {
  readonly name: string;
  /** The production version serving now. */
  readonly current: LoadedModel;
  readonly slot: ModelSlot;
  /** The shadow version held beside production, if any. */
  readonly shadow: LoadedModel | undefined;
  /** Production's prediction and, when a shadow is held, the shadow's (run at once); a failing shadow never fails the call. */
  predict(text: string): Promise<ServedAnswer>;
  /** Swaps production and opens, replaces or drops the shadow as the registry says; refreshes run one at a time and never throw. */
  refresh(trigger: RefreshTrigger): Promise<void>;
  close(): Promise<void>;
}

export interface ServingMetrics {
  readonly swaps: Counter<"model" | "stage" | "trigger">;
  readonly refusals: Counter<"model" | "stage">;
  readonly shadowPredictions: Counter<"model">;
  readonly shadowFailures: Counter<"model">;
  /** 1 for each version a stage serves here (info-style: the version is a label). */
  readonly serving: Gauge<"model" | "stage" | "version">;
}

export function createServingMetrics(registry: Registry): ServingMetrics {
  const registers = [registry];
  return {
    swaps: new Counter({
      name: "switchboard_model_swaps_total",
      help: "Versions swapped in: stage production (a new production version) or shadow (a shadow version opened beside it), by what made the registry be read (lifecycle record, poll)",
      labelNames: ["model", "stage", "trigger"],
      registers,
    }),
    refusals: new Counter({
      name: "switchboard_model_refusals_total",
      help: "Registry versions that failed to load (the version already served stays), by stage",
      labelNames: ["model", "stage"],
      registers,
    }),
    shadowPredictions: new Counter({
      name: "switchboard_shadow_predictions_total",
      help: "Inputs the shadow version predicted beside production",
      labelNames: ["model"],
      registers,
    }),
    shadowFailures: new Counter({
      name: "switchboard_shadow_failures_total",
      help: "Shadow predictions that failed (production's answer stood)",
      labelNames: ["model"],
      registers,
    }),
    serving: new Gauge({
      name: "switchboard_model_serving",
      help: "1 for the version a stage (production, shadow) of a model serves in this process",
      labelNames: ["model", "stage", "version"],
      registers,
    }),
  };
}

const TRIGGERS: readonly RefreshTrigger[] = ["lifecycle", "poll", "start"];

export interface ServingOptions {
  readonly modelsDir: string;
  /** The fallback: how often the registry is read without a lifecycle record. */
  readonly pollMs: number;
  readonly metrics: ServingMetrics;
  readonly log: Logger;
  readonly schema?: string;
  /** Where the versions run (default: the process's inference pool). */
  readonly load?: LoadOptions;
}

/** Longest wait before trying a refused version again. */
const MAX_RETRY_MS = 5 * 60_000;
/** A failing shadow is logged at most this often (each failure is counted). */
const SHADOW_WARNING_MS = 10_000;

/**
 * A version that failed to load is tried again after a growing delay (from the poll interval up
 * to five minutes), so a fixed artifact is picked up without hammering on a broken one.
 */
class Refusals {
  private refused: { directory: string; failures: number; retryAt: number } | undefined;

  constructor(private readonly initialMs: number) {}

  /** False while `directory` waits out its delay. */
  due(directory: string): boolean {
    return !(this.refused?.directory === directory && Date.now() < this.refused.retryAt);
  }

  clear(): void {
    this.refused = undefined;
  }

  refuse(directory: string): { failures: number; retryInMs: number } {
    const failures = this.refused?.directory === directory ? this.refused.failures + 1 : 1;
    const retryInMs = backoffDelay(failures, { initialMs: this.initialMs, maxMs: MAX_RETRY_MS, jitter: false });
    this.refused = { directory, failures, retryAt: Date.now() + retryInMs };
    return { failures, retryInMs };
  }
}

async function timed(slot: ModelSlot, text: string, name: string): Promise<ServedPrediction> {
  const started = performance.now();
  const [answer] = await slot.answer([text]);
  if (!answer) throw new Error(`${name}: the model returned no prediction`);
  return { ...answer, latencyMs: Math.round((performance.now() - started) * 1000) / 1000 };
}

class RegistryServedModel implements ServedModel {
  private shadowSlot: ModelSlot | undefined;
  /** Refreshes run one after another; this is the tail of that queue. */
  private refreshes: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly productionRefusals: Refusals;
  private readonly shadowRefusals: Refusals;
  private readonly schema: string;
  private shadowWarnedAt = 0;

  constructor(
    readonly name: string,
    readonly slot: ModelSlot,
    private readonly pool: pg.Pool,
    private readonly options: ServingOptions,
  ) {
    this.schema = options.schema ?? REGISTRY_SCHEMA;
    this.productionRefusals = new Refusals(options.pollMs);
    this.shadowRefusals = new Refusals(options.pollMs);
  }

  get current(): LoadedModel {
    return this.slot.current;
  }

  get shadow(): LoadedModel | undefined {
    return this.shadowSlot?.current;
  }

  async predict(text: string): Promise<ServedAnswer> {
    const held = this.shadowSlot;
    const [production, shadow] = await Promise.all([timed(this.slot, text, this.name), held && this.shadowPrediction(held, text)]);
    return shadow ? { production, shadow } : { production };
  }

  /** The serving gauge of a stage: this version at 1, the one it replaced gone. */
  markServing(stage: "production" | "shadow", version: string | undefined, replaced: string | undefined): void {
    const { serving } = this.options.metrics;
    if (replaced !== undefined && replaced !== version) serving.remove({ model: this.name, stage, version: replaced });
    if (version !== undefined) serving.set({ model: this.name, stage, version }, 1);
  }

  private async shadowPrediction(slot: ModelSlot, text: string): Promise<ServedPrediction | undefined> {
    try {
      const answer = await timed(slot, text, this.name);
      this.options.metrics.shadowPredictions.inc({ model: this.name });
      return answer;
    } catch (error) {
      // Dropped while the call waited for its batch: the shadow did not fail, it is gone.
      if (this.shadowSlot !== slot) return undefined;
      this.options.metrics.shadowFailures.inc({ model: this.name });
      if (Date.now() - this.shadowWarnedAt >= SHADOW_WARNING_MS) {
        this.shadowWarnedAt = Date.now();
        this.options.log.warn(
          { model: this.name, shadow: slot.current.version, err: error },
          "shadow prediction failed; production's answer stands (failures are counted, logged at most every 10 s)",
        );
      }
      return undefined;
    }
  }

  refresh(trigger: RefreshTrigger): Promise<void> {
    const run = this.refreshes
      .then(async () => {
        if (this.closed) return;
        await this.followProduction(trigger);
        await this.followShadow(trigger);
      })
      // Releasing a retired version can fail; the next refresh must still run.
      .catch((error: unknown) => this.options.log.error({ model: this.name, trigger, err: error }, "model refresh failed; the next one tries again"));
    this.refreshes = run;
    return run;
  }

  private async followProduction(trigger: RefreshTrigger): Promise<void> {
    const { log, metrics, modelsDir } = this.options;
    let directory: string;
    try {
      directory = await productionVersionDir(this.pool, this.name, modelsDir, this.schema);
    } catch (error) {
      log.warn({ model: this.name, trigger, err: error }, "cannot look up the production model version; still serving the current one");
      return;
    }
    if (this.closed || directory === this.slot.current.directory || !this.productionRefusals.due(directory)) return;
    const from = this.slot.current.version;
    try {
      await this.slot.swap(directory);
      this.productionRefusals.clear();
      metrics.swaps.inc({ model: this.name, stage: "production", trigger });
      this.markServing("production", this.slot.current.version, from);
      log.info({ model: this.name, from, to: this.slot.current.version, trigger }, "production model version followed");
    } catch (error) {
      const { failures, retryInMs } = this.productionRefusals.refuse(directory);
      metrics.refusals.inc({ model: this.name, stage: "production" });
      log.error(
        { model: this.name, directory, failures, retryInMs, serving: this.slot.current.version, trigger, err: error },
        "production model version refused; the current one keeps serving",
      );
    }
  }

  private async followShadow(trigger: RefreshTrigger): Promise<void> {
    const { log, metrics, modelsDir } = this.options;
    let directory: string | undefined;
    try {
      directory = await shadowVersionDir(this.pool, this.name, modelsDir, this.schema);
    } catch (error) {
      log.warn({ model: this.name, trigger, err: error }, "cannot look up the shadow model version; keeping the shadow as it is");
      return;
    }
    const held = this.shadowSlot;
    if (this.closed || held?.current.directory === directory) return;
    // The registry's shadow changed (promoted, rejected, replaced): the one held is not it any more.
    if (held) await this.dropShadow(held, trigger);
    if (directory === undefined) {
      this.shadowRefusals.clear();
      return;
    }
    if (!this.shadowRefusals.due(directory)) return;
    try {
      this.shadowSlot = await openModelSlot(directory, log, this.options.load);
      this.shadowRefusals.clear();
      metrics.swaps.inc({ model: this.name, stage: "shadow", trigger });
      this.markServing("shadow", this.shadowSlot.current.version, undefined);
      log.info(
        { model: this.name, shadow: this.shadowSlot.current.version, production: this.slot.current.version, trigger },
        "shadow model version serving beside production",
      );
    } catch (error) {
      const { failures, retryInMs } = this.shadowRefusals.refuse(directory);
      metrics.refusals.inc({ model: this.name, stage: "shadow" });
      log.error(
        { model: this.name, directory, failures, retryInMs, production: this.slot.current.version, trigger, err: error },
        "shadow model version refused; production serves alone",
      );
    }
  }

  private async dropShadow(held: ModelSlot, trigger: RefreshTrigger): Promise<void> {
    this.shadowSlot = undefined;
    this.markServing("shadow", undefined, held.current.version);
    this.options.log.info({ model: this.name, shadow: held.current.version, trigger }, "shadow model version dropped");
    await held.close();
  }

  /** Polls the registry every pollMs, the fallback for a lifecycle record missed or not sent. */
  poll(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.refresh("poll").finally(() => this.poll()), this.options.pollMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await this.refreshes;
    const shadow = this.shadowSlot;
    this.shadowSlot = undefined;
    await shadow?.close();
    await this.slot.close();
  }
}

/**
 * Opens a registry model's production version (failing when it has none or it cannot load) and
 * its shadow version if there is one (a shadow that cannot load is logged: production serves
 * alone), then polls the registry every pollMs as the fallback for lifecycle records.
 */
export async function openServedModel(pool: pg.Pool, name: string, options: ServingOptions): Promise<ServedModel> {
  const directory = await productionVersionDir(pool, name, options.modelsDir, options.schema ?? REGISTRY_SCHEMA);
  const served = new RegistryServedModel(name, await openModelSlot(directory, options.log, options.load), pool, options);
  // Swaps and refusals at 0, so that a swap shows as an increase (a dashboard annotation) rather than a new series.
  for (const stage of ["production", "shadow"]) {
    for (const trigger of TRIGGERS) options.metrics.swaps.inc({ model: name, stage, trigger }, 0);
    options.metrics.refusals.inc({ model: name, stage }, 0);
  }
  served.markServing("production", served.current.version, undefined);
  await served.refresh("start");
  served.poll();
  return served;
}
