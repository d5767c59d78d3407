import { execFile } from "node:child_process";
import { appendFileSync, rmSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  InferencePool,
  InferenceWorkerCrash,
  loadModelVersion,
  openModelSlot,
  type LoadedModel,
  type Prediction,
} from "../../models/index.js";
import { REPO_ROOT } from "../../config/settings.js";
import type { InferencePoolHooks } from "../../models/inference-pool.js";
import { capturedLog, copyVersion, eventually, tempModelsDir, train, withEmbedder } from "./models-fixture.js";
import { exportEmbedder } from "./kb-fixture.js";

const CRASHED = "inference worker exited; a new one takes over";

/** Inquiry-like texts of many lengths, so an encoder runs several batches of different widths. */
function inquiries(count: number): string[] {
  const parts = [
    "my bag never arrived",
    "thanks for the upgrade, the crew was lovely",
    "the gate changed twice and nobody told us anything at all",
    "I was charged twice for the same seat and I want the second payment refunded today",
    "is the flight on time?",
    "worst customer service I have ever had, three hours on hold and then the line dropped",
  ];
  return Array.from({ length: count }, (_, i) =>
    Array.from({ length: 1 + (i % 4) }, (_, j) => parts[(i + j * 5) % parts.length]!).join(". "),
  );
}

