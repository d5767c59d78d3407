import { InvalidInputError } from "../streams/errors.js";

/**
 * Checks shared by the sinks, run in `process`: a record a store would refuse must be refused
 * there, on its own (DLQ), because `flush` writes a whole batch and can only fail all of it.
 */

const EARLIEST = Date.parse("0001-01-01T00:00:00.000Z");
const LATEST = Date.parse("9999-12-31T23:59:59.999Z");

/**
 * A record's time as an ISO 8601 string. Years 1 to 9999 only: beyond them JavaScript writes a
 * six-digit signed year, which neither PostgreSQL nor Elasticsearch parses.
 */
export function storedTime(epochMillis: number, field: string): string {
  if (!(epochMillis >= EARLIEST && epochMillis <= LATEST)) {
    throw new InvalidInputError(`${field}: ${epochMillis} is not a time between the years 1 and 9999`);
  }
  return new Date(epochMillis).toISOString();
}

export const utf8Bytes = (text: string): number => Buffer.byteLength(text, "utf8");
