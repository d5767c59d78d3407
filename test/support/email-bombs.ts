/**
 * Hostile and oversized messages, generated rather than committed: MIME nested `depth` levels,
 * `count` sibling parts, `count` header fields, an attachment of `bytes` bytes.
 */

const HEAD =
  "From: Mallory <mallory@example.net>\r\nTo: support@hearthandharbor.example\r\nSubject: see inside\r\nMIME-Version: 1.0\r\n";

export function deepNesting(depth: number, messageId = "<nest@example.net>"): Buffer {
  let body = "Content-Type: text/plain; charset=utf-8\r\n\r\nhello from the bottom\r\n";
  for (let level = depth; level > 0; level--) {
    body = `Content-Type: multipart/mixed; boundary="b${level}"\r\n\r\n--b${level}\r\n${body}--b${level}--\r\n`;
  }
  return Buffer.from(`${HEAD}Message-ID: ${messageId}\r\n${body}`);
}

export function manyParts(count: number, messageId = "<parts@example.net>"): Buffer {
  const parts = Array.from({ length: count }, (_, i) => `--p\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join(
    "",
  );
  return Buffer.from(
    `${HEAD}Message-ID: ${messageId}\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n${parts}--p--\r\n`,
  );
}

export function manyHeaders(count: number, valueLength = 8, messageId = "<headers@example.net>"): Buffer {
  const value = "x".repeat(valueLength);
  const fields = Array.from({ length: count }, (_, i) => `X-Filler-${i}: ${value}\r\n`).join("");
  return Buffer.from(
    `${HEAD}Message-ID: ${messageId}\r\n${fields}Content-Type: text/plain\r\n\r\nmy order is late\r\n`,
  );
}

/** A short note with one attachment of `bytes` pseudo-random bytes, base64-encoded (the message is a third larger). */
export function withAttachment(bytes: number, messageId = "<attachment@example.net>"): Buffer {
  const content = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) content[i] = (i * 2654435761) >>> 24;
  const base64 = content.toString("base64").replace(/.{76}/g, "$&\r\n");
  return Buffer.from(
    `${HEAD}Message-ID: ${messageId}\r\nContent-Type: multipart/mixed; boundary="a"\r\n\r\n` +
      `--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOur catalogue for the spring order is attached.\r\n` +
      `--a\r\nContent-Type: application/octet-stream; name="catalogue.bin"\r\nContent-Disposition: attachment; filename="catalogue.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64}\r\n--a--\r\n`,
  );
}
