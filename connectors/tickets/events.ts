import { createHash } from "node:crypto";
import type { ContentType, Customer } from "../../schemas/types.generated.js";
import type { Desk } from "./signatures.js";

/**
 * What a help desk's webhook says, in Switchboard's terms: a customer's message (a new ticket or
 * a comment), a ticket update worth a label, or an event Switchboard has no use for.
 */
export type TicketEvent = TicketMessage | TicketUpdate | IgnoredEvent;

export interface TicketMessage {
  readonly kind: "message";
  readonly ticketId: string;
  /**
   * What makes the message one: `opening` for the ticket's first message (however the desk
   * reports it), else the comment's id. A redelivery names the same message, so it maps to the
   * same inquiry.
   */
  readonly messageId: string;
  readonly subject: string | null;
  readonly body: string;
  readonly contentType: ContentType;
  readonly customer: Customer;
  /** Ticket facts for routing and agents (no personal data): ids, priority, status, tags. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** A ticket field a label can come from: its group (department), type (category) or intent field. */
export type LabelField = "group" | "type" | "intent";

export interface LabelValue {
  readonly field: LabelField;
  /** The desk's own value: a group id or name, a ticket type, the intent field's value. */
  readonly value: string;
  /** agent: an agent's explicit change; outcome: the ticket's state when it was solved. */
  readonly source: "agent" | "outcome";
}

export interface TicketUpdate {
  readonly kind: "update";
  readonly ticketId: string;
  /** Stable across redeliveries of the same event: the desk's event id, or a digest of what it says. */
  readonly eventId: string;
  readonly values: readonly LabelValue[];
  /** When the desk says the change happened (ms since epoch): the labels' time, the same on every redelivery. */
  readonly occurredAt: number;
}

export interface IgnoredEvent {
  readonly kind: "ignored";
  /** Short and machine-readable, a metric label: agent_comment, unhandled_event, ... */
  readonly reason: string;
  readonly message: string;
}

export const ignored = (reason: string, message: string): IgnoredEvent => ({ kind: "ignored", reason, message });

/** A payload that is none of the desk's shapes: answered 422 with the fields it lacks. */
export class ShapeError extends Error {
  constructor(
    readonly desk: Desk,
    readonly problems: readonly string[],
  ) {
    super(`not a ${desk} ticket event: ${problems.join("; ")}`);
    this.name = "ShapeError";
  }
}

export type JsonObject = { readonly [key: string]: unknown };

export const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Reads fields of a decoded payload by dotted path, collecting every required field that is
 * missing or of the wrong type so one 422 names them all. Ids arrive as numbers or strings
 * depending on the desk and event; both read as text. Empty strings (an unset placeholder) are absent.
 */
export class FieldReader {
  private readonly problems: string[] = [];

  constructor(
    private readonly desk: Desk,
    private readonly root: JsonObject,
  ) {}

  private at(path: string): unknown {
    let node: unknown = this.root;
    for (const key of path.split(".")) node = isObject(node) ? node[key] : undefined;
    return node;
  }

  optionalText(path: string): string | undefined {
    const value = this.at(path);
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
    if (typeof value === "string" && value.trim() !== "") return value;
    return undefined;
  }

  text(path: string): string {
    const value = this.optionalText(path);
    if (value === undefined) this.problems.push(`${path}: a non-empty string or number is required`);
    return value ?? "";
  }

  optionalBoolean(path: string): boolean | undefined {
    const value = this.at(path);
    return typeof value === "boolean" ? value : undefined;
  }

  optionalObject(path: string): JsonObject | undefined {
    const value = this.at(path);
    return isObject(value) ? value : undefined;
  }

  object(path: string): JsonObject {
    const value = this.optionalObject(path);
    if (!value) this.problems.push(`${path}: an object is required`);
    return value ?? {};
  }

  optionalTextList(path: string): string[] {
    const value = this.at(path);
    if (Array.isArray(value)) return value.filter((item): item is string => typeof item === "string" && item.trim() !== "");
    if (typeof value === "string") return value.split(",").map((item) => item.trim()).filter(Boolean);
    return [];
  }

  /** A time as ISO 8601 text; undefined when absent or unreadable. */
  optionalTime(path: string): number | undefined {
    const value = this.optionalText(path);
    const ms = value === undefined ? Number.NaN : Date.parse(value);
    return Number.isFinite(ms) ? ms : undefined;
  }

  /** Records a field that is present but not acceptable. */
  refuse(path: string, problem: string): void {
    this.problems.push(`${path}: ${problem}`);
  }

  /** Throws a ShapeError naming every required field read so far that was missing. */
  check(): void {
    if (this.problems.length > 0) throw new ShapeError(this.desk, this.problems);
  }
}

/** Metadata without the fields a payload left out. */
export function metadataOf(fields: Readonly<Record<string, string | undefined>>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** A short stable digest: the identity of an event that carries no id of its own. */
export const digest = (...parts: readonly string[]) =>
  createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 16);

export const NO_CUSTOMER: Customer = { id: null, email: null, name: null, tier: null };
