import avro from "avsc";
import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { topicValueSchema, subjectOf } from "../schemas/catalog.js";
import type { TopicDeclaration } from "./topology.js";
import {
  InvalidOutputError,
  PoisonRecordError,
  SchemaMismatchError,
  TransientError,
  UnknownSchemaError,
  errorMessage,
} from "./errors.js";

/** Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary. */
const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

export interface TopicCodec {
  decode(topic: string, bytes: Buffer | null): Promise<unknown>;
  encode(topic: string, value: unknown): Buffer;
  /** Decodes what `encode` wrote for `topic` (its own writer schema: no lookup, no resolution). */
  decodeOwn(topic: string, bytes: Buffer): unknown;
}

/**
 * Avro (de)serialization against the schema registry. Every topic is read with its own contract
 * (`schemas/<valueSchema>.avsc`) as the reader schema, so a record written with a compatible
 * older schema is resolved, and one written with an incompatible schema is rejected.
 * Writer schemas and resolvers are cached per schema id: the hot path does no I/O.
 */
export async function createTopicCodec(registry: SchemaRegistry, topics: readonly TopicDeclaration[]): Promise<TopicCodec> {
  const readers = new Map<string, { type: avro.Type; schemaId: number }>();
  for (const topic of topics) {
    if (topic.valueSchema === "raw") continue;
    const schema = topicValueSchema(topic.valueSchema);
    const type = avro.Type.forSchema(schema as avro.Schema);
    let schemaId: number;
    try {
      schemaId = await registry.getRegistryIdBySchema(subjectOf(topic.name), {
        type: "AVRO" as never,
        schema: JSON.stringify(schema),
      });
    } catch (error) {
      throw new Error(
        `schema of topic ${topic.name} is not registered under ${subjectOf(topic.name)} (run \`switchboard schemas register\`): ${errorMessage(error)}`,
        { cause: error },
      );
    }
    readers.set(topic.name, { type, schemaId });
  }

  const writers = new Map<number, Promise<avro.Type>>();
  const resolvers = new Map<string, avro.Resolver | "same">();

  const writerType = (id: number): Promise<avro.Type> => {
    let pending = writers.get(id);
    if (!pending) {
      pending = registry.getSchema(id).then(
        // The client returns an avsc Type for Avro subjects; re-reading its schema keeps one avsc copy in play.
        (schema) => avro.Type.forSchema((schema as unknown as avro.Type).schema()),
        (error: { status?: number }) => {
          writers.delete(id);
          if (error.status === 404) throw new UnknownSchemaError(`schema id ${id} is not in the registry`, { cause: error });
          throw new TransientError(`schema registry lookup of id ${id} failed: ${errorMessage(error)}`, { cause: error });
        },
      );
      writers.set(id, pending);
    }
    return pending;
  };

  const reader = (topic: string) => {
    const found = readers.get(topic);
    if (!found) throw new Error(`topic ${topic} has no Avro schema in the topology`);
    return found;
  };

  return {
    async decode(topic, bytes) {
      const { type } = reader(topic);
      if (!bytes || bytes.length < HEADER_BYTES || bytes[0] !== MAGIC_BYTE) {
        throw new PoisonRecordError(
          bytes ? `not a schema-registry framed record (${bytes.length} bytes, first byte ${bytes[0] ?? "none"})` : "null value",
        );
      }
      const schemaId = bytes.readInt32BE(1);
      const writer = await writerType(schemaId);
      const cacheKey = `${topic}:${schemaId}`;
      let resolver = resolvers.get(cacheKey);
      if (!resolver) {
        try {
          resolver = writer.equals(type) ? "same" : type.createResolver(writer);
        } catch (error) {
          throw new SchemaMismatchError(
            `writer schema id ${schemaId} (${writer.name ?? writer.typeName}) cannot be read as ${topic}'s contract: ${errorMessage(error)}`,
          );
        }
        resolvers.set(cacheKey, resolver);
      }
      try {
        const payload = bytes.subarray(HEADER_BYTES);
        return resolver === "same" ? type.fromBuffer(payload) : type.fromBuffer(payload, resolver);
      } catch (error) {
        throw new PoisonRecordError(`Avro payload unreadable with schema id ${schemaId}: ${errorMessage(error)}`);
      }
    },

    decodeOwn(topic, bytes) {
      return reader(topic).type.fromBuffer(bytes.subarray(HEADER_BYTES));
    },

    encode(topic, value) {
      const { type, schemaId } = reader(topic);
      const paths: string[] = [];
      if (!type.isValid(value, { errorHook: (path) => paths.push(path.join(".") || "(root)") })) {
        throw new InvalidOutputError(`output for ${topic} does not match its schema at: ${paths.join(", ")}`);
      }
      const header = Buffer.alloc(HEADER_BYTES);
      header.writeUInt8(MAGIC_BYTE, 0);
      header.writeInt32BE(schemaId, 1);
      return Buffer.concat([header, type.toBuffer(value)]);
    },
  };
}
