import { readFileSync } from "node:fs";
import avro from "avsc";
import { describe, expect, it } from "vitest";
import { schemaTopics, topicValueSchema } from "../../schemas/catalog.js";
import { GENERATED_FILE, generateTypes } from "../../schemas/generate.js";
import { TOPOLOGIES, allTopics } from "../../streams/topology.js";

describe("schemas", () => {
  it("each topic schema is a valid, self-contained Avro schema", () => {
    for (const topic of schemaTopics()) {
      expect(() => avro.Type.forSchema(topicValueSchema(topic) as avro.Schema), topic).not.toThrow();
    }
  });

  it("generated TypeScript types are up to date (run npm run schemas:generate)", () => {
    expect(readFileSync(GENERATED_FILE, "utf8")).toBe(generateTypes());
  });

  it("every declared topic's schema exists, and every schema belongs to a declared topic", () => {
    const declared = TOPOLOGIES.flatMap((t) => allTopics(t)).map((t) => t.valueSchema);
    for (const schema of declared.filter((s) => s !== "raw")) expect(schemaTopics()).toContain(schema);
    for (const schema of schemaTopics()) expect(declared).toContain(schema);
  });

  it("shared types are inlined once and referenced by name afterwards", () => {
    const text = JSON.stringify(topicValueSchema("inquiries.routed"));
    expect(text.match(/"name":"InquiryEnvelope"/g)).toHaveLength(1);
    expect(text.match(/"name":"Entity"/g)).toHaveLength(1);
  });
});
