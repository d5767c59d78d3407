import { createHmac, timingSafeEqual } from "node:crypto";

/** The help desks whose webhooks Switchboard takes, each on its own route. */
export const DESKS = ["zendesk", "freshdesk", "generic"] as const;
export type Desk = (typeof DESKS)[number];

/** The setting that holds each desk's signing secret. */
export const SECRET_SETTING = {
  zendesk: "zendeskWebhookSecret",
  freshdesk: "freshdeskWebhookSecret",
  generic: "genericWebhookSecret",
} as const satisfies Record<Desk, string>;

/** Why a request's signature is refused; each a metric reason and a 401. */
export const SIGNATURE_FAILURES = ["missing_signature", "bad_signature", "stale_timestamp"] as const;
export type SignatureFailure = (typeof SIGNATURE_FAILURES)[number];

export type Verification =
  | {
      readonly ok: true;
      readonly timestampMs: number;
      /** The signature's bytes: what the replay set remembers. */ readonly signature: Buffer;
    }
  | { readonly ok: false; readonly reason: SignatureFailure; readonly message: string };

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/**
 * A desk's signing scheme: which headers carry the timestamp and the signature, and which bytes
 * the HMAC-SHA256 covers.
 * - Zendesk (its own scheme): `X-Zendesk-Webhook-Signature` = base64(HMAC(timestamp + body)),
 *   the timestamp an ISO 8601 time in `X-Zendesk-Webhook-Signature-Timestamp`.
 * - Freshdesk (ours; Freshdesk itself signs nothing): `X-Freshdesk-Signature` =
 *   hex(HMAC(timestamp + "." + body)), the timestamp Unix seconds in `X-Freshdesk-Timestamp`.
 * - Generic (Stripe-style): `X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC of t + "." + body>`,
 *   several v1 entries allowed (one per secret while a sender rotates).
 */
interface Scheme {
  /** Header names, for messages. */
  readonly headers: string;
  read(headers: Headers): { readonly timestamp: string; readonly signatures: readonly string[] } | undefined;
  /** Milliseconds since the epoch, NaN when the header is not a time. */
  parseTime(timestamp: string): number;
  signed(timestamp: string, body: Buffer): Buffer;
  decode(signature: string): Buffer;
  encode(mac: Buffer): string;
  format(timestamp: string, signature: string): Record<string, string>;
}

const header = (headers: Headers, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};
const unixSeconds = (timestamp: string) => (/^\d{1,12}$/.test(timestamp) ? Number(timestamp) * 1000 : Number.NaN);
const dotted = (timestamp: string, body: Buffer) => Buffer.concat([Buffer.from(`${timestamp}.`), body]);
const HEX = /^[0-9a-f]+$/i;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const fromHex = (s: string) => (HEX.test(s) && s.length % 2 === 0 ? Buffer.from(s, "hex") : Buffer.alloc(0));
const fromBase64 = (s: string) => (BASE64.test(s) ? Buffer.from(s, "base64") : Buffer.alloc(0));

const SCHEMES: Readonly<Record<Desk, Scheme>> = {
  zendesk: {
    headers: "X-Zendesk-Webhook-Signature and X-Zendesk-Webhook-Signature-Timestamp",
    read(headers) {
      const timestamp = header(headers, "x-zendesk-webhook-signature-timestamp");
      const signature = header(headers, "x-zendesk-webhook-signature");
      return timestamp && signature ? { timestamp, signatures: [signature] } : undefined;
    },
    parseTime: (timestamp) => (/^\d{4}-\d\d-\d\dT/.test(timestamp) ? Date.parse(timestamp) : Number.NaN),
    signed: (timestamp, body) => Buffer.concat([Buffer.from(timestamp), body]),
    decode: fromBase64,
    encode: (mac) => mac.toString("base64"),
    format: (timestamp, signature) => ({
      "X-Zendesk-Webhook-Signature": signature,
      "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }),
  },
  freshdesk: {
    headers: "X-Freshdesk-Signature and X-Freshdesk-Timestamp",
    read(headers) {
      const timestamp = header(headers, "x-freshdesk-timestamp");
      const signature = header(headers, "x-freshdesk-signature");
      return timestamp && signature ? { timestamp, signatures: [signature] } : undefined;
    },
    parseTime: unixSeconds,
    signed: dotted,
    decode: fromHex,
    encode: (mac) => mac.toString("hex"),
    format: (timestamp, signature) => ({ "X-Freshdesk-Signature": signature, "X-Freshdesk-Timestamp": timestamp }),
  },
  generic: {
    headers: "X-Switchboard-Signature (t=<unix seconds>,v1=<hex>)",
    read(headers) {
      const value = header(headers, "x-switchboard-signature");
      if (!value) return undefined;
      const parts = value.split(",").map((part) => part.trim().split("="));
      const timestamp = parts.find(([key]) => key === "t")?.[1];
      const signatures = parts.filter(([key, v]) => key === "v1" && v).map(([, v]) => v!);
      return timestamp && signatures.length > 0 ? { timestamp, signatures } : undefined;
    },
    parseTime: unixSeconds,
    signed: dotted,
    decode: fromHex,
    encode: (mac) => mac.toString("hex"),
    format: (timestamp, signature) => ({ "X-Switchboard-Signature": `t=${timestamp},v1=${signature}` }),
  },
};

const hmac = (secret: string, bytes: Buffer) => createHmac("sha256", secret).update(bytes).digest();

/**
 * Checks a request's signature over its exact bytes, then its timestamp against the window.
 * The comparison takes the same time wherever the signatures differ (timingSafeEqual, on buffers
 * of the digest's length; a signature of another length is refused before any comparison).
 */
export function verifySignature(
  desk: Desk,
  secret: string,
  headers: Headers,
  body: Buffer,
  nowMs: number,
  toleranceMs: number,
): Verification {
  const scheme = SCHEMES[desk];
  const presented = scheme.read(headers);
  if (!presented)
    return { ok: false, reason: "missing_signature", message: `unsigned request: ${scheme.headers} required` };
  const expected = hmac(secret, scheme.signed(presented.timestamp, body));
  const match = presented.signatures
    .map((signature) => scheme.decode(signature))
    .find((candidate) => candidate.length === expected.length && timingSafeEqual(candidate, expected));
  if (!match)
    return { ok: false, reason: "bad_signature", message: `the signature does not match the body (${scheme.headers})` };
  const timestampMs = scheme.parseTime(presented.timestamp);
  if (!Number.isFinite(timestampMs))
    return { ok: false, reason: "bad_signature", message: `unreadable signature timestamp "${presented.timestamp}"` };
  if (Math.abs(nowMs - timestampMs) > toleranceMs) {
    return {
      ok: false,
      reason: "stale_timestamp",
      message: `signed at ${new Date(timestampMs).toISOString()}, more than ${toleranceMs / 1000} s from now`,
    };
  }
  return { ok: true, timestampMs, signature: match };
}

/** The headers that sign `body` for a desk at `nowMs`, as the desk (or its relay) sends them. */
export function signatureHeaders(desk: Desk, secret: string, body: Buffer, nowMs: number): Record<string, string> {
  const scheme = SCHEMES[desk];
  const timestamp =
    desk === "zendesk" ? new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, "Z") : String(Math.floor(nowMs / 1000));
  return scheme.format(timestamp, scheme.encode(hmac(secret, scheme.signed(timestamp, body))));
}
