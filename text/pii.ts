import { findPhoneNumbersInText, parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/max";

/**
 * Personal data in free text: email addresses, phone numbers, payment card numbers and IBANs,
 * replaced by a placeholder naming the kind. Every detector validates what it matches (Luhn,
 * mod-97, libphonenumber's numbering plans) so that order numbers, amounts and dates survive.
 */
export type PersonalDataKind = "email" | "phone" | "card" | "iban";

export interface Redaction {
  readonly text: string;
  readonly count: number;
  readonly kinds: Partial<Record<PersonalDataKind, number>>;
}

const PLACEHOLDERS: Readonly<Record<PersonalDataKind, string>> = {
  email: "[EMAIL]",
  phone: "[PHONE]",
  card: "[CARD]",
  iban: "[IBAN]",
};

interface Span {
  readonly start: number;
  readonly end: number;
}

type Finder = (text: string) => Span[];

/** Replaces every email address, IBAN, card number and phone number, in that order. */
export function redactPersonalData(text: string): Redaction {
  let redacted = text;
  let count = 0;
  const kinds: Partial<Record<PersonalDataKind, number>> = {};
  // Each finder runs on the previous one's output: an IBAN's digits are gone before cards and
  // phones are looked for, so one value is redacted once, as its most specific kind.
  for (const [kind, find] of FINDERS) {
    const spans = find(redacted);
    if (spans.length === 0) continue;
    redacted = replaceSpans(redacted, spans, PLACEHOLDERS[kind]);
    count += spans.length;
    kinds[kind] = spans.length;
  }
  return { text: redacted, count, kinds };
}

export function containsPersonalData(text: string): boolean {
  return FINDERS.some(([, find]) => find(text).length > 0);
}

function replaceSpans(text: string, spans: readonly Span[], placeholder: string): string {
  let result = "";
  let from = 0;
  for (const span of spans) {
    result += text.slice(from, span.start) + placeholder;
    from = span.end;
  }
  return result + text.slice(from);
}

function matchSpans(pattern: RegExp, text: string): Span[] {
  return Array.from(text.matchAll(pattern), (match) => ({ start: match.index, end: match.index + match[0].length }));
}

// ---------------------------------------------------------------------------------------------
// Email addresses, also in the "name [at] example [dot] com" form people use to dodge scrapers.

const AT = String.raw`(?:@|\s?[[(]at[\])]\s?)`;
const DOT = String.raw`(?:\.|\s?[[(]dot[\])]\s?)`;
const EMAIL = new RegExp(
  String.raw`[\p{L}\p{N}._%+'-]+${AT}[\p{L}\p{N}-]+(?:${DOT}[\p{L}\p{N}-]+)*${DOT}\p{L}{2,}`,
  "giu",
);

const findEmails: Finder = (text) => (text.includes("@") || /[[(]at[\])]/i.test(text) ? matchSpans(EMAIL, text) : []);

// ---------------------------------------------------------------------------------------------
// IBANs: country code, check digits, the country's length, mod-97; written compact or in groups.

/** IBAN length per country (SWIFT IBAN registry), as country code and length. */
const IBAN_LENGTHS: ReadonlyMap<string, number> = new Map(
  (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 EE20 EG29 " +
    "ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 " +
    "LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 PT25 " +
    "QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30"
  )
    .split(" ")
    .map((entry) => [entry.slice(0, 2), Number(entry.slice(2))]),
);
/** Where an IBAN may start: a country code and check digits at the start of a word. */
const IBAN_START = /\b[A-Z]{2}\d{2}(?= ?[A-Z0-9])/gi;
const ALPHANUMERIC = /[A-Za-z0-9]/;

const findIbans: Finder = (text) => {
  const spans: Span[] = [];
  let after = 0;
  for (const start of text.matchAll(IBAN_START)) {
    if (start.index < after) continue;
    const end = ibanEnd(text, start.index, IBAN_LENGTHS.get(start[0].slice(0, 2).toUpperCase()));
    if (end === undefined) continue;
    spans.push({ start: start.index, end });
    after = end;
  }
  return spans;
};

/** The end of the IBAN of `length` characters (single spaces between them allowed) at `start`, if valid. */
function ibanEnd(text: string, start: number, length: number | undefined): number | undefined {
  if (length === undefined) return undefined;
  let compact = "";
  let end = start;
  while (compact.length < length && end < text.length) {
    const char = text[end]!;
    if (ALPHANUMERIC.test(char)) compact += char;
    else if (char !== " " || text[end + 1] === " ") break;
    end++;
  }
  const endsAtWordBoundary = end >= text.length || !ALPHANUMERIC.test(text[end]!);
  return compact.length === length && endsAtWordBoundary && passesMod97(compact.toUpperCase()) ? end : undefined;
}

function passesMod97(iban: string): boolean {
  let remainder = 0;
  for (const char of iban.slice(4) + iban.slice(0, 4)) {
    const code = char.charCodeAt(0);
    // Letters count as two digits: A = 10 … Z = 35.
    const value = code >= 65 ? code - 55 : code - 48;
    remainder = (value >= 10 ? remainder * 100 + value : remainder * 10 + value) % 97;
  }
  return remainder === 1;
}

// ---------------------------------------------------------------------------------------------
// Payment cards: 13 to 19 digits (issuer prefixes start with 2 to 6), spaces or dashes, Luhn.

const CARD_CANDIDATE = /(?<!\p{N})[2-6](?:[ -]?\d){12,18}(?!\p{N})/gu;

const findCards: Finder = (text) => {
  const spans: Span[] = [];
  for (const match of text.matchAll(CARD_CANDIDATE)) {
    // A card followed by another number ("… 1111 12") is found as the longest Luhn-valid group prefix.
    const end = luhnValidGroupPrefix(match[0]);
    if (end !== undefined) spans.push({ start: match.index, end: match.index + end });
  }
  return spans;
};

function luhnValidGroupPrefix(candidate: string): number | undefined {
  const ends = [...candidate.matchAll(/(?=[ -])/g)].map((m) => m.index).concat(candidate.length);
  for (const end of ends.reverse()) {
    const digits = candidate.slice(0, end).replace(/\D/g, "");
    if (digits.length >= 13 && digits.length <= 19 && passesLuhn(digits)) return end;
  }
  return undefined;
}

function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
    sum += digit;
  }
  return sum % 10 === 0;
}

