import { readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { parseManifest } from "../models/manifest.js";
import { REGISTRY_SCHEMA } from "../models/registry.js";
import { featureReferences, type FeatureReference } from "./reference.js";

/**
 * Which model versions drift watches, and against what: a `name@version` of a prediction record
 * is looked up in the registry, and its manifest's `reference` read from the version directory.
 */

export type VersionWatch =
  | {
      readonly watched: true;
      /** The version directory (model.onnx, manifest.json). */
      readonly directory: string;
      readonly references: readonly FeatureReference[];
      readonly skipped: readonly string[];
    }
  | { readonly watched: false; readonly reason: string };

/** A version not found is asked for again after this long: it may be registered meanwhile. */
const RETRY_UNKNOWN_MS = 60_000;

/**
 * A prediction record carries a summary of its input, not the input: the embedding's 384
 * numbers are not in it, only their cosine to the training centroid (`embedding_centroid_cosine`,
 * a scalar the manifest also summarises), so the per-dimension embedding is not watched here.
 */
function carriedByRecords(reference: FeatureReference): boolean {
  return reference.kind !== "vector";
}

export class WatchedVersions {
  private readonly known = new Map<string, { watch: Promise<VersionWatch>; at: number; unknown: boolean }>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly modelsDir: string,
    private readonly schema = REGISTRY_SCHEMA,
  ) {}

  /** The watch of `model` ("name@version"); rejects only when the registry cannot be read (worth retrying). */
  lookup(model: string, now = Date.now()): Promise<VersionWatch> {
    const cached = this.known.get(model);
    if (cached && (now - cached.at < RETRY_UNKNOWN_MS || !cached.unknown)) return cached.watch;
    const watch = this.read(model);
    const entry = { watch, at: now, unknown: false };
    this.known.set(model, entry);
    watch.then(
      (w) => (entry.unknown = !w.watched),
      () => this.known.delete(model),
    );
    return watch;
  }

  private async read(model: string): Promise<VersionWatch> {
    const at = model.lastIndexOf("@");
    if (at <= 0) return { watched: false, reason: `"${model}" is not name@version` };
    const [name, version] = [model.slice(0, at), model.slice(at + 1)];
    const { rows } = await this.pool.query<{ artifact_path: string }>(
      `SELECT artifact_path FROM ${pg.escapeIdentifier(this.schema)}.versions WHERE model = $1 AND version = $2`,
      [name, version],
    );
    const row = rows[0];
    if (!row) return { watched: false, reason: `${model} is not in the model registry` };
    const directory = path.resolve(this.modelsDir, row.artifact_path);
    let text: string;
    try {
      text = await readFile(path.join(directory, "manifest.json"), "utf8");
    } catch (error) {
      return { watched: false, reason: `cannot read the manifest of ${model} in ${directory}: ${(error as Error).message}` };
    }
    let reference: Readonly<Record<string, unknown>> | null;
    try {
      reference = parseManifest(text).reference ?? null;
    } catch (error) {
      return { watched: false, reason: `the manifest of ${model} is invalid: ${(error as Error).message}` };
    }
    const parsed = featureReferences(reference);
    const references = parsed.features.filter(carriedByRecords);
    if (references.length === 0) return { watched: false, reason: `the manifest of ${model} has no reference distributions` };
    return { watched: true, directory, references, skipped: parsed.skipped };
  }
}