describe("inference worker pool (real onnxruntime in worker threads)", () => {
  const { log, entries } = capturedLog();
  let modelsDir: string;
  let versions: Record<string, string>;
  const texts = inquiries(160);
  /** Each family's version on the main thread, without workers: what every pooled run must equal. */
  const inline = new Map<string, LoadedModel>();
  const expected = (family: string, batch: readonly string[]): Promise<Prediction[]> =>
    inline.get(family)!.predict(batch);
  const pools: InferencePool[] = [];

  /** A pool whose hook makes a worker exit in the middle of the requests `crash` picks; `killed` lists those. */
  function pool(
    threads: number,
    crash: (request: Parameters<NonNullable<InferencePoolHooks["crashWorker"]>>[0]) => boolean,
  ) {
    const killed: string[] = [];
    const created = new InferencePool({
      threads,
      log,
      hooks: {
        crashWorker: (request) => {
          if (!crash(request)) return false;
          killed.push(`${request.kind} ${request.model} #${request.attempt}`);
          return true;
        },
      },
    });
    pools.push(created);
    return { pool: created, killed };
  }

  const crashes = () => entries.filter((e) => e.msg === CRASHED);

  beforeAll(async () => {
    modelsDir = tempModelsDir("inference-pool");
    withEmbedder(modelsDir, await exportEmbedder("static"));
    versions = await train(modelsDir, { task: "sentiment", family: "all", limit: 400 });
    for (const family of ["linear", "encoder"])
      inline.set(family, await loadModelVersion(versions[family]!, log, { pool: null }));
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
    entries.length = 0;
  });
  afterAll(async () => {
    for (const model of inline.values()) await model.release();
    rmSync(modelsDir, { recursive: true, force: true });
  });

  it("runs in a process started as bin/switchboard.js starts processors (tsx registered by its API, no loader flags)", async () => {
    // bin/switchboard.js: register() from tsx/esm/api, then the TypeScript CLI; a worker inherits neither.
    const script = [
      `import { register } from "tsx/esm/api";`,
      `register();`,
      `const { openModelSlot } = await import(${JSON.stringify(new URL("../../models/index.ts", import.meta.url).href)});`,
      `const { default: pino } = await import("pino");`,
      `const slot = await openModelSlot(process.argv[1], pino({ level: "info" }));`,
      `const predictions = await slot.predict(JSON.parse(process.argv[2]));`,
      `await slot.close();`,
      `console.log(JSON.stringify(predictions));`,
    ].join("\n");
    const batch = texts.slice(0, 8);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--input-type=module", "-e", script, versions.encoder!, JSON.stringify(batch)],
      { cwd: REPO_ROOT, env: { ...process.env, SWITCHBOARD_INFERENCE_THREADS: "1", LOG_FORMAT: "json" } },
    );
    const lines = stdout.trim().split("\n");
    const loaded = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((e) => e.msg === "model version loaded");
    expect(loaded).toMatchObject({ inference: "worker", family: "encoder" });
    const predictions = JSON.parse(lines.at(-1)!) as Prediction[];
    const reference = await expected("encoder", batch);
    // Through JSON: the embedding Float32Array arrives as an object of its values.
    expect(predictions.map((p) => p.ranked)).toEqual(reference.map((p) => p.ranked));
  });

  it.each(["linear", "encoder"])(
    "%s: a worker killed mid-call is replaced, the call runs again, and the predictions equal an unbroken run's",
    async (family) => {
      let armed = false;
      let runs = 0;
      const { pool: workers, killed } = pool(
        1,
        (request) => armed && request.kind === "run" && [2, 4].includes(++runs),
      );
      const model = await loadModelVersion(versions[family]!, log, { pool: workers });
      const [first] = workers.workers();
      armed = true;

      const predictions = await model.predict(texts);

      expect(killed).toHaveLength(2);
      expect(predictions).toEqual(await expected(family, texts));
      expect(crashes()).toHaveLength(2);
      for (const crash of crashes()) {
        expect(crash).toMatchObject({ model: `sentiment@${model.version}`, request: "run", attempt: 1, retried: true });
        expect(crash.reloading).toEqual([`sentiment@${model.version}`]);
      }
      expect(workers.workers()).toHaveLength(1);
      expect(workers.workers()[0]).not.toBe(first);
      await model.release();
    },
  );

  it("answers concurrent callers of a slot through crashes, each with its own rows", async () => {
    let runs = 0;
    const { pool: workers, killed } = pool(1, (request) => request.kind === "run" && [5, 7, 8].includes(++runs));
    const slot = await openModelSlot(versions.encoder!, log, { pool: workers });
    // Warm-up ran 4 runs; the first coalesced run is the 5th, so the kills land in the calls below.
    const calls = Array.from({ length: 24 }, (_, i) => slot.predict(texts.slice(i * 5, i * 5 + 5)));
    const answers = await Promise.all(calls);
    const references = await Promise.all(calls.map((_, i) => expected("encoder", texts.slice(i * 5, i * 5 + 5))));

    expect(killed).toHaveLength(3);
    answers.forEach((answer, i) => {
      const reference = references[i]!;
      expect(answer.map((p) => p.label)).toEqual(reference.map((p) => p.label));
      // Coalescing groups the rows differently from the reference run: equal up to float rounding.
      answer.forEach((p, row) =>
        p.ranked.forEach((s, k) => expect(s.score).toBeCloseTo(reference[row]!.ranked[k]!.score, 6)),
      );
    });
    await slot.close();
  });

  it("fails a call that kills every worker it runs in with an error naming the model, then serves the next call", async () => {
    let poisoned = false;
    const { pool: workers, killed } = pool(1, (request) => poisoned && request.kind === "run");
    const model = await loadModelVersion(versions.linear!, log, { pool: workers });
    poisoned = true;

    const failure = await model.predict(texts.slice(0, 3)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(InferenceWorkerCrash);
    expect((failure as Error).message).toMatch(
      new RegExp(`^sentiment@${model.version}: the inference worker exited during each of 3 attempts to run a batch`),
    );
    expect(killed).toHaveLength(3);
    expect(crashes().map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(crashes().map((c) => c.retried)).toEqual([true, true, false]);

    poisoned = false;
    expect(await model.predict(texts.slice(0, 3))).toEqual(await expected("linear", texts.slice(0, 3)));
    await model.release();
  });

  it("hot-swaps in the pool: a swapped-out version is released in its worker and not loaded again after a crash", async () => {
    const { pool: workers } = pool(1, () => false);
    const slot = await openModelSlot(versions.linear!, log, { pool: workers });
    const retired: LoadedModel = slot.current;
    await slot.swap(versions.encoder!);
    const serving = slot.current;
    expect(serving.manifest.family).toBe("encoder");
    await expect(retired.predict(["hello"])).rejects.toThrow(/has been released/);
    // The worker says so: after the release it holds the serving version's session alone.
    expect(entries.filter((e) => e.msg === "model session released in its inference worker")).toEqual([
      expect.objectContaining({ model: `sentiment@${retired.version}`, thread: 0, held: 1 }),
    ]);

    await workers.workers()[0]!.terminate();
    await eventually(() => crashes().length === 1, "the pool to notice the exit");
    // Only the serving version is reloaded: the released one's session was freed, not just forgotten here.
    expect(crashes()[0]!.reloading).toEqual([`sentiment@${serving.version}`]);
    expect(await slot.predict(texts.slice(0, 10))).toEqual(await expected("encoder", texts.slice(0, 10)));

    await slot.close();
    await expect(serving.predict(["hello"])).rejects.toThrow(/has been released/);
  });

  it("places versions on different workers; a crash in one leaves the other's sessions alone", async () => {
    const { pool: workers } = pool(2, () => false);
    const linear = await loadModelVersion(versions.linear!, log, { pool: workers });
    const encoder = await loadModelVersion(versions.encoder!, log, { pool: workers });
    expect(workers.workers()).toHaveLength(2);

    await workers.workers()[0]!.terminate();
    await eventually(() => crashes().length === 1, "the pool to notice the exit");
    expect(crashes()[0]).toMatchObject({ thread: 0, reloading: [`sentiment@${linear.version}`] });
    expect(await linear.predict(texts)).toEqual(await expected("linear", texts));
    expect(await encoder.predict(texts)).toEqual(await expected("encoder", texts));
    expect(crashes()).toHaveLength(1);
    await Promise.all([linear.release(), encoder.release()]);
  });

  it("refuses to serve a version whose file changed on disk when a replacement worker reloads it", async () => {
    const { pool: workers } = pool(1, () => false);
    const copy = copyVersion(versions.linear!, path.join(modelsDir, "changed-after-load"));
    const changed = await loadModelVersion(copy, log, { pool: workers });
    const intact = await loadModelVersion(versions.encoder!, log, { pool: workers });
    appendFileSync(path.join(copy, "model.onnx"), Buffer.from([0]));

    await workers.workers()[0]!.terminate();
    await eventually(
      () => entries.some((e) => e.msg === "model session lost with its inference worker"),
      "the reload to fail",
    );
    await expect(changed.predict(["hello"])).rejects.toThrow(
      new RegExp(
        `^sentiment@${changed.version} cannot run: its session could not be loaded again after the inference worker was replaced \\(model\\.onnx has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}`,
      ),
    );
    expect(await intact.predict(texts.slice(0, 4))).toEqual(await expected("encoder", texts.slice(0, 4)));
    await Promise.all([changed.release(), intact.release()]);
  });
});
