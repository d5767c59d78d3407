import { subjectOf, topicValueSchema, type AvroSchema } from "./catalog.js";

/**
 * The schema-registry calls the CLI needs, over the Confluent REST API (which the client library
 * does not cover for compatibility checks and subject configuration).
 */

const CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    detail: string,
  ) {
    super(`schema registry ${url} answered ${status}: ${detail}`);
    this.name = "RegistryError";
  }
}

async function call<T>(baseUrl: string, method: string, path: string, body?: unknown): Promise<T> {
  const url = `${baseUrl.replace(/\/$/, "")}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { "content-type": CONTENT_TYPE, accept: CONTENT_TYPE },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new Error(`schema registry unreachable at ${url}: ${(error as Error).message}`, { cause: error });
  }
  const text = await response.text();
  if (!response.ok) throw new RegistryError(response.status, url, text);
  return (text ? JSON.parse(text) : {}) as T;
}

export interface SchemaTarget {
  /** Kafka topic; the subject is `<topic>-value`. */
  readonly topic: string;
  readonly schema: AvroSchema;
}

export const targetFor = (topic: string, schemaFile: string): SchemaTarget => ({ topic, schema: topicValueSchema(schemaFile) });

/** Sets BACKWARD compatibility on the subject, then registers the schema (a no-op when already registered). */
export async function registerSchema(baseUrl: string, target: SchemaTarget): Promise<{ subject: string; id: number }> {
  const subject = subjectOf(target.topic);
  const encoded = encodeURIComponent(subject);
  await call(baseUrl, "PUT", `/config/${encoded}`, { compatibility: "BACKWARD" });
  const { id } = await call<{ id: number }>(baseUrl, "POST", `/subjects/${encoded}/versions`, {
    schema: JSON.stringify(target.schema),
  });
  return { subject, id };
}

export type CompatibilityVerdict =
  | { readonly subject: string; readonly status: "compatible" }
  | { readonly subject: string; readonly status: "new" }
  | { readonly subject: string; readonly status: "incompatible"; readonly messages: readonly string[] };

/** Asks the registry whether the working-tree schema can replace the subject's latest version. */
export async function checkCompatibility(baseUrl: string, target: SchemaTarget): Promise<CompatibilityVerdict> {
  const subject = subjectOf(target.topic);
  try {
    const verdict = await call<{ is_compatible: boolean; messages?: string[] }>(
      baseUrl,
      "POST",
      `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest?verbose=true`,
      { schema: JSON.stringify(target.schema) },
    );
    return verdict.is_compatible
      ? { subject, status: "compatible" }
      : { subject, status: "incompatible", messages: verdict.messages ?? [] };
  } catch (error) {
    if (error instanceof RegistryError && error.status === 404) return { subject, status: "new" };
    throw error;
  }
}
