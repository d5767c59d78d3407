/**
 * Refusals the API answers with a status and a machine-readable `error` code; the error handler
 * (http.ts) turns each into a response `{error, message, field?, reason?}`, with its headers,
 * and counts it in `switchboard_connector_rejected_total` under its code.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { readonly field?: string; readonly reason?: string; readonly headers?: Readonly<Record<string, string>> } = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** How long a client should wait before retrying while a service is down: about the time a reconnect takes. */
export const UNAVAILABLE_RETRY_AFTER_S = 5;

/** A service the request needs is unreachable: 503 with Retry-After. */
export class UnavailableError extends ApiError {
  constructor(service: "kafka" | "redis" | "postgres" | "elasticsearch", cause: unknown) {
    super(503, `unavailable_${service}`, `${service} is unavailable; retry later (with the same Idempotency-Key, so that a retry cannot make a second inquiry)`, {
      headers: { "retry-after": String(UNAVAILABLE_RETRY_AFTER_S) },
    });
    this.cause = cause;
  }
}

/** Runs a call to a service and turns any failure of it into an UnavailableError for that service. */
export async function calling<T>(service: ConstructorParameters<typeof UnavailableError>[0], call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new UnavailableError(service, error);
  }
}
