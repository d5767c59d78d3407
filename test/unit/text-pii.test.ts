import { describe, expect, it } from "vitest";
import { containsPersonalData, redactPersonalData } from "../../text/pii.js";

const redacted = (text: string): string => redactPersonalData(text).text;

describe("personal data redaction", () => {
  it("redacts email addresses in their common and obfuscated forms", () => {
    expect(redacted("write to dana.smith+orders@mail.shop-example.co.uk today")).toBe("write to [EMAIL] today");
    expect(redacted("Contact: <jürgen.müller@bäckerei.de>, mailto:ops@example.com.")).toBe(
      "Contact: <[EMAIL]>, mailto:[EMAIL].",
    );
    expect(redacted("reach me at dana (at) example (dot) com or dana[at]example[dot]org")).toBe(
      "reach me at [EMAIL] or [EMAIL]",
    );
  });

  it("redacts international phone numbers in any grouping", () => {
    for (const phone of [
      "+1 415-555-2671",
      "+1 (415) 555-2671",
      "+44 20 7946 0958",
      "+49 30 1234567",
      "+49 (0)170 1234567",
      "+33 6 12 34 56 78",
      "+34 612 345 678",
      "+351 912 345 678",
      "+55 11 91234-5678",
      "0049 170 1234567",
    ]) {
      expect(redacted(`Call me on ${phone} please`), phone).toBe("Call me on [PHONE] please");
    }
  });

  it("redacts national numbers of the supported markets", () => {
    const numbers: Record<string, string> = {
      us: "(415) 555-2671",
      usDots: "415.555.2671",
      uk: "020 7946 0958",
      ukMobile: "07700 900123",
      de: "0170 1234567",
      deSlash: "030/12345678",
      fr: "01 23 45 67 89",
      es: "612 345 678",
    };
    for (const [market, phone] of Object.entries(numbers))
      expect(redacted(`my number is ${phone}.`), market).toBe("my number is [PHONE].");
    expect(redacted("Tel:0170 1234567")).toBe("Tel:[PHONE]");
    expect(redacted("call me 4155552671")).toBe("call me [PHONE]");
  });

  it("redacts numbers outside the numbering plans when a '+' or a cue says they are phone numbers", () => {
    expect(redacted("my cell is +1 555 010 0199")).toBe("my cell is [PHONE]");
    expect(redacted("call me at (999) 000-0000")).toBe("call me at [PHONE]");
    expect(redacted("error code (999) 000-0000")).toBe("error code (999) 000-0000");
  });

  it("redacts Luhn-valid card numbers with spaces, dashes or none, and keeps digits that follow", () => {
    expect(redacted("Visa 4111 1111 1111 1111 exp 12/27")).toBe("Visa [CARD] exp 12/27");
    expect(redacted("MC 5500-0000-0000-0004, Amex 378282246310005")).toBe("MC [CARD], Amex [CARD]");
    expect(redacted("card 4111 1111 1111 1111 12")).toBe("card [CARD] 12");
  });

  it("redacts IBANs, grouped or compact, in any case, when the checksum holds", () => {
    expect(redacted("IBAN: DE89 3704 0044 0532 0130 00 ASAP")).toBe("IBAN: [IBAN] ASAP");
    expect(redacted("to GB82WEST12345698765432.")).toBe("to [IBAN].");
    expect(redacted("FR14 2004 1010 0505 0001 3M02 606 and fr1420041010050500013m02606")).toBe("[IBAN] and [IBAN]");
    expect(redacted("DE89370400440532013001")).toBe("DE89370400440532013001");
  });

  it("counts every redaction by kind", () => {
    const result = redactPersonalData(
      "a@example.com, b@example.com, +49 30 1234567, 4111111111111111, DE89370400440532013000",
    );
    expect(result.count).toBe(5);
    expect(result.kinds).toEqual({ email: 2, phone: 1, card: 1, iban: 1 });
    expect(result.text).toBe("[EMAIL], [EMAIL], [PHONE], [CARD], [IBAN]");
  });
});

describe("what is not personal data", () => {
  const untouched = [
    "order #12345678 arrived damaged",
    "my order 5551234567 is late",
    "order number: 4155552671",
    "Bestellnummer 20240312, Kundennummer: 5551234567",
    "numéro de commande 0612345678",
    "ORD-2024-00017 and INV-7781 and ACC-20240312",
    "account 1234567890 is locked",
    "customer id 4155552671",
    "ticket 4155552671 is still open",
    "tracking 1Z999AA10123456784",
    "I was charged $1,234,567.89 and 1.234.567,89 € and EUR 4155552671",
    "it cost 4155552671 EUR",
    "dates 12/03/2025, 2025-03-12, 12.03.2025, 3/12/25 and 2025-03-12T10:30:00",
    "between 10:30 and 14:45",
    "server 192.168.100.200 runs version 2.14.1036",
    "card ending 1111, last four 4242",
    "not a card: 1234 5678 9012 3456",
    "zip 10115 Berlin, 75008 Paris",
    "O correto é 4050-123 Porto, CEP 01310-100 São Paulo",
    "since 2019, about 20240312 users",
    "the reference 4155552671",
  ];
  for (const text of untouched) {
    it(`keeps "${text}"`, () => {
      const result = redactPersonalData(text);
      expect(result.text).toBe(text);
      expect(result.count).toBe(0);
      expect(containsPersonalData(text)).toBe(false);
    });
  }
});

describe("containsPersonalData", () => {
  it("is true for each kind and false once redacted", () => {
    for (const text of [
      "mail dana@example.com",
      "call +1 415 555 2671",
      "4111 1111 1111 1111",
      "DE89 3704 0044 0532 0130 00",
    ]) {
      expect(containsPersonalData(text), text).toBe(true);
      expect(containsPersonalData(redacted(text)), text).toBe(false);
    }
  });
});
