import { isUtf8 } from "node:buffer";
import AjvCompiler from "@fastify/ajv-compiler";
import type { FastifyError, FastifyInstance } from "fastify";
import { errorMessage } from "../../streams/errors.js";
import type { ConnectorMetrics } from "../metrics.js";
import { ApiError, UnavailableError } from "./errors.js";
import { PRINTABLE } from "./schemas.js";

/**
 * How the API reads requests and refuses bad ones, for the routes registered in its scope:
 * JSON only, checked to be UTF-8 (Fastify's parser would quietly replace invalid bytes), within
 * a body limit; schemas validated without coercing a body's types or dropping its unknown fields
 * (either would accept what the client did not mean); each refusal a status with a reason.
 */

const compilers = AjvCompiler();
// A body is taken as sent: a number is not a string, an unknown field is an error.
const bodyValidator = compilers({}, { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false } });
// Query strings and path parameters are text: "2" is the integer 2, "true" the boolean.
const textValidator = compilers({}, { customOptions: { coerceTypes: "array", removeAdditional: false, useDefaults: true, allErrors: false } });

export function readJsonStrictly(app: FastifyInstance, bodyLimit: number): void {
  app.setValidatorCompiler((route) => (route.httpPart === "body" ? bodyValidator : textValidator)(route));
  // text/plain is among Fastify's defaults; anything but JSON is answered 415.
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit }, (request, body, done) => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers["content-type"] ?? "")?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
      done(new ApiError(415, "unsupported_charset", `JSON bodies are UTF-8; charset ${charset} is not accepted`), undefined);
      return;
    }
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(new ApiError(400, "invalid_utf8", "the body is not valid UTF-8 (binary data is not accepted)"), undefined);
      return;
    }
    parseJson(request, bytes.toString("utf8"), (error, value) => {
      const broken = error ? undefined : loneSurrogateAt(value, []);
      if (broken !== undefined) {
        const field = broken.length > 0 ? broken.join(".") : "$";
        const reason = "contains half a UTF-16 surrogate pair, which is not Unicode text";
        done(new ApiError(422, "validation_failed", `${field}: ${reason}`, { field, reason }), undefined);
      } else {
        done(error, value);
      }
    });
  });
}

// Outside a surrogate pair; the `u` flag makes a well-formed pair one code point, not two.
const LONE_SURROGATE = /\p{Cs}/u;

/** The path of the first string (value or key) holding half a surrogate pair, which a `\uD800` escape can put into valid JSON. */
function loneSurrogateAt(value: unknown, path: string[]): string[] | undefined {
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = loneSurrogateAt(item, [...path, String(i)]);
      if (found) return found;
    }
  } else if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key)) return [...path, key];
      const found = loneSurrogateAt(item, [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}

interface AjvIssue {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly message?: string;
}

/** The field an ajv issue is about (a dotted path; the header or parameter name) and why, in words. */
function fieldAndReason(context: string, issue: AjvIssue): { field: string; reason: string } {
  const path = issue.instancePath.split("/").slice(1).map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"));
  const child = issue.params.missingProperty ?? issue.params.additionalProperty ?? issue.params.propertyName;
  if (typeof child === "string") path.push(child);
  // "$" is the body itself (JSONPath's root), not a field of it called "body".
  const field = path.length > 0 ? path.join(".") : context === "body" ? "$" : context;
  const reason =
    issue.keyword === "required"
      ? "is required"
      : issue.keyword === "additionalProperties"
        ? "is not a field of this request"
        : issue.keyword === "pattern" && issue.params.pattern === PRINTABLE
          ? "contains control characters (binary data is not accepted)"
          : issue.keyword === "propertyNames"
            ? "is not an accepted name"
            : issue.keyword === "enum"
              ? `must be one of: ${(issue.params.allowedValues as unknown[]).join(", ")}`
              : (issue.message ?? issue.keyword);
  return { field, reason };
}

const FASTIFY_REFUSALS: Readonly<Record<string, { status: number; code: string; message: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: "too_large", message: "the body is larger than this API accepts" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: "unsupported_media_type", message: "send the body as application/json" },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: "malformed_json", message: "the body is not valid JSON" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: "malformed_json", message: "the body is empty; send a JSON object" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: "bad_content_length", message: "Content-Length does not match the body" },
};

/** The refusal to answer an error with. */
function refusalOf(error: FastifyError): ApiError {
  if (error instanceof ApiError) return error;
  if (error.validation) {
    const context = error.validationContext ?? "body";
    const { field, reason } = fieldAndReason(context, error.validation[0] as AjvIssue);
    const where = context === "body" ? "" : ` (${context === "querystring" ? "query parameter" : context === "params" ? "path parameter" : "header"})`;
    return new ApiError(422, "validation_failed", `${field}${where}: ${reason}`, { field, reason });
  }
  const known = error.code ? FASTIFY_REFUSALS[error.code] : undefined;
  if (known) return new ApiError(known.status, known.code, known.message);
  // Fastify's own other 4xx (e.g. a malformed header) keep their status; anything else is ours to fix.
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new ApiError(error.statusCode, "bad_request", error.message);
  }
  return new ApiError(500, "internal_error", "the request failed on our side; it was logged");
}

/** Answers every error in the API's scope as `{error, message, field?, reason?}` and counts the refusal by its code. */
export function answerErrors(app: FastifyInstance, connector: string, metrics: ConnectorMetrics): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const refusal = refusalOf(error);
    metrics.rejected.inc({ connector, reason: refusal.code });
    const route = request.routeOptions.url;
    if (error instanceof UnavailableError) {
      request.log.warn({ route, reason: refusal.code, err: errorMessage(error.cause) }, "a service is unavailable; request refused");
    } else if (refusal.status >= 500) {
      request.log.error({ route, err: error }, "request failed");
    }
    const { field, reason, headers = {} } = refusal.details;
    return reply
      .code(refusal.status)
      .headers(headers)
      .send({ error: refusal.code, message: refusal.message, ...(field === undefined ? {} : { field }), ...(reason === undefined ? {} : { reason }) });
  });
}
