import type { AvroSchema } from "./catalog.js";

/**
 * JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) of an Avro contract, so that an HTTP
 * API validates and documents the same shapes the topics carry without typing them again.
 *
 * records → objects without extra properties (a field with a default is optional); a union with
 * null → nullable; enums → string enums; maps → objects of their values; arrays → arrays;
 * int → 32-bit integers; timestamp-millis → RFC 3339 strings or integers, as the caller speaks.
 * A named type referenced again after its definition is expanded again: JSON Schema has no
 * Avro rule that a name is defined once.
 */
export type JsonSchema = { readonly [keyword: string]: unknown };

export interface JsonSchemaOptions {
  /** How `timestamp-millis` appears: an RFC 3339 date-time string (what people read) or the epoch-millis integer Avro holds. */
  readonly timestamps?: "date-time" | "integer";
}

const INT32 = { minimum: -(2 ** 31), maximum: 2 ** 31 - 1 } as const;

const PRIMITIVES: Readonly<Record<string, JsonSchema>> = {
  null: { type: "null" },
  boolean: { type: "boolean" },
  int: { type: "integer", ...INT32 },
  long: { type: "integer" },
  float: { type: "number" },
  double: { type: "number" },
  string: { type: "string" },
  bytes: { type: "string", contentEncoding: "base64" },
};

type AvroObject = { readonly [key: string]: unknown };

export function avroToJsonSchema(schema: AvroSchema, options: JsonSchemaOptions = {}): JsonSchema {
  const timestamps = options.timestamps ?? "date-time";
  const named = new Map<string, AvroObject>();

  const fullName = (name: string, namespace: string | undefined) =>
    name.includes(".") || !namespace ? name : `${namespace}.${name}`;

  const convert = (avro: AvroSchema, namespace: string | undefined, expanding: ReadonlySet<string>): JsonSchema => {
    if (typeof avro === "string") {
      const primitive = PRIMITIVES[avro];
      if (primitive) return primitive;
      const name = named.has(avro) ? avro : fullName(avro, namespace);
      const definition = named.get(name);
      if (!definition) throw new Error(`Avro type ${avro} is referenced before it is defined`);
      if (expanding.has(name)) throw new Error(`Avro type ${name} is recursive, which a JSON Schema without $ref cannot expand`);
      return convert(definition, namespace, expanding);
    }
    if (Array.isArray(avro)) return union(avro, namespace, expanding);
    const type = avro.type as AvroSchema;
    const description = typeof avro.doc === "string" ? { description: avro.doc } : {};
    if (avro.logicalType === "timestamp-millis" && type === "long") {
      return timestamps === "date-time" ? { type: "string", format: "date-time", ...description } : { type: "integer", ...description };
    }
    switch (type) {
      case "record": {
        const name = fullName(avro.name as string, avro.namespace as string | undefined);
        named.set(name, avro);
        const inner = new Set([...expanding, name]);
        const ownNamespace = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : namespace;
        const fields = avro.fields as readonly AvroObject[];
        const properties = Object.fromEntries(
          fields.map((field) => {
            const converted = convert(field.type as AvroSchema, ownNamespace, inner);
            const doc = typeof field.doc === "string" ? { description: field.doc } : {};
            const fallback = "default" in field ? { default: field.default } : {};
            return [field.name as string, { ...converted, ...doc, ...fallback }];
          }),
        );
        const required = fields.filter((field) => !("default" in field)).map((field) => field.name as string);
        return { type: "object", title: avro.name, ...description, properties, required, additionalProperties: false };
      }
      case "enum":
        named.set(fullName(avro.name as string, avro.namespace as string | undefined), avro);
        return { type: "string", title: avro.name, ...description, enum: avro.symbols };
      case "fixed":
        named.set(fullName(avro.name as string, avro.namespace as string | undefined), avro);
        return { type: "string", contentEncoding: "base64", ...description };
      case "array":
        return { type: "array", items: convert(avro.items as AvroSchema, namespace, expanding), ...description };
      case "map":
        return { type: "object", additionalProperties: convert(avro.values as AvroSchema, namespace, expanding), ...description };
      default:
        return { ...convert(type, namespace, expanding), ...description };
    }
  };

  const union = (branches: readonly AvroSchema[], namespace: string | undefined, expanding: ReadonlySet<string>): JsonSchema => {
    const nullable = branches.includes("null");
    const others = branches.filter((branch) => branch !== "null").map((branch) => convert(branch, namespace, expanding));
    if (others.length === 0) return { type: "null" };
    if (others.length > 1) return { anyOf: nullable ? [...others, { type: "null" }] : others };
    return nullable ? orNull(others[0]!) : others[0]!;
  };

  return convert(schema, undefined, new Set());
}

/** A schema that also admits null: a plain typed one takes null into its type list, an enum or object gets null as an alternative. */
export function orNull(schema: JsonSchema): JsonSchema {
  if (Array.isArray(schema.type) && schema.type.includes("null")) return schema;
  if (typeof schema.type === "string" && schema.enum === undefined && schema.type !== "object") {
    return { ...schema, type: [schema.type, "null"] };
  }
  return { anyOf: [schema, { type: "null" }] };
}

/** The schema of a property of an object schema (a path of nested properties); throws naming the path when a contract lacks it. */
export function propertyOf(schema: JsonSchema, ...path: readonly string[]): JsonSchema {
  let current = schema;
  for (const [i, name] of path.entries()) {
    const properties = current.properties as Readonly<Record<string, JsonSchema>> | undefined;
    const next = properties?.[name];
    if (!next) throw new Error(`the contract has no property ${path.slice(0, i + 1).join(".")}`);
    current = next;
  }
  return current;
}

/** Some properties of an object schema, by name: a projection of a contract. */
export function pick(schema: JsonSchema, names: readonly string[]): Record<string, JsonSchema> {
  return Object.fromEntries(names.map((name) => [name, propertyOf(schema, name)]));
}
