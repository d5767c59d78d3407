import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { schemaRegistryOptions, type ClientSecurity } from "../config/security.js";
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

/** Where the registry is, and its TLS and credentials: the endpoints' `schemaRegistryUrl` and `security`. */
export interface RegistryEndpoint {
  readonly schemaRegistryUrl: string;
  readonly security: ClientSecurity;
}

/**
 * One REST call, with the same TLS agent and basic auth as the registry client
 * (`schemaRegistryOptions`): node's own https, since fetch takes no CA. Errors name the URL
 * without its credentials.
 */
async function call<T>(registry: RegistryEndpoint, method: string, path: string, body?: unknown): Promise<T> {
  const { host, auth, agent } = schemaRegistryOptions(registry);
  const url = `${host}${path}`;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": CONTENT_TYPE, accept: CONTENT_TYPE };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
  let status: number;
  let text: string;
  try {
    ({ status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const send = url.startsWith("https:") ? httpsRequest : httpRequest;
      const req = send(url, { method, headers, ...(agent ? { agent } : {}), timeout: 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error("no answer in 30 s")));
      req.on("error", reject);
      req.end(payload);
    }));
  } catch (error) {
    throw new Error(`schema registry unreachable at ${url}: ${(error as Error).message}`, { cause: error });
  }
  if (status < 200 || status >= 300) throw new RegistryError(status, url, text);
  return (text ? JSON.parse(text) : {}) as T;
}

export interface SchemaTarget {
  /** Kafka topic; the subject is `<topic>-value`. */
  readonly topic: string;
  readonly schema: AvroSchema;
}

export const targetFor = (topic: string, schemaFile: string): SchemaTarget => ({ topic, schema: topicValueSchema(schemaFile) });

/** Sets BACKWARD compatibility on the subject, then registers the schema (a no-op when already registered). */
export async function registerSchema(registry: RegistryEndpoint, target: SchemaTarget): Promise<{ subject: string; id: number }> {
  const subject = subjectOf(target.topic);
  const encoded = encodeURIComponent(subject);
  await call(registry, "PUT", `/config/${encoded}`, { compatibility: "BACKWARD" });
  const { id } = await call<{ id: number }>(registry, "POST", `/subjects/${encoded}/versions`, {
    schema: JSON.stringify(target.schema),
  });
  return { subject, id };
}

export type CompatibilityVerdict =
  | { readonly subject: string; readonly status: "compatible" }
  | { readonly subject: string; readonly status: "new" }
  | { readonly subject: string; readonly status: "incompatible"; readonly messages: readonly string[] };

/** Asks the registry whether the working-tree schema can replace the subject's latest version. */
export async function checkCompatibility(registry: RegistryEndpoint, target: SchemaTarget): Promise<CompatibilityVerdict> {
  const subject = subjectOf(target.topic);
  try {
    const verdict = await call<{ is_compatible: boolean; messages?: string[] }>(
      registry,
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
