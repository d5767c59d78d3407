import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The Avro contracts. Each topic's value schema is `schemas/<topic>.avsc`; named types shared by
 * several topics live once in `schemas/common/` and are inlined where first used, so what the
 * registry stores is a self-contained schema (no registry references needed).
 */
export const SCHEMAS_DIR = path.dirname(fileURLToPath(import.meta.url));

export type AvroSchema = string | AvroSchema[] | { readonly [key: string]: unknown };

interface NamedSchema {
  readonly type: string;
  readonly name: string;
  readonly namespace?: string;
  readonly [key: string]: unknown;
}

export class SchemaError extends Error {
  constructor(file: string, reason: string) {
    super(`${path.relative(process.cwd(), file) || file}: ${reason}`);
    this.name = "SchemaError";
  }
}

function readJson(file: string): AvroSchema {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as AvroSchema;
  } catch (error) {
    throw new SchemaError(file, `not valid JSON (${(error as Error).message})`);
  }
}

function fullName(schema: NamedSchema): string {
  return schema.name.includes(".") || !schema.namespace ? schema.name : `${schema.namespace}.${schema.name}`;
}

/** Shared named types by full name, e.g. `switchboard.inquiry.InquiryEnvelope`. */
export function loadCommonTypes(dir = SCHEMAS_DIR): Map<string, NamedSchema> {
  const common = new Map<string, NamedSchema>();
  const commonDir = path.join(dir, "common");
  for (const file of readdirSync(commonDir).filter((f) => f.endsWith(".avsc")).sort()) {
    const schema = readJson(path.join(commonDir, file)) as NamedSchema;
    if (typeof schema !== "object" || !schema.name) throw new SchemaError(file, "a common type must be a named type");
    common.set(fullName(schema), schema);
  }
  return common;
}

/**
 * Replaces the first reference to each shared type with its definition (depth first, the order
 * Avro reads a schema in); later references stay names, as Avro requires.
 */
function inline(schema: AvroSchema, common: Map<string, NamedSchema>, defined: Set<string>): AvroSchema {
  if (typeof schema === "string") {
    const shared = common.get(schema);
    if (!shared || defined.has(schema)) return schema;
    defined.add(schema);
    return inline(shared, common, defined);
  }
  if (Array.isArray(schema)) return schema.map((branch) => inline(branch, common, defined));
  const out: Record<string, unknown> = { ...schema };
  if (typeof schema.name === "string" && typeof schema.type === "string" && ["record", "enum", "fixed"].includes(schema.type)) {
    defined.add(fullName(schema as NamedSchema));
  }
  if (Array.isArray(schema.fields)) {
    out.fields = (schema.fields as Record<string, unknown>[]).map((field) => ({
      ...field,
      type: inline(field.type as AvroSchema, common, defined),
    }));
  }
  for (const key of ["items", "values"] as const) {
    if (schema[key] !== undefined) out[key] = inline(schema[key] as AvroSchema, common, defined);
  }
  if (typeof schema.type === "object") out.type = inline(schema.type as AvroSchema, common, defined);
  return out;
}

/** The self-contained value schema of a topic, as registered under `<topic>-value`. */
export function topicValueSchema(topic: string, dir = SCHEMAS_DIR): AvroSchema {
  const file = path.join(dir, `${topic}.avsc`);
  return inline(readJson(file), loadCommonTypes(dir), new Set());
}

/** Topics that have a value schema in the folder. */
export function schemaTopics(dir = SCHEMAS_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".avsc"))
    .map((f) => f.slice(0, -".avsc".length))
    .sort();
}

export const subjectOf = (topic: string) => `${topic}-value`;
