import { appendFileSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { heldOutRows } from "../../models/eval/held-out.js";
import {
  ModelLoadError,
  loadModelVersion,
  openModelSlot,
  type Answer,
  type LoadedModel,
  type ModelSlot,
  type Prediction,
} from "../../models/index.js";
import {
  capturedLog,
  copyVersion,
  pythonProbabilities,
  readManifest,
  replaceFileKeepingManifestValid,
  tempModelsDir,
  train,
  withEmbedder,
  writeManifest,
} from "./models-fixture.js";
import { exportEmbedder } from "./kb-fixture.js";

const PARITY_TOLERANCE = 1e-5;

/** Probabilities in manifest label order, from a prediction's ranking. */
function probabilities(prediction: Prediction, labels: readonly string[]): number[] {
  const byLabel = new Map(prediction.ranked.map((s) => [s.label, s.score]));
  return labels.map((label) => byLabel.get(label)!);
}

describe("model serving (real onnxruntime, models trained by the training CLI)", () => {
  const { log, entries } = capturedLog();

  /** Loading `broken` fails with a ModelLoadError that names the directory and matches `error`. */
  async function expectRefusal(broken: string, error: RegExp): Promise<void> {
    const refusal = await loadModelVersion(broken, log).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refusal).toBeInstanceOf(ModelLoadError);
    expect((refusal as ModelLoadError).message).toMatch(error);
    expect((refusal as ModelLoadError).message).toContain(broken);
  }
  let modelsDir: string;
  let versions: Record<string, string>;

  beforeAll(async () => {
    modelsDir = tempModelsDir("models-serving");
    withEmbedder(modelsDir, await exportEmbedder("static"));
    versions = await train(modelsDir, { task: "sentiment", family: "all", limit: 600 });
    expect(Object.keys(versions).sort()).toEqual(["encoder", "ensemble", "head", "linear"]);
  });
  afterAll(() => rmSync(modelsDir, { recursive: true, force: true }));

  it("gives Python's probabilities (within 1e-5) for every family, on held-out inquiries and multilingual, noisy texts", async () => {
    const fixture = JSON.parse(
      readFileSync(path.join(REPO_ROOT, "training/tests/fixtures/tokenization.json"), "utf8"),
    ) as { cases: { text: string }[] };
    const heldOut = await heldOutRows(versions.linear!);
    // NUL cannot cross onnxruntime-node's string tensors (see models/feeds.ts); the next test covers it.
    const noisy = fixture.cases.map((c) => c.text).filter((text, i) => i % 4 === 0 && !text.includes("\0"));
    const texts = [...heldOut.rows.map((row) => row.text), ...noisy];
    expect(texts.length).toBeGreaterThanOrEqual(300);
    for (const [family, directory] of Object.entries(versions)) {
      const model = await loadModelVersion(directory, log);
      try {
        const node = (await model.predict(texts)).map((p) => probabilities(p, model.manifest.labels));
        const python = await pythonProbabilities(directory, texts);
        const gap = Math.max(...node.flatMap((row, r) => row.map((p, c) => Math.abs(p - python[r]![c]!))));
        expect(gap, `${family}: largest probability difference`).toBeLessThanOrEqual(PARITY_TOLERANCE);
      } finally {
        await model.release();
      }
    }
  });

  it("reads a text past a NUL character (removed, as clean does) instead of cutting it there", async () => {
    const linear = await loadModelVersion(versions.linear!, log);
    try {
      const [withNul, without, cut] = await linear.predict([
        "the flight\0 was late and the crew rude",
        "the flight was late and the crew rude",
        "the flight",
      ]);
      expect(withNul!.ranked).toEqual(without!.ranked);
      expect(withNul!.activeFeatures).toBe(without!.activeFeatures);
      expect(withNul!.activeFeatures).toBeGreaterThan(cut!.activeFeatures!);
    } finally {
      await linear.release();
    }
  });

  it("returns ranked labels, the version, and the family's extra outputs", async () => {
    const ensemble = await loadModelVersion(versions.ensemble!, log);
    try {
      const [prediction] = await ensemble.predict(["The flight was cancelled and nobody helped us."]);
      expect(prediction!.model).toBe(`sentiment@${path.basename(versions.ensemble!)}`);
      expect(prediction!.ranked.map((s) => s.label).sort()).toEqual(["negative", "neutral", "positive"]);
      expect(prediction!.ranked[0]).toEqual({ label: prediction!.label, score: prediction!.confidence });
      expect(prediction!.ranked.map((s) => s.score)).toEqual(
        [...prediction!.ranked.map((s) => s.score)].sort((a, b) => b - a),
      );
      expect(prediction!.embedding).toHaveLength(384);
      // The drift signal of the embedding: its cosine to the training centroid in the manifest.
      expect(prediction!.centroidCosine).toBeGreaterThan(-1);
      expect(prediction!.centroidCosine).toBeLessThanOrEqual(1);
      expect(prediction!.activeFeatures).toBeGreaterThan(0);
      expect(await ensemble.predict([])).toEqual([]);
    } finally {
      await ensemble.release();
    }
    expect(entries.some((e) => e.msg === "model version loaded" && e.family === "ensemble")).toBe(true);
  });

  it("hot-swaps under concurrent load: no call fails, each is answered wholly by the old or the new version, old ones are released", async () => {
    const texts = [
      "my bag never arrived",
      "thanks for the upgrade!",
      "gate changed again",
      "worst customer service",
      "great crew on the flight",
      "is the flight on time?",
    ];
    const batches = [0, 1, 2, 3, 4, 5].map((worker) => [texts[worker]!, texts[(worker + 1) % texts.length]!]);
    // What each version answers for each batch, from instances outside the slot.
    const reference = new Map<string, number[][][]>();
    for (const directory of [versions.linear!, versions.encoder!]) {
      const model = await loadModelVersion(directory, log);
      const answers = [];
      for (const batch of batches)
        answers.push((await model.predict(batch)).map((p) => probabilities(p, model.manifest.labels)));
      reference.set(`sentiment@${model.version}`, answers);
      await model.release();
    }

    const slot: ModelSlot = await openModelSlot(versions.linear!, log);
    const broken = copyVersion(versions.encoder!, path.join(modelsDir, "broken-encoder"));
    unlinkSync(path.join(broken, "vocab.txt"));
    let swapping = true;
    const answeredBy = new Map<string, number>();
    const failures: unknown[] = [];
    const workers = batches.map(async (batch, worker) => {
      while (swapping) {
        try {
          const predictions = await slot.predict(batch);
          const models = new Set(predictions.map((p) => p.model));
          expect(models.size, "one call, one version").toBe(1);
          const [model] = models;
          const expected = reference.get(model!);
          expect(expected, `answered by ${model}`).toBeDefined();
          predictions.forEach((p, row) => {
            probabilities(p, ["negative", "neutral", "positive"]).forEach((score, column) =>
              expect(score).toBeCloseTo(expected![worker]![row]![column]!, 6),
            );
          });
          answeredBy.set(model!, (answeredBy.get(model!) ?? 0) + 1);
        } catch (error) {
          failures.push(error);
        }
      }
    });

    const retired: LoadedModel[] = [];
    const longCalls: Promise<Answer[]>[] = [];
    for (let i = 0; i < 8; i++) {
      // A long call made just before a swap: its batch runs on the version serving when the batch
      // is dispatched (calls are coalesced), wholly on that one, even if it is swapped out meanwhile.
      longCalls.push(slot.answer(Array.from({ length: 96 }, (_, n) => texts[n % texts.length]!)));
      retired.push(slot.current);
      await slot.swap(i % 2 === 0 ? versions.encoder! : versions.linear!);
      if (i === 3) {
        const before = slot.current;
        await expect(slot.swap(broken)).rejects.toThrow(ModelLoadError);
        expect(slot.current).toBe(before);
      }
    }
    swapping = false;
    await Promise.all(workers);
    const longAnswers = await Promise.all(longCalls);

    expect(failures).toEqual([]);
    expect([...answeredBy.keys()].sort()).toEqual([...reference.keys()].sort());
    longAnswers.forEach((answer, i) => {
      const [version, ...others] = new Set(answer.map((a) => a.version));
      expect(others, "one call, one version").toEqual([]);
      // The version serving at the call or one swapped in after it, never an earlier one.
      expect([...retired.slice(i), slot.current]).toContain(version);
      for (const { prediction } of answer) expect(prediction.model).toBe(`sentiment@${version!.version}`);
    });
    for (const model of retired) await expect(model.predict(["hello"])).rejects.toThrow(/has been released/);

    await slot.close();
    await expect(slot.predict(["hello"])).rejects.toThrow(/closed/);
    await expect(slot.current.predict(["hello"])).rejects.toThrow(/has been released/);
  });

  it("serves a head on its embedder's embedding, with one copy of the embedder per process shared by every holder", async () => {
    const embedderDir = readManifest(versions.head!).embedder as { version: string };
    const directory = path.join(modelsDir, "embedder", embedderDir.version);
    const before = entries.length;
    const [head, embedder] = await Promise.all([loadModelVersion(versions.head!, log), loadModelVersion(directory, log)]);
    try {
      const text = "The flight was cancelled and nobody helped us.";
      const [[prediction], [embedding]] = await Promise.all([head.predict([text]), embedder.embed([text])]);
      expect(prediction!.model).toBe(`sentiment@${path.basename(versions.head!)}`);
      expect(prediction!.ranked.map((s) => s.label).sort()).toEqual(["negative", "neutral", "positive"]);
      expect(embedding).toHaveLength(384);
      // A head's prediction carries the embedding it was fed, and that embedding's drift signal.
      expect(Array.from(prediction!.embedding!)).toEqual(Array.from(embedding!));
      expect(prediction!.centroidCosine).toBeGreaterThan(-1);
      const loaded = entries.slice(before).filter((e) => e.msg === "model version loaded");
      expect(loaded.map((e) => e.family).sort()).toEqual(["head", "static"]);
      expect(loaded.find((e) => e.family === "head")!.embedder).toBe(`embedder@${embedderDir.version}`);
    } finally {
      await head.release();
    }
    // The head let go of its hold; the other holder's copy keeps serving.
    await expect(embedder.embed(["still here"])).resolves.toHaveLength(1);
    await embedder.release();
    await expect(embedder.embed(["gone"])).rejects.toThrow(/released/);
  });

  describe("refuses a head whose embedder is not the one it was trained on", () => {
    const cases: { name: string; breakIt: (head: string) => void; error: RegExp }[] = [
      {
        name: "embedder version missing",
        breakIt: (head) => {
          const manifest = readManifest(head);
          writeManifest(head, { ...manifest, embedder: { ...(manifest.embedder as object), version: "20200101T000000Z-static-00000000" } });
        },
        error: /the embedder it was trained on, embedder@20200101T000000Z-static-00000000, cannot be served: .*manifest\.json is missing/,
      },
      {
        name: "embedder with another checksum",
        breakIt: (head) => {
          const manifest = readManifest(head);
          writeManifest(head, { ...manifest, embedder: { ...(manifest.embedder as object), sha256: "0".repeat(64) } });
        },
        error: /model\.onnx has sha256 [0-9a-f]{64}, the head was trained on 0{64}/,
      },
      {
        name: "embedder of another width",
        breakIt: (head) => {
          const manifest = readManifest(head);
          writeManifest(head, { ...manifest, embedder: { ...(manifest.embedder as object), dimensions: 256 } });
        },
        error: /outputs 384 dimensions and the head takes 384, the manifest pins 256/,
      },
      {
        name: "head manifest without its embedder",
        breakIt: (head) => {
          const manifest = readManifest(head);
          delete manifest.embedder;
          writeManifest(head, manifest);
        },
        error: /manifest\.json is invalid: embedder: a head version names the embedder version it was trained on/,
      },
    ];
    it.each(cases)("$name", async ({ name, breakIt, error }) => {
      // Beside the real head, so that the embedder is looked up where serving looks for it.
      const broken = copyVersion(versions.head!, path.join(modelsDir, "sentiment", `broken-${name.replace(/\W+/g, "-")}`));
      breakIt(broken);
      await expectRefusal(broken, error);
    });
  });

  describe("refuses a broken version with a clear error, and the serving version keeps serving", () => {
    const cases: { name: string; from: "linear" | "encoder"; breakIt: (dir: string) => void; error: RegExp }[] = [
      {
        name: "model.onnx missing",
        from: "linear",
        breakIt: (dir) => unlinkSync(path.join(dir, "model.onnx")),
        error: /model\.onnx is missing/,
      },
      {
        name: "vocab.txt missing",
        from: "encoder",
        breakIt: (dir) => unlinkSync(path.join(dir, "vocab.txt")),
        error: /vocab\.txt is missing/,
      },
      {
        name: "manifest.json missing",
        from: "linear",
        breakIt: (dir) => unlinkSync(path.join(dir, "manifest.json")),
        error: /manifest\.json is missing/,
      },
      {
        name: "model.onnx changed after training",
        from: "linear",
        breakIt: (dir) => appendFileSync(path.join(dir, "model.onnx"), Buffer.from([0])),
        error: /model\.onnx has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64} \(corrupt or replaced\)/,
      },
      {
        name: "model.onnx not a loadable graph (checksum consistent)",
        from: "linear",
        breakIt: (dir) =>
          replaceFileKeepingManifestValid(
            dir,
            "model.onnx",
            readFileSync(path.join(dir, "model.onnx")).subarray(0, 4096),
          ),
        error: /onnxruntime cannot load model\.onnx/,
      },
      {
        name: "manifest lists fewer labels than the graph outputs",
        from: "linear",
        breakIt: (dir) => {
          const manifest = readManifest(dir);
          writeManifest(dir, { ...manifest, labels: manifest.labels.slice(0, 2) });
        },
        error: /the model outputs 3 probabilities per row but the manifest lists 2 labels/,
      },
      {
        name: "graph with another family's inputs",
        from: "linear",
        breakIt: (dir) =>
          replaceFileKeepingManifestValid(dir, "model.onnx", readFileSync(path.join(versions.encoder!, "model.onnx"))),
        error:
          /model\.onnx takes inputs \(attention_mask: int64, input_ids: int64\) but the linear family takes \(text: string\)/,
      },
      {
        name: "manifest of an unknown family",
        from: "linear",
        breakIt: (dir) => writeManifest(dir, { ...readManifest(dir), family: "transformer" }),
        error: /manifest\.json is invalid: family/,
      },
    ];
    let slot: ModelSlot;
    beforeAll(async () => {
      slot = await openModelSlot(versions.linear!, log);
    });
    afterAll(() => slot.close());

    it.each(cases)("$name", async ({ name, from, breakIt, error }) => {
      const broken = copyVersion(versions[from]!, path.join(modelsDir, `broken-${name.replace(/\W+/g, "-")}`));
      breakIt(broken);
      const serving = slot.current;

      await expectRefusal(broken, error);

      await expect(slot.swap(broken)).rejects.toThrow(error);
      expect(slot.current).toBe(serving);
      const [prediction] = await slot.predict(["the crew was lovely"]);
      expect(prediction!.model).toBe(`sentiment@${serving.version}`);
    });
  });
});
