import type { Entity } from "../schemas/types.generated.js";

/**
 * Structured values a reply template or an agent needs: order, invoice and account numbers,
 * amounts with their currency, dates. Run on redacted text, so no value can carry personal data.
 * Only what is unambiguous is kept, normalized: amounts as "49.99 EUR", dates as ISO 8601
 * ("2025-03-12", or "--03-12" when the year is not given). Relative dates ("tomorrow") are left
 * out: what they mean depends on the writer's time zone, which the inquiry does not carry.
 */
export type EntityType = "order_number" | "invoice_number" | "account_id" | "amount" | "date";

interface Found {
  readonly at: number;
  readonly entity: Entity;
}

export function extractEntities(text: string, language: string): Entity[] {
  const found = [...identifiers(text), ...amounts(text), ...dates(text, language)].sort((a, b) => a.at - b.at);
  const seen = new Set<string>();
  return found
    .map(({ entity }) => entity)
    .filter((entity) => {
      const key = `${entity.type}:${entity.value}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

// ---------------------------------------------------------------------------------------------
// Identifiers: a label ("order", "Bestellung", "n° de commande") followed by a code with a digit,
// or a code whose prefix says what it is ("ORD-2024-00017", "INV-7781", "ACC-12345").

const NUMBER_WORD = String.raw`(?:number|num|no|nr|n°|nº|n\.º|id|nummer|numéro|número)`;
/** A code of letters, digits and dashes with at least one digit: "48213", "A-99812". */
const CODE = String.raw`#?((?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{2,30}[A-Z0-9])`;
const LINK = String.raw`\.?\s*(?:${NUMBER_WORD}\.?\s*)?(?:is|ist|est|es|é)?\s*[:#]?\s*`;

function labeled(labels: string, of: string): RegExp {
  // "order no. 12345", "Bestellnummer: 4711" and "numéro de commande 12345", "n.º de pedido 12345".
  return new RegExp(
    String.raw`(?<!\p{L})(?:(?:${labels})${LINK}|${NUMBER_WORD}\s+(?:de\s+)?(?:${of})\s*[:#]?\s*)${CODE}(?![\p{L}\p{N}])`,
    "giu",
  );
}

const IDENTIFIER_PATTERNS: readonly (readonly [EntityType, RegExp])[] = [
  [
    "order_number",
    labeled(
      String.raw`order|purchase order|bestellung|bestell-?nr|bestellnummer|auftrag|auftragsnummer|commande|pedido|encomenda`,
      "commande|pedido|encomenda",
    ),
  ],
  ["order_number", /(?<![\p{L}\p{N}])((?:ORD|ORDER|PO|SO)[-_]?\d[\d-]{2,30}\d)(?![\p{L}\p{N}])/giu],
  [
    "invoice_number",
    labeled(
      String.raw`invoice|rechnung|rechnungsnummer|rechnungs-?nr|facture|factura|fatura`,
      "facture|factura|fatura",
    ),
  ],
  ["invoice_number", /(?<![\p{L}\p{N}])((?:INV|FAC)[-_]?\d[\d-]{2,30}\d)(?![\p{L}\p{N}])/giu],
  [
    "account_id",
    labeled(
      String.raw`account|acct|customer|client|member|membership|user|kundennummer|kunden-?nr|kundenkonto|benutzer|compte|cliente|cuenta|conta`,
      "client|cliente|compte|cuenta|conta",
    ),
  ],
  ["account_id", /(?<![\p{L}\p{N}])((?:ACC|ACCT|CUST|CUS)[-_]?\d[\d-]{2,30}\d)(?![\p{L}\p{N}])/giu],
];

function identifiers(text: string): Found[] {
  return IDENTIFIER_PATTERNS.flatMap(([type, pattern]) =>
    Array.from(text.matchAll(pattern), (match) => ({
      at: match.index,
      entity: { type, value: match[1]!.toUpperCase() },
    })),
  );
}

// ---------------------------------------------------------------------------------------------
// Amounts: a currency symbol or code before or after a number, in English ("1,234.50") or
// continental ("1.234,50", "1 234,50") notation.

const CURRENCIES: Readonly<Record<string, string>> = {
  $: "USD",
  US$: "USD",
  C$: "CAD",
  CA$: "CAD",
  A$: "AUD",
  AU$: "AUD",
  R$: "BRL",
  "€": "EUR",
  "£": "GBP",
  "¥": "JPY",
  usd: "USD",
  eur: "EUR",
  gbp: "GBP",
  chf: "CHF",
  cad: "CAD",
  aud: "AUD",
  brl: "BRL",
  jpy: "JPY",
  dollar: "USD",
  dollars: "USD",
  euro: "EUR",
  euros: "EUR",
  pound: "GBP",
  pounds: "GBP",
  franken: "CHF",
  reais: "BRL",
};
const SYMBOL = String.raw`US\$|CA?\$|AU?\$|R\$|[$€£¥]`;
const CODE_BEFORE = String.raw`USD|EUR|GBP|CHF|CAD|AUD|BRL|JPY`;
const UNIT_AFTER = String.raw`${SYMBOL}|USD|EUR|GBP|CHF|CAD|AUD|BRL|JPY|dollars?|euros?|pounds?|franken|reais`;
const NUMBER = String.raw`\d{1,3}(?:[.,' ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?`;
const AMOUNT_BEFORE = new RegExp(
  String.raw`(?<![\p{L}\p{N}])(${SYMBOL}|(?:${CODE_BEFORE})(?=[\s\d]))\s?(${NUMBER})(?![\p{N}]|[.,]\d)`,
  "giu",
);
const AMOUNT_AFTER = new RegExp(String.raw`(?<![\p{L}\p{N}.,])(${NUMBER})\s?(${UNIT_AFTER})(?![\p{L}])`, "giu");

function amounts(text: string): Found[] {
  const before = Array.from(text.matchAll(AMOUNT_BEFORE), (m) => toAmount(m.index, m[2]!, m[1]!));
  const after = Array.from(text.matchAll(AMOUNT_AFTER), (m) => toAmount(m.index, m[1]!, m[2]!));
  return [...before, ...after].filter((found): found is Found => found !== undefined);
}

function toAmount(at: number, number: string, currency: string): Found | undefined {
  const code = CURRENCIES[currency.toUpperCase()] ?? CURRENCIES[currency.toLowerCase()];
  return code === undefined ? undefined : { at, entity: { type: "amount", value: `${parseAmount(number)} ${code}` } };
}

/** "1,234.50" and "1.234,50" → "1234.50"; "1,234" and "1.234" are thousands, "49,9" → "49.90". */
export function parseAmount(number: string): string {
  const compact = number.replace(/[' ]/g, "");
  const separators = compact.match(/[.,]/g) ?? [];
  if (separators.length === 0) return compact;
  const last = Math.max(compact.lastIndexOf("."), compact.lastIndexOf(","));
  const decimals = compact.length - last - 1;
  // With both kinds the last is the decimal point; a lone one is, unless three digits follow it.
  const isDecimal = new Set(separators).size > 1 || (separators.length === 1 && decimals !== 3);
  if (!isDecimal) return compact.replace(/[.,]/g, "");
  return `${compact.slice(0, last).replace(/[.,]/g, "")}.${compact.slice(last + 1).padEnd(2, "0")}`;
}

// ---------------------------------------------------------------------------------------------
// Dates: ISO, numeric day-month-year, and month names in the supported languages.

const MONTHS: Readonly<Record<string, number>> = Object.fromEntries(
  (
    [
      ["january jan januar jänner janvier enero janeiro", 1],
      ["february feb februar février fevrier febrero fevereiro", 2],
      ["march mar märz maerz mars marzo março", 3],
      ["april apr avril abril", 4],
      ["may mai mayo maio", 5],
      ["june jun juni juin junio junho", 6],
      ["july jul juli juillet julio julho", 7],
      ["august aug août aout agosto", 8],
      ["september sep sept septembre septiembre setiembre setembro", 9],
      ["october oct oktober octobre octubre outubro", 10],
      ["november nov novembre noviembre novembro", 11],
      ["december dec dezember décembre decembre diciembre dezembro", 12],
    ] as const
  ).flatMap(([names, month]) => names.split(" ").map((name) => [name, month])),
);
const MONTH = Object.keys(MONTHS)
  .sort((a, b) => b.length - a.length)
  .join("|");
const DAY = String.raw`(\d{1,2})(?:st|nd|rd|th|er|º|\.)?`;
const YEAR = String.raw`(\d{4})`;

const ISO_DATE = /(?<![\p{N}-])(\d{4})-(\d{2})-(\d{2})(?![\p{N}])/gu;
const NUMERIC_DATE = /(?<![\p{L}\p{N}./-])(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?![\p{N}]|[./-]\d)/gu;
// "March 3", "March 3rd, 2025"
const MONTH_DAY = new RegExp(String.raw`(?<!\p{L})(${MONTH})\.?\s+${DAY}(?:,?\s+${YEAR})?(?![\p{L}\p{N}])`, "giu");
// "3 March 2025", "3rd of March", "3. März 2025", "3 de marzo de 2025", "3 mars"
const DAY_MONTH = new RegExp(
  String.raw`(?<![\p{L}\p{N}])${DAY}\s+(?:of\s+|de\s+)?(${MONTH})\.?(?:,?\s+(?:de\s+)?${YEAR})?(?![\p{L}\p{N}])`,
  "giu",
);

/** Languages that write numeric dates day first; English may be either (US or UK), so it is ambiguous. */
const DAY_FIRST_LANGUAGES = new Set(["de", "fr", "es", "pt", "it", "nl"]);

function dates(text: string, language: string): Found[] {
  const found: (Found | undefined)[] = [
    ...Array.from(text.matchAll(ISO_DATE), (m) => toDate(m.index, Number(m[1]), Number(m[2]), Number(m[3]))),
    ...Array.from(text.matchAll(NUMERIC_DATE), (m) => numericDate(m, language)),
    ...Array.from(text.matchAll(MONTH_DAY), (m) =>
      toDate(m.index, year(m[3]), MONTHS[m[1]!.toLowerCase()]!, Number(m[2])),
    ),
    ...Array.from(text.matchAll(DAY_MONTH), (m) =>
      toDate(m.index, year(m[3]), MONTHS[m[2]!.toLowerCase()]!, Number(m[1])),
    ),
  ];
  return found.filter((date): date is Found => date !== undefined);
}

function numericDate(match: RegExpMatchArray, language: string): Found | undefined {
  const [first, separator, second, yearText] = [Number(match[1]), match[2], Number(match[3]), match[4]!];
  // "1.2.25" is more likely a version than a date; "01.02.25" is a date.
  if (yearText.length === 2 && (match[1]!.length < 2 || match[3]!.length < 2)) return undefined;
  const fullYear = yearText.length === 2 ? 2000 + Number(yearText) : Number(yearText);
  // Dots are day-first everywhere. Otherwise a part above 12 is the day; when both could be the
  // month the writer's convention decides, and English (American or British) cannot.
  if (separator !== "." && second > 12) return toDate(match.index!, fullYear, first, second);
  if (separator === "." || first > 12 || DAY_FIRST_LANGUAGES.has(language)) {
    return toDate(match.index!, fullYear, second, first);
  }
  return undefined;
}

const year = (text: string | undefined): number | undefined => (text === undefined ? undefined : Number(text));

function toDate(at: number, fullYear: number | undefined, month: number, day: number): Found | undefined {
  // Without a year, 29 February is possible; with one, the calendar decides.
  const probe = new Date(Date.UTC(fullYear ?? 2000, month - 1, day));
  if (month < 1 || month > 12 || day < 1 || probe.getUTCMonth() !== month - 1) return undefined;
  const monthDay = `${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
  return { at, entity: { type: "date", value: fullYear === undefined ? `--${monthDay}` : `${fullYear}-${monthDay}` } };
}
