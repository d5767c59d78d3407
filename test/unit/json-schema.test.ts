import { describe, expect, it } from "vitest";
import { schemaTopics, topicValueSchema } from "../../schemas/catalog.js";
import { avroToJsonSchema, orNull, pick, propertyOf } from "../../schemas/json-schema.js";

describe("Avro contracts as JSON Schema", () => {
  it("records are closed objects whose fields without a default are required; nullable unions, enums, maps, arrays, int32", () => {
    const schema = avroToJsonSchema({
      type: "record",
      name: "R",
      namespace: "t",
      fields: [
        { name: "id", type: "string", doc: "the id" },
        { name: "note", type: ["null", "string"], default: null },
        { name: "kind", type: { type: "enum", name: "Kind", symbols: ["a", "b"] } },
        { name: "maybeKind", type: ["null", "Kind"], default: null },
        { name: "tags", type: { type: "map", values: "double" }, default: {} },
        { name: "items", type: { type: "array", items: "long" } },
        { name: "n", type: "int" },
        { name: "at", type: { type: "long", logicalType: "timestamp-millis" } },
      ],
    });
    expect(schema).toMatchObject({ type: "object", title: "R", required: ["id", "kind", "items", "n", "at"], additionalProperties: false });
    expect(propertyOf(schema, "id")).toEqual({ type: "string", description: "the id" });
    expect(propertyOf(schema, "note")).toEqual({ type: ["string", "null"], default: null });
    expect(propertyOf(schema, "kind")).toEqual({ type: "string", title: "Kind", enum: ["a", "b"] });
    // A later reference to a named type expands it again, nullable as an alternative.
    expect(propertyOf(schema, "maybeKind")).toEqual({ anyOf: [{ type: "string", title: "Kind", enum: ["a", "b"] }, { type: "null" }], default: null });
    expect(propertyOf(schema, "tags")).toEqual({ type: "object", additionalProperties: { type: "number" }, default: {} });
    expect(propertyOf(schema, "items")).toEqual({ type: "array", items: { type: "integer" } });
    expect(propertyOf(schema, "n")).toEqual({ type: "integer", minimum: -(2 ** 31), maximum: 2 ** 31 - 1 });
    expect(propertyOf(schema, "at")).toEqual({ type: "string", format: "date-time" });
    expect(propertyOf(avroToJsonSchema({ type: "record", name: "T", fields: [{ name: "at", type: { type: "long", logicalType: "timestamp-millis" } }] }, { timestamps: "integer" }), "at")).toEqual({ type: "integer" });
  });

  it("refuses what it cannot express: a recursive type, an unknown name; names a missing property", () => {
    const recursive = { type: "record", name: "Node", fields: [{ name: "next", type: ["null", "Node"] }] };
    expect(() => avroToJsonSchema(recursive)).toThrow(/recursive/);
    expect(() => avroToJsonSchema({ type: "record", name: "X", fields: [{ name: "y", type: "Missing" }] })).toThrow(/Missing/);
    expect(() => pick(avroToJsonSchema(topicValueSchema("inquiries.received")), ["nope"])).toThrow(/no property nope/);
    expect(orNull({ type: ["string", "null"] })).toEqual({ type: ["string", "null"] });
  });

  it("converts every topic's contract, the shared types inlined", () => {
    for (const topic of schemaTopics()) expect(avroToJsonSchema(topicValueSchema(topic)).type, topic).toBe("object");
    const received = avroToJsonSchema(topicValueSchema("inquiries.received"));
    expect(propertyOf(received, "envelope", "channel")).toMatchObject({ enum: ["email", "ticket", "api", "chat"] });
  });
});
