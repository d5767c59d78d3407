import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import AjvCompiler from "@fastify/ajv-compiler";
import { describe, expect, it } from "vitest";
import {
  EMBEDDING_TASK,
  FAMILIES,
  MANIFEST_SCHEMA_FILE,
  manifestSchema,
  parseManifest,
} from "../../models/manifest.js";

/**
 * models/manifest.schema.json is the description of manifest.json; the zod schema in
 * models/manifest.ts must accept and refuse exactly what it does. The JSON Schema is run by the
 * Ajv that fastify ships (a dependency of @fastify/ajv-compiler, not of ours); that build speaks
 * draft 7, so `$schema` is left out and the file keeps to keywords both drafts read alike
 * (training/tests/test_manifest_schema.py checks the same cases with a draft 2020-12 validator).
 */

type Path = readonly (string | number)[];
interface Case {
  readonly name: string;
  readonly set?: readonly [Path, unknown][];
  readonly delete?: readonly Path[];
  readonly valid: boolean;
  readonly path?: Path;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const schema = JSON.parse(readFileSync(MANIFEST_SCHEMA_FILE, "utf8")) as Record<string, unknown> & {
  properties: { family: { enum: string[] }; schema_version: { const: number } };
  if: { properties: { task: { const: string } } };
};
const fixtures = JSON.parse(readFileSync(path.join(root, "test/fixtures/manifest-cases.json"), "utf8")) as {
  manifest: Record<string, unknown>;
  cases: Case[];
};

const draft7: Record<string, unknown> = { ...schema };
delete draft7.$schema;
// As written: no coercion, no removal of unknown fields, no defaults; every problem.
const ajv = AjvCompiler()(
  {},
  {
    customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false, useDefaults: false, strict: false },
  },
)({
  schema: draft7,
});

/** The paths Ajv reports problems at; a missing or misnamed field's path ends with its name. */
function jsonSchemaProblems(manifest: unknown): Path[] {
  if (ajv(manifest)) return [];
  return (ajv.errors ?? []).map((error) => {
    const at = error.instancePath
      .split("/")
      .slice(1)
      .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"));
    const child = error.params.missingProperty ?? error.params.propertyName;
    return typeof child === "string" && error.keyword === "required" ? [...at, child] : at;
  });
}

function zodProblems(manifest: unknown): Path[] {
  const parsed = manifestSchema.safeParse(manifest);
  return parsed.success
    ? []
    : parsed.error.issues.map((issue) => issue.path.map((part) => (typeof part === "symbol" ? String(part) : part)));
}

function edited(testCase: Case): unknown {
  const manifest = structuredClone(fixtures.manifest);
  const parentOf = (at: Path) =>
    at
      .slice(0, -1)
      .reduce<Record<string | number, unknown>>((node, key) => node[key] as Record<string, unknown>, manifest);
  for (const [at, value] of testCase.set ?? []) parentOf(at)[at.at(-1)!] = value;
  for (const at of testCase.delete ?? []) delete parentOf(at)[at.at(-1)!];
  return manifest;
}

// Ajv reports array indices as text.
const startsWith = (at: Path, prefix: Path) => prefix.every((part, i) => String(at[i]) === String(part));

describe("manifest.schema.json and the zod schema", () => {
  it.each(fixtures.cases)("agree on $name", (testCase) => {
    const manifest = edited(testCase);
    const fromJsonSchema = jsonSchemaProblems(manifest);
    const fromZod = zodProblems(manifest);
    if (testCase.valid) {
      expect(fromJsonSchema).toEqual([]);
      expect(fromZod).toEqual([]);
    } else {
      expect(
        fromJsonSchema.some((at) => startsWith(at, testCase.path!)),
        JSON.stringify(fromJsonSchema),
      ).toBe(true);
      expect(
        fromZod.some((at) => startsWith(at, testCase.path!)),
        JSON.stringify(fromZod),
      ).toBe(true);
    }
  });

  it("names the path of the problem in parseManifest's message", () => {
    const broken = edited({
      name: "",
      set: [
        [
          ["onnx", "outputs", "probabilities", "shape"],
          ["N", 2.5],
        ],
      ],
      valid: false,
    });
    expect(() => parseManifest(JSON.stringify(broken))).toThrow(
      /manifest\.json is invalid: onnx\.outputs\.probabilities\.shape\.1: /,
    );
    const missing = edited({ name: "", delete: [["created_at"]], valid: false });
    expect(() => parseManifest(JSON.stringify(missing))).toThrow(/manifest\.json is invalid: created_at: /);
  });

  it("validates every model version under .stack/models", () => {
    const modelsDir = path.join(root, ".stack/models");
    const manifests = readdirManifests(modelsDir);
    // The local stack trains and exports its versions on start; without them this proves nothing.
    expect(manifests.length).toBeGreaterThan(0);
    for (const file of manifests) {
      const manifest: unknown = JSON.parse(readFileSync(file, "utf8"));
      expect(jsonSchemaProblems(manifest), file).toEqual([]);
      expect(zodProblems(manifest), file).toEqual([]);
    }
  });

  it("has the families and the embedding task that manifest.ts exports", () => {
    expect(schema.properties.family.enum).toEqual([...FAMILIES]);
    expect(schema.if.properties.task.const).toBe(EMBEDDING_TASK);
    expect(schema.properties.schema_version.const).toBe(manifestSchema.parse(fixtures.manifest).schema_version);
  });
});

function readdirManifests(modelsDir: string): string[] {
  let models: string[];
  try {
    models = readdirSync(modelsDir);
  } catch {
    return [];
  }
  return models.flatMap((model) =>
    readdirSync(path.join(modelsDir, model))
      .filter((version) => !version.startsWith("."))
      .map((version) => path.join(modelsDir, model, version, "manifest.json"))
      .filter((file) => existsSync(file)),
  );
}
