import type { InferenceSession } from "onnxruntime-node";
import { EMBEDDING_TASK, type Family, type Manifest } from "./manifest.js";
import { IN_SCOPE_SIMILARITY } from "./scope.js";

/** The ONNX signature of a version (training/README.md, "ONNX signature"). */
export interface Signature {
  /** Input name → element type. */
  readonly inputs: Readonly<Record<string, "string" | "int64" | "float32">>;
  /** Outputs serving reads; all float32. */
  readonly outputs: readonly ("probabilities" | "active_features" | "embedding" | "in_scope_similarity")[];
}

const TOKEN_IDS = { input_ids: "int64", attention_mask: "int64" } as const;

/** The sentence embedder: the encoder without a head, or a static token table. */
const EMBEDDER: Signature = { inputs: TOKEN_IDS, outputs: ["embedding"] };
const CLASSIFIERS: Readonly<Record<Family, Signature>> = {
  linear: { inputs: { text: "string" }, outputs: ["probabilities", "active_features"] },
  encoder: { inputs: TOKEN_IDS, outputs: ["probabilities", "embedding"] },
  ensemble: { inputs: { text: "string", ...TOKEN_IDS }, outputs: ["probabilities", "active_features", "embedding"] },
  // Embeds only: a version of this family has the embedding signature whatever its task says.
  static: EMBEDDER,
  // The embedding comes from the embedder version the manifest names (`embedder`), computed once per text.
  head: { inputs: { embedding: "float32" }, outputs: ["probabilities"] },
};

/** A version's signature; one whose out-of-scope point is on in-scope similarity must output it too. */
export function signatureOf(manifest: Pick<Manifest, "task" | "family"> & Partial<Pick<Manifest, "operating_point">>): Signature {
  if (manifest.task === EMBEDDING_TASK) return EMBEDDER;
  const signature = CLASSIFIERS[manifest.family];
  return manifest.operating_point?.statistic === IN_SCOPE_SIMILARITY
    ? { ...signature, outputs: [...signature.outputs, "in_scope_similarity"] }
    : signature;
}

/** Whether the graph takes WordPiece token ids (and so the version ships a vocab.txt). */
export function takesTokenIds(signature: Signature): boolean {
  return "input_ids" in signature.inputs;
}

function describe(spec: Readonly<Record<string, string>>): string {
  const entries = Object.entries(spec).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? "none" : entries.map(([name, type]) => `${name}: ${type}`).join(", ");
}

function metadataTypes(metadata: readonly InferenceSession.ValueMetadata[]): Record<string, string> {
  return Object.fromEntries(metadata.map((value) => [value.name, value.isTensor ? value.type : "non-tensor"]));
}

/**
 * Problems with how the manifest and the loaded graph match the version's signature: the
 * manifest must declare its inputs and outputs, the graph must take exactly those inputs and
 * produce those outputs as float32. Empty when all is well.
 */
export function signatureProblems(
  manifest: Manifest,
  session: Pick<InferenceSession, "inputMetadata" | "outputMetadata">,
): string[] {
  const expected = signatureOf(manifest);
  const kind = manifest.task === EMBEDDING_TASK ? `${EMBEDDING_TASK} model` : `${manifest.family} family`;
  const problems: string[] = [];
  const declaredInputs = Object.fromEntries(
    Object.entries(manifest.onnx.inputs).map(([name, spec]) => [name, spec.type]),
  );
  if (describe(declaredInputs) !== describe(expected.inputs)) {
    problems.push(
      `manifest declares inputs (${describe(declaredInputs)}) but the ${kind} takes (${describe(expected.inputs)})`,
    );
  }
  const graphInputs = metadataTypes(session.inputMetadata);
  if (describe(graphInputs) !== describe(expected.inputs)) {
    problems.push(
      `model.onnx takes inputs (${describe(graphInputs)}) but the ${kind} takes (${describe(expected.inputs)})`,
    );
  }
  const graphOutputs = metadataTypes(session.outputMetadata);
  for (const name of expected.outputs) {
    if (!(name in manifest.onnx.outputs)) problems.push(`manifest does not declare the output ${name}`);
    if (graphOutputs[name] !== "float32") {
      problems.push(
        name in graphOutputs
          ? `model.onnx output ${name} is ${graphOutputs[name]}, expected float32`
          : `model.onnx has no output ${name}`,
      );
    }
  }
  return problems;
}
