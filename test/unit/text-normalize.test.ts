import { describe, expect, it } from "vitest";
import { MAX_TEXT_CHARS, capLength, normalizeText } from "../../text/normalize.js";

describe("text normalization", () => {
  it("applies NFKC: full-width forms, ligatures and non-breaking spaces become their plain forms", () => {
    expect(normalizeText("Ｏｒｄｅｒ　１２３４５ ﬁle\u00A0size\u202F2")).toBe("Order 12345 file size 2");
  });

  it("removes zero-width, bidi, soft-hyphen, BOM, control and replacement characters", () => {
    expect(normalizeText("\uFEFFre\u200Bfund\u00AD please\u200E\u202E now\u0007\u0000 caf\uFFFD")).toBe(
      "refund please now caf",
    );
  });

  it("collapses spaces, trims lines, keeps line breaks and at most one blank line between paragraphs", () => {
    const text = "  Hello \t team,\r\n\r\n\r\n\r\n  my   order\u2028is late.  \n\n\n\nThanks  ";
    expect(normalizeText(text)).toBe("Hello team,\n\nmy order\nis late.\n\nThanks");
  });

  it("caps length at a word boundary", () => {
    const text = "word ".repeat(3000);
    const capped = capLength(text);
    expect(capped.length).toBeLessThanOrEqual(MAX_TEXT_CHARS);
    expect(capped.endsWith("word")).toBe(true);
    expect(capLength("abcdef ghij", 8)).toBe("abcdef");
    expect(capLength("short")).toBe("short");
  });

  it("cuts a single overlong token hard rather than returning more than the cap", () => {
    expect(capLength("x".repeat(MAX_TEXT_CHARS + 10))).toHaveLength(MAX_TEXT_CHARS);
  });
});
