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

export const isRecordError = (error: unknown): error is RecordError => error instanceof RecordError;

export function errorClass(error: unknown): string {
  return error instanceof Error ? error.name || error.constructor.name : typeof error;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