// ---------------------------------------------------------------------------------------------
// Phone numbers: international (+…, 00…) anywhere; national formats of the countries customers
// write from, validated by libphonenumber. Digit runs that are dates, amounts, IP addresses or
// labeled identifiers are ruled out first, which also keeps libphonenumber off the hot path.

/** Countries whose national formats are recognized: the markets of the supported languages. */
const PHONE_COUNTRIES: readonly CountryCode[] = ["US", "GB", "DE", "AT", "CH", "FR", "ES", "PT", "BR"];
/** Any country whose international call prefix is 00, so that "0049 …" reads as international. */
const DIALS_00: CountryCode = "GB";
const MIN_PHONE_DIGITS = 7;
/** E.164's longest number. */
const MAX_PHONE_DIGITS = 15;
/** Longer than one national number: the candidate may hold two ("0170 1234567 / 030 1234567"). */
const SINGLE_NUMBER_MAX_DIGITS = 12;
/** A run of digits with the separators phone numbers use, not glued to a word, a decimal or an id. */
const PHONE_CANDIDATE = /(?<![\p{L}\p{N}_#@/.,+=-])\+?\(?\d[\d ()./-]{5,30}\d\)?(?![\p{L}\p{N}_]|[.,]\d)/gu;
const DIGIT = /\d/g;
const INTERNATIONAL = /^(?:\+|00)/;
const NOT_A_PHONE_SHAPE = /^(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,3}(?:\.\d{1,3}){3})$/;
const BARE_DIGITS = /^[1-9]\d*$/;
/** Portuguese (1234-567) and Brazilian (12345-678) postcodes, which numbering plans may also accept. */
const POSTCODE_SHAPE = /^(?:\d{4}|\d{5})-\d{3}$/;
/** How far before a number its label or cue is looked for, and after it a currency. */
const CONTEXT_CHARS = 40;
const CURRENCY_CHARS = 10;
/** The number is labeled as an identifier ("order no. 5551234567", "Kundennummer: …"). */
const IDENTIFIER_LABEL = new RegExp(
  String.raw`(?<!\p{L})(?:(?:order|invoice|inv|account|acct|customer|client|member|user|ticket|case|tracking|shipment|parcel|reference|ref|booking|reservation|confirmation|transaction|receipt|contract|policy|serial|sku|item|article|product|id|commande|facture|compte|dossier|colis|pedido|factura|cuenta|reserva|encomenda|fatura|conta)s?|(?:bestell|auftrag|rechnung|kunden|vertrag|sendung|paket|vorgang)\p{L}*)` +
    String.raw`\.?\s*(?:number|num|no|nr|n°|nº|id|nummer|numéro|número)?\.?\s*(?:is|ist|est|es|é|was|war)?\s*[:#=]?\s*$`,
  "iu",
);
/** Words that introduce a phone number, which lets an unformatted digit run count as one. */
const PHONE_CUE =
  /\b(?:phone|tel|mobile|cell|call|text me|whatsapp|fax|sms|reach me|telefon|handy|mobil|anruf|rufnummer|téléphone|tél|portable|appel|teléfono|móvil|celular|llam|telemóvel|ligar|contacto)/iu;
const CURRENCY_BEFORE = /(?:[$€£¥]|\b(?:EUR|USD|GBP|CHF|CAD|AUD|BRL))\s?$/i;
const CURRENCY_AFTER = /^\s?(?:[$€£¥]|(?:EUR|USD|GBP|CHF|CAD|AUD|BRL|euros?|dollars?)\b)/i;

const findPhones: Finder = (text) => {
  const spans: Span[] = [];
  for (const candidate of text.matchAll(PHONE_CANDIDATE)) {
    const digits = candidate[0].match(DIGIT)?.length ?? 0;
    if (digits < MIN_PHONE_DIGITS) continue;
    const found = INTERNATIONAL.test(candidate[0])
      ? internationalNumbersIn(candidate[0], digits)
      : nationalNumbersIn(text, candidate.index, candidate[0], digits);
    spans.push(...found.map((span) => ({ start: candidate.index + span.start, end: candidate.index + span.end })));
  }
  return spans;
};

/**
 * A "+" or "00" says phone number more surely than any numbering plan: a number libphonenumber
 * does not know (a new range, a made-up example) is still redacted when it has a phone's length.
 */
function internationalNumbersIn(candidate: string, digits: number): Span[] {
  const found = findNumbers(candidate, [DIALS_00]);
  if (found.length > 0) return found;
  return digits <= MAX_PHONE_DIGITS ? [{ start: 0, end: candidate.length }] : [];
}

/**
 * Digit runs without a country code that are phone numbers: not shaped like a date or an IP
 * address, not next to a currency or after an identifier's label, and valid in one of the
 * markets' numbering plans. After a cue ("call me at") a plausible length is enough, and an
 * unformatted run without a trunk prefix, or one shaped like a postcode, needs one: it is as
 * likely an id or an address as a number.
 */
function nationalNumbersIn(text: string, start: number, candidate: string, digits: number): Span[] {
  if (NOT_A_PHONE_SHAPE.test(candidate)) return [];
  const before = text
    .slice(Math.max(0, start - CONTEXT_CHARS), start)
    .split("\n")
    .at(-1)!;
  const after = text.slice(start + candidate.length, start + candidate.length + CURRENCY_CHARS);
  if (CURRENCY_BEFORE.test(before) || CURRENCY_AFTER.test(after) || IDENTIFIER_LABEL.test(before)) return [];
  const cued = PHONE_CUE.test(before);
  if ((BARE_DIGITS.test(candidate) || POSTCODE_SHAPE.test(candidate)) && !cued) return [];
  const isNumber = PHONE_COUNTRIES.some((country) => {
    const number = parsePhoneNumberFromString(candidate, country);
    return number !== undefined && (number.isValid() || (cued && number.isPossible()));
  });
  if (isNumber) return [{ start: 0, end: candidate.length }];
  return digits > SINGLE_NUMBER_MAX_DIGITS ? findNumbers(candidate, PHONE_COUNTRIES) : [];
}

/** Numbers libphonenumber finds in the text under any of the countries, overlaps merged. */
function findNumbers(text: string, countries: readonly CountryCode[]): Span[] {
  const found = countries
    .flatMap((defaultCountry) =>
      findPhoneNumbersInText(text, { defaultCountry }).map((n) => ({ start: n.startsAt, end: n.endsAt })),
    )
    .sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Span[] = [];
  for (const span of found) {
    const last = merged.at(-1);
    if (last && span.start < last.end) {
      merged[merged.length - 1] = { start: last.start, end: Math.max(last.end, span.end) };
    } else {
      merged.push(span);
    }
  }
  return merged;
}

const FINDERS: readonly (readonly [PersonalDataKind, Finder])[] = [
  ["email", findEmails],
  ["iban", findIbans],
  ["card", findCards],
  ["phone", findPhones],
];
