/**
 * How the runtime tells a bad record from a bad moment. A record error sends the input to the
 * DLQ at once; a transient error is retried with backoff, then DLQ'd; anything else is treated
 * as transient, because dropping a record on an unknown failure would lose it.
 */

/** The input can never be processed as it is: it goes to the DLQ without retries. */
export class RecordError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bytes that are not a Confluent-framed Avro record, or that Avro cannot read. */
export class PoisonRecordError extends RecordError {}

/** The record names a schema id the registry does not know. */
export class UnknownSchemaError extends RecordError {}

/** The writer's schema cannot be read as the topic's contract. */
export class SchemaMismatchError extends RecordError {}

/** Larger than SWITCHBOARD_MAX_RECORD_BYTES. */
export class OversizedRecordError extends RecordError {}

/** A processor refused the input (e.g. an empty body). Processors throw this for invalid input. */
export class InvalidInputError extends RecordError {}

/** An output the processor produced does not fit the output topic's schema (a processor bug). */
export class InvalidOutputError extends RecordError {}

/** Worth retrying: a timeout, an unavailable dependency. */
export class TransientError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Socket errors of a service that is not there (stopped, restarting, unreachable). */
const UNAVAILABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "EAI_AGAIN"]);
/** The Elasticsearch client's errors for a cluster it cannot reach. */
const UNAVAILABLE_NAMES = new Set(["ConnectionError", "NoLivingConnectionsError", "TimeoutError"]);
/** PostgreSQL's SQLSTATEs of a server going away or not taking connections yet (class 08, 57P01–57P03). */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123])$/;

/**
 * A failure of a service the processor depends on, not of the record: the same record would
 * succeed once the service is back. The runtime retries such a record without spending its
 * attempts (back-pressure: lag grows while the service is away) instead of sending it to the
 * DLQ. Looks through `cause`, as processors wrap client errors with context.
 */
export function isUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const { code, meta } = e as { code?: unknown; meta?: { statusCode?: number } };
    if (e instanceof DependencyUnavailableError || UNAVAILABLE_NAMES.has(e.name)) return true;
    if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) return true;
    if (meta?.statusCode === 503 || meta?.statusCode === 429) return true;
    if (/Connection terminated|connect ECONNREFUSED|Stream isn't writeable/.test(e.message)) return true;
  }
  return false;
}

/** A service the processor needs is away (see isUnavailable); processors throw it where no client error says so. */
export class DependencyUnavailableError extends TransientError {}

export const isRecordError = (error: unknown): error is RecordError => error instanceof RecordError;

export function errorClass(error: unknown): string {
  return error instanceof Error ? error.name || error.constructor.name : typeof error;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
