import { describe, expect, it } from "vitest";
import { extractEntities, parseAmount } from "../../text/entities.js";

const ofType = (text: string, type: string, language = "en"): string[] =>
  extractEntities(text, language)
    .filter((entity) => entity.type === type)
    .map((entity) => entity.value);

describe("entity extraction", () => {
  it("finds order numbers after a label or by their prefix, in several languages", () => {
    expect(ofType("Hi, my order #12345 has not arrived", "order_number")).toEqual(["12345"]);
    expect(ofType("Order number: ord-2024-00017 and ORD-2024-00018", "order_number")).toEqual([
      "ORD-2024-00017",
      "ORD-2024-00018",
    ]);
    expect(ofType("Bestellung 4711 und Bestellnummer: A-99812", "order_number", "de")).toEqual(["4711", "A-99812"]);
    expect(ofType("numéro de commande 778812, n° de commande 778813", "order_number", "fr")).toEqual([
      "778812",
      "778813",
    ]);
    expect(ofType("mi pedido nº 55120 y el número de pedido 55121", "order_number", "es")).toEqual(["55120", "55121"]);
    expect(ofType("my order is late, I ordered 2 items, order 10 days ago", "order_number")).toEqual([]);
  });

  it("finds invoice numbers and account ids", () => {
    expect(ofType("charged twice for the same invoice (INV-7781)", "invoice_number")).toEqual(["INV-7781"]);
    expect(ofType("Rechnungsnummer 2024-5531", "invoice_number", "de")).toEqual(["2024-5531"]);
    expect(ofType("customer id C-1002, account no. 88123401 and ACC-5521", "account_id")).toEqual([
      "C-1002",
      "88123401",
      "ACC-5521",
    ]);
    expect(ofType("Kundennummer: 100234", "account_id", "de")).toEqual(["100234"]);
    expect(ofType("my account [EMAIL] is locked", "account_id")).toEqual([]);
  });

  it("normalizes amounts to a decimal number and an ISO currency", () => {
    expect(ofType("I paid $49.99, then US$1,234.50 and £20", "amount")).toEqual(["49.99 USD", "1234.50 USD", "20 GBP"]);
    expect(ofType("Ich habe 49,99 € und 1.234,50 EUR bezahlt", "amount", "de")).toEqual(["49.99 EUR", "1234.50 EUR"]);
    expect(ofType("EUR 120 and CHF 35.5 and 1 299,00 € and 30 dollars", "amount")).toEqual([
      "120 EUR",
      "35.50 CHF",
      "1299.00 EUR",
      "30 USD",
    ]);
    expect(ofType("R$ 250,00", "amount", "pt")).toEqual(["250.00 BRL"]);
    expect(ofType("I waited 3 hours for 2 items", "amount")).toEqual([]);
  });

  it("parses both decimal notations", () => {
    expect(parseAmount("1,234.56")).toBe("1234.56");
    expect(parseAmount("1.234,56")).toBe("1234.56");
    expect(parseAmount("1,234")).toBe("1234");
    expect(parseAmount("1.234.567")).toBe("1234567");
    expect(parseAmount("49,9")).toBe("49.90");
    expect(parseAmount("120")).toBe("120");
  });

  it("normalizes unambiguous dates to ISO 8601", () => {
    expect(ofType("delivered 2025-03-12, expected 12.03.2025", "date")).toEqual(["2025-03-12"]);
    expect(ofType("on March 3, 2025 and on 3rd of March and 4 Mar 2025", "date")).toEqual([
      "2025-03-03",
      "--03-03",
      "2025-03-04",
    ]);
    expect(ofType("am 3. März 2025 oder am 5. Mai", "date", "de")).toEqual(["2025-03-03", "--05-05"]);
    expect(ofType("le 1er mars 2025", "date", "fr")).toEqual(["2025-03-01"]);
    expect(ofType("el 3 de marzo de 2025", "date", "es")).toEqual(["2025-03-03"]);
    expect(ofType("em 3 de março de 2025", "date", "pt")).toEqual(["2025-03-03"]);
  });

  it("reads slashed dates by the writer's convention and drops what stays ambiguous", () => {
    expect(ofType("ordered 03/25/2025", "date")).toEqual(["2025-03-25"]);
    expect(ofType("ordered 25/03/2025", "date")).toEqual(["2025-03-25"]);
    expect(ofType("ordered 03/04/2025", "date")).toEqual([]);
    expect(ofType("bestellt am 03/04/2025", "date", "de")).toEqual(["2025-04-03"]);
    expect(ofType("on 31/02/2025 or 2025-13-01 or version 1.2.25", "date")).toEqual([]);
  });

  it("leaves relative dates out", () => {
    expect(ofType("I need it by tomorrow or next Friday", "date")).toEqual([]);
  });

  it("lists each entity once, in text order", () => {
    expect(extractEntities("Order 48213: paid $20 on 2025-03-01. Order 48213 again, $20.", "en")).toEqual([
      { type: "order_number", value: "48213" },
      { type: "amount", value: "20 USD" },
      { type: "date", value: "2025-03-01" },
    ]);
  });
});
