import { compile, type HtmlToTextOptions } from "html-to-text";

/**
 * HTML bodies (newsletters, rich-text email) to the plain text a reader would see. Scripts, styles
 * and other non-visible content are dropped, links keep their text but not their targets (a URL
 * tells a model nothing and may carry tracking ids), entities are decoded, and quoted blocks come
 * out as "> " lines so that quote removal treats them like plain-text quotes.
 */
const INVISIBLE_ELEMENTS = [
  "script",
  "style",
  "noscript",
  "template",
  "iframe",
  "object",
  "embed",
  "svg",
  "canvas",
  "select",
  "img",
];

const OPTIONS: HtmlToTextOptions = {
  wordwrap: false,
  selectors: [
    { selector: "a", options: { ignoreHref: true } },
    ...INVISIBLE_ELEMENTS.map((selector) => ({ selector, format: "skip" })),
    ...["h1", "h2", "h3", "h4", "h5", "h6"].map((selector) => ({ selector, options: { uppercase: false } })),
    { selector: "ul", options: { itemPrefix: "- " } },
    // Tables in email are mostly layout: one line per row, cells separated by a space.
    { selector: "table", format: "block" },
    { selector: "tr", format: "block", options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
    { selector: "td", format: "inlineSurround", options: { suffix: " " } },
    { selector: "th", format: "inlineSurround", options: { suffix: " " } },
  ],
};
const convertHtml = compile(OPTIONS);
// In a plain-text body with some markup in it, the line breaks are the writer's and mark quotes.
const convertMarkedUpText = compile({ ...OPTIONS, preserveNewlines: true });

/** Tags that only HTML has: a body claimed as plain text but carrying them is converted anyway. */
const HTML_MARKERS = /<(?:!doctype\s+html|html|head|body|div|p|br|span|table|script|style|a\s+href)\b[^>]{0,500}>/i;

export function looksLikeHtml(text: string): boolean {
  return HTML_MARKERS.test(text);
}

/** An HTML document as text; `{ markedUpText: true }` for plain text that carries some tags. */
export function htmlToPlainText(html: string, { markedUpText = false } = {}): string {
  return markedUpText ? convertMarkedUpText(html) : convertHtml(html);
}
