import { rmSync } from "node:fs";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModelVersion, type LoadedModel } from "../../models/index.js";
import { python, tempModelsDir } from "./models-fixture.js";

const TEXTS = [
  "Wo ist meine Bestellung? Ich warte seit zwei Wochen.",
  "¿Dónde está mi pedido 48213?",
  "Je voudrais un remboursement, l'article est arrivé cassé.",
  "Meu pedido não chegou, preciso de ajuda com a fatura",
  "where is my order",
  "Stra\u00dfe e\u0301 \uff45\u0301 🙏🏼 中文 ok",
  "Rechnung fehlerhaft ".repeat(80),
];

/**
 * The multilingual embedder (training/models/multilingual.py) as Node serves it: exported by
 * Python into a scratch models folder, loaded with its Unigram tokenizer (models/unigram.ts) and
 * onnxruntime-node, and compared with Python's embeddings of the same texts (its own tokenizer
 * and onnxruntime): the same graph and the same ids, so the same vectors.
 */
describe("multilingual encoder served in Node", () => {
  const modelsDir = tempModelsDir("multilingual");
  let directory: string;
  let python_vectors: number[][];
  let model: LoadedModel;
  beforeAll(async () => {
    const { stdout } = await python(["-m", "training.models.multilingual", "--no-register"], { SWITCHBOARD_MODELS_DIR: modelsDir });
    directory = /-> (.+)$/m.exec(stdout)![1]!;
    const script = [
      "import json, sys",
      "from pathlib import Path",
      "from training.models.embedding_head import PinnedEmbedder",
      "embed = PinnedEmbedder.at(Path(sys.argv[1]))",
      "print(json.dumps(embed(json.loads(sys.argv[2])).tolist()))",
    ].join("\n");
    python_vectors = JSON.parse((await python(["-c", script, directory, JSON.stringify(TEXTS)])).stdout) as number[][];
    model = await loadModelVersion(directory, pino({ level: "silent" }), { pool: null });
  }, 600_000);
  afterAll(async () => {
    await model?.release();
    rmSync(modelsDir, { recursive: true, force: true });
  });

  it("gives Python's embeddings (max |Δ| < 1e-5) for every language, marks, emoji and a truncated text", async () => {
    const node = await model.embed(TEXTS);
    const worst = Math.max(...node.flatMap((row, r) => [...row].map((v, i) => Math.abs(v - python_vectors[r]![i]!))));
    expect(worst).toBeLessThan(1e-5);
  });

  it("puts a request nearer to its translation than to another request", async () => {
    const [de, , , , en] = await model.embed(TEXTS);
    const [other] = await model.embed(["I want to reset my password"]);
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + v * b[i]!, 0);
    expect(dot(en!, de!)).toBeGreaterThan(dot(en!, other!));
  });
});
