import { ENTITY_PLACEHOLDERS } from "../../knowledge-base/articles.js";
import { parseTemplate, renderTemplate, type Template } from "../../knowledge-base/template.js";
import type { Customer, Entity } from "../../schemas/types.generated.js";
import { containsPersonalData } from "../../text/pii.js";
import type { Messages } from "./messages.js";
import type { KnowledgeArticle } from "./retrieval.js";

/**
 * Replies drafted without a person: a per-intent template filled with the inquiry's entities, or
 * an article's answer. Both are written in English (the knowledge base's language) and framed by
 * the greeting and sign-off of the messages file.
 */

/** What a reply may say about the customer: only structured, checked values, never the inquiry text. */
export interface ReplyContext {
  readonly entities: readonly Entity[];
  readonly customer: Customer;
}

const REPLY_LANGUAGE = "en";

/** An entity value quoted in a reply: short, plain characters only (no markup, no line breaks, no personal data). */
const QUOTABLE_VALUE = /^[\p{L}\p{N}\p{Sc}][\p{L}\p{N}\p{Sc} #.,:/-]{0,39}$/u;
/** A name fit for a greeting. */
const GREETING_NAME = /^\p{L}[\p{L}\p{M} .'-]{0,39}$/u;

/** The first quotable value of each entity type a template may use. */
export function entityValues(entities: readonly Entity[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const { type, value } of entities) {
    const trimmed = value.trim();
    if (!ENTITY_PLACEHOLDERS.has(type) || type in values) continue;
    if (QUOTABLE_VALUE.test(trimmed) && !containsPersonalData(trimmed)) values[type] = trimmed;
  }
  return values;
}

/** The customer's name from the envelope, when there is one fit to greet with. */
export function greetingName(customer: Customer): string | null {
  const name = customer.name?.trim();
  return name && GREETING_NAME.test(name) ? name : null;
}

const parsedTemplates = new Map<string, Template>();

/** Templates come from the index, where `kb load` validated them; parsed once per distinct text. */
function templateOf(article: KnowledgeArticle): Template {
  let template = parsedTemplates.get(article.template);
  if (!template) {
    template = parseTemplate(article.template, ENTITY_PLACEHOLDERS);
    parsedTemplates.set(article.template, template);
  }
  return template;
}

const framed = (messages: Messages, context: ReplyContext, body: string) =>
  [messages.greeting(REPLY_LANGUAGE, greetingName(context.customer)), body, messages.signOff(REPLY_LANGUAGE)].join(
    "\n\n",
  );

/** The article's template, filled with the inquiry's entities; sections for missing ones drop out. Throws TemplateError on a broken template. */
export function templateReply(article: KnowledgeArticle, context: ReplyContext, messages: Messages): string {
  return framed(messages, context, renderTemplate(templateOf(article), entityValues(context.entities)));
}

/** A reply composed from an article that answers the inquiry but is not its intent's template. */
export function retrievalReply(article: KnowledgeArticle, context: ReplyContext, messages: Messages): string {
  const body = [
    `Thank you for your message. Here is what our help centre says about "${article.title}":`,
    article.body.trim(),
    "If this doesn't answer your question, simply reply to this message and a member of our team will help you.",
  ].join("\n\n");
  return framed(messages, context, body);
}

/** A reply around a drafted answer (the LLM's), with the same greeting and sign-off as every other. */
export function draftedReply(answer: string, context: ReplyContext, messages: Messages): string {
  return framed(messages, context, answer.trim());
}
