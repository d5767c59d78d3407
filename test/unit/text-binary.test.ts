import { describe, expect, it } from "vitest";
import { looksLikeBinary } from "../../text/binary.js";

/** Bytes as a connector turns them into a string: UTF-8 decoding with replacement characters. */
const decode = (bytes: Uint8Array): string => new TextDecoder("utf-8").decode(bytes);

/** Deterministic pseudo-random bytes (a PDF or JPEG attachment pasted as the body). */
function noise(length: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    bytes[i] = state >> 16;
  }
  return bytes;
}

describe("binary detection", () => {
  it("flags random bytes, a PNG header with data and NUL-padded buffers", () => {
    expect(looksLikeBinary(decode(noise(4096)))).toBe(true);
    expect(
      looksLikeBinary(decode(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...noise(200)]))),
    ).toBe(true);
    expect(looksLikeBinary("ABC\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000DEF")).toBe(true);
  });

  it("accepts text mis-decoded in places: Latin-1 German read as UTF-8", () => {
    const latin1 = Uint8Array.from(
      Buffer.from("Sehr geehrte Damen und Herren, ich möchte meine Bestellung stornieren. Grüße aus Köln", "latin1"),
    );
    const text = decode(latin1);
    expect(text).toContain("\uFFFD");
    expect(looksLikeBinary(text)).toBe(false);
  });

  it("accepts ordinary text, emoji, CJK and a short message with a glitch", () => {
    expect(looksLikeBinary("Where is my parcel? 📦🙏")).toBe(false);
    expect(looksLikeBinary("注文がまだ届きません")).toBe(false);
    expect(looksLikeBinary("ok\uFFFD\uFFFD")).toBe(false);
    expect(looksLikeBinary("")).toBe(false);
  });
});
