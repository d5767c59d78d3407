/**
 * A single pass over a raw message that measures what a MIME bomb inflates — parts, nesting,
 * header fields, header bytes — and stops at the first limit exceeded, before the parser builds
 * anything. It reads boundaries and header fields only, never decodes a body. On the way it notes
 * the declared charset of the first text and HTML parts, which the parser does not report.
 */

export const MIME_LIMITS = {
  /** Parts of all kinds (multipart containers included); a long newsletter with images has a few dozen. */
  maxParts: 500,
  /** Containers within containers (multipart, attached messages); a chain of forwards as attachments adds two a forward. */
  maxDepth: 32,
  /** Header fields of one part or message; long Received/DKIM/ARC chains stay in the low hundreds. */
  maxHeaderFields: 1_000,
  /** Bytes of one header block. */
  maxHeaderBytes: 512 * 1024,
} as const;

export type MimeLimits = { readonly [K in keyof typeof MIME_LIMITS]: number };

export type StructureReason = "too_many_parts" | "too_deep" | "too_many_headers" | "header_too_large";

export interface MimeStructure {
  readonly parts: number;
  readonly depth: number;
  /** Declared charset of the first text/plain part that is not an attachment (`us-ascii` when none is declared). */
  readonly textCharset: string | undefined;
  readonly htmlCharset: string | undefined;
}

export type StructureVerdict =
  | { readonly ok: true; readonly structure: MimeStructure }
  | { readonly ok: false; readonly reason: StructureReason; readonly detail: string };

const LF = 10;
const CR = 13;
const DASH = 45;
const SPACE = 32;
const TAB = 9;

function parameter(value: string, name: string): string | undefined {
  const match = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, "i").exec(value);
  return match?.[1] ?? match?.[2];
}

export function scanStructure(raw: Buffer, limits: MimeLimits = MIME_LIMITS): StructureVerdict {
  const refuse = (reason: StructureReason, detail: string): StructureVerdict => ({ ok: false, reason, detail });
  /** Open multipart containers, innermost last, with the depth of the container part itself. */
  const open: { boundary: string; depth: number }[] = [];
  let inHeaders = true;
  let partDepth = 0;
  let parts = 1;
  let depth = 0;
  let fields = 0;
  let headerBytes = 0;
  // Only the two fields the scan needs are unfolded and kept; the others are counted.
  let field: "type" | "disposition" | undefined;
  let contentType = "";
  let disposition = "";
  let textCharset: string | undefined;
  let htmlCharset: string | undefined;

  const startPart = (atDepth: number) => {
    inHeaders = true;
    partDepth = atDepth;
    depth = Math.max(depth, atDepth);
    fields = 0;
    headerBytes = 0;
    field = undefined;
    contentType = "";
    disposition = "";
  };

  /** At the blank line after a header block: what the part's body is. */
  const endHeaders = (): StructureVerdict | undefined => {
    inHeaders = false;
    const type = /^\s*([^;\s]+)/.exec(contentType)?.[1]?.toLowerCase() ?? "text/plain";
    const boundary = type.startsWith("multipart/") ? parameter(contentType, "boundary") : undefined;
    if (boundary) {
      if (partDepth + 1 > limits.maxDepth)
        return refuse("too_deep", `MIME parts nested deeper than ${limits.maxDepth} levels`);
      open.push({ boundary, depth: partDepth });
      return undefined;
    }
    if (type === "message/rfc822" || type === "message/global") {
      // An attached message: its own header block starts right away.
      if (partDepth + 1 > limits.maxDepth)
        return refuse("too_deep", `MIME parts nested deeper than ${limits.maxDepth} levels`);
      startPart(partDepth + 1);
      return undefined;
    }
    if (/^\s*attachment/i.test(disposition)) return undefined;
    const charset = (parameter(contentType, "charset") ?? "us-ascii").toLowerCase();
    if (type === "text/plain") textCharset ??= charset;
    else if (type === "text/html") htmlCharset ??= charset;
    return undefined;
  };

  let start = 0;
  while (start < raw.length) {
    let end = raw.indexOf(LF, start);
    if (end === -1) end = raw.length;
    const lineEnd = end > start && raw[end - 1] === CR ? end - 1 : end;
    if (inHeaders) {
      headerBytes += end - start + 1;
      if (headerBytes > limits.maxHeaderBytes)
        return refuse("header_too_large", `a header block is larger than ${limits.maxHeaderBytes} bytes`);
      const first = raw[start];
      if (lineEnd === start) {
        const verdict = endHeaders();
        if (verdict) return verdict;
      } else if (first === SPACE || first === TAB) {
        if (field === "type") contentType += raw.toString("latin1", start, lineEnd);
        else if (field === "disposition") disposition += raw.toString("latin1", start, lineEnd);
      } else {
        fields += 1;
        if (fields > limits.maxHeaderFields)
          return refuse("too_many_headers", `a part has more than ${limits.maxHeaderFields} header fields`);
        const line = raw.toString("latin1", start, Math.min(lineEnd, start + 4096));
        const colon = line.indexOf(":");
        const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : "";
        field = name === "content-type" ? "type" : name === "content-disposition" ? "disposition" : undefined;
        if (field === "type") contentType = line.slice(colon + 1);
        else if (field === "disposition") disposition = line.slice(colon + 1);
      }
    } else if (open.length > 0 && raw[start] === DASH && raw[start + 1] === DASH) {
      const line = raw.toString("latin1", start + 2, lineEnd).trimEnd();
      for (let i = open.length - 1; i >= 0; i--) {
        const { boundary, depth: containerDepth } = open[i]!;
        if (line !== boundary && line !== `${boundary}--`) continue;
        // A boundary of an outer container also ends every container opened inside it.
        open.length = i + 1;
        if (line === boundary) {
          parts += 1;
          if (parts > limits.maxParts) return refuse("too_many_parts", `more than ${limits.maxParts} MIME parts`);
          startPart(containerDepth + 1);
        } else {
          open.pop();
        }
        break;
      }
    }
    start = end + 1;
  }
  return { ok: true, structure: { parts, depth, textCharset, htmlCharset } };
}
