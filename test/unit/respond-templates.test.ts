import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ARTICLES_DIR, readArticles, toArticle } from "../../knowledge-base/articles.js";
import { parseTemplate, renderTemplate, TemplateError } from "../../knowledge-base/template.js";
import { MESSAGES_FILE, readMessages } from "../../processors/respond/messages.js";
import type { KnowledgeArticle } from "../../processors/respond/retrieval.js";
import { entityValues, greetingName, retrievalReply, templateReply } from "../../processors/respond/templates.js";
import type { Customer, Entity } from "../../schemas/types.generated.js";

/** The intents and categories of the Bitext data set the classifier is trained on. */
const BITEXT_INTENTS: Readonly<Record<string, string>> = {
  cancel_order: "ORDER",
  change_order: "ORDER",
  place_order: "ORDER",
  track_order: "ORDER",
  change_shipping_address: "SHIPPING",
  set_up_shipping_address: "SHIPPING",
  check_cancellation_fee: "CANCEL",
  check_invoice: "INVOICE",
  get_invoice: "INVOICE",
  check_payment_methods: "PAYMENT",
  payment_issue: "PAYMENT",
  check_refund_policy: "REFUND",
  get_refund: "REFUND",
  track_refund: "REFUND",
  complaint: "FEEDBACK",
  review: "FEEDBACK",
  contact_customer_service: "CONTACT",
  contact_human_agent: "CONTACT",
  create_account: "ACCOUNT",
  delete_account: "ACCOUNT",
  edit_account: "ACCOUNT",
  recover_password: "ACCOUNT",
  registration_problems: "ACCOUNT",
  switch_account: "ACCOUNT",
  delivery_options: "DELIVERY",
  delivery_period: "DELIVERY",
  newsletter_subscription: "SUBSCRIPTION",
};

const articles = readArticles();
const messages = readMessages();
const asIndexed = (intent: string): KnowledgeArticle => {
  const a = articles.find((article) => article.intent === intent)!;
  return {
    id: a.id,
    intent: a.intent,
    category: a.category,
    department: a.department,
    title: a.title,
    body: a.body,
    template: a.template,
  };
};
const anonymous: Customer = { id: "c-1", email: null, name: null, tier: null };
const allEntities: Entity[] = [
  { type: "order_number", value: "48213" },
  { type: "account_id", value: "AC-99812" },
  { type: "amount", value: "€49.90" },
  { type: "date", value: "2026-03-14" },
];

/** What a filled template must never show: placeholders, stray braces, gaps left by dropped sections. */
function expectClean(reply: string): void {
  expect(reply).not.toMatch(/\{\{|\}\}/);
  expect(reply).not.toMatch(/ {2,}/);
  expect(reply).not.toMatch(/ [.,;:]/);
  expect(reply).not.toMatch(/\n{3,}/);
  expect(reply).not.toMatch(/\b(the|of|for|by|with|to|on|about|an?) ?[.,;:]/i);
}

describe("knowledge-base articles", () => {
  it("answer each of the 27 Bitext intents once, with its category", () => {
    expect(Object.fromEntries(articles.map((a) => [a.intent, a.category]))).toEqual(BITEXT_INTENTS);
  });

  it("carry the facts a reply needs: a link to the site, keywords and example questions", () => {
    for (const article of articles) {
      expect(article.body, article.intent).toMatch(/https:\/\/example\.com/);
      expect(article.keywords.length, article.intent).toBeGreaterThanOrEqual(5);
      expect(article.questions.length, article.intent).toBeGreaterThanOrEqual(5);
    }
  });

  it("refuse an article whose template names an unknown placeholder, with the file and the name", () => {
    const raw = {
      intent: "x",
      category: "X",
      department: "x",
      title: "t",
      keywords: ["k"],
      questions: ["q"],
      body: "b",
      template: "Hi {{email}}",
    };
    expect(() => toArticle(raw, "x.yaml")).toThrow(/x\.yaml: template: unknown placeholder "email"/);
    expect(() => toArticle({ ...raw, template: "ok", extra: 1 }, "x.yaml")).toThrow(/x\.yaml: .*extra/);
  });
});

describe("reading the knowledge-base files", () => {
  const scratch = (files: Record<string, string>) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-kb-"));
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    return dir;
  };
  const trackOrder = readFileSync(path.join(ARTICLES_DIR, "track_order.yaml"), "utf8");

  it("refuses an article file not named after its intent, naming the file", () => {
    const dir = scratch({ "where_is_it.yaml": trackOrder });
    expect(() => readArticles(dir)).toThrow(/where_is_it\.yaml: intent "track_order" does not match the file name/);
    rmSync(dir, { recursive: true });
  });

  it("refuses a messages file without the fallback language, naming the file", () => {
    const messagesText = readFileSync(MESSAGES_FILE, "utf8").replace(/^ {2}en:$/m, "  xx:");
    const dir = scratch({ "messages.yaml": messagesText });
    expect(() => readMessages(path.join(dir, "messages.yaml"))).toThrow(
      /messages\.yaml: languages: the fallback language "en" is required/,
    );
    rmSync(dir, { recursive: true });
  });
});

describe.each(Object.keys(BITEXT_INTENTS))("the %s template", (intent) => {
  it("reads naturally without entities", () => {
    const reply = templateReply(asIndexed(intent), { entities: [], customer: anonymous }, messages);
    expectClean(reply);
    expect(reply.startsWith("Hello,\n\n")).toBe(true);
    expect(reply.endsWith("Harbor & Pine Customer Care")).toBe(true);
    for (const entity of allEntities) expect(reply).not.toContain(entity.value);
  });

  it("quotes the entities it has placeholders for", () => {
    const article = articles.find((a) => a.intent === intent)!;
    const reply = templateReply(
      asIndexed(intent),
      { entities: allEntities, customer: { ...anonymous, name: "Dana" } },
      messages,
    );
    expectClean(reply);
    expect(reply.startsWith("Hello Dana,\n\n")).toBe(true);
    for (const entity of allEntities) {
      if (article.parsedTemplate.names.has(entity.type)) expect(reply).toContain(entity.value);
    }
  });
});

describe("template language", () => {
  const names = new Set(["order_number", "amount"]);

  it("renders sections by presence and inverted sections by absence", () => {
    const template = parseTemplate(
      "About {{#order_number}}order {{order_number}}{{/order_number}}{{^order_number}}your order{{/order_number}}.",
      names,
    );
    expect(renderTemplate(template, { order_number: "77" })).toBe("About order 77.");
    expect(renderTemplate(template, {})).toBe("About your order.");
    expect(renderTemplate(template, { order_number: "" })).toBe("About your order.");
  });

  it("tidies the spaces and blank lines that dropped sections leave", () => {
    const template = parseTemplate("Refund {{#amount}} of {{amount}}{{/amount}} .\n\n\n\nBye  now", names);
    expect(renderTemplate(template, {})).toBe("Refund.\n\nBye now");
  });

  it("refuses unbalanced sections and malformed tags", () => {
    expect(() => parseTemplate("{{#amount}}x", names)).toThrow(TemplateError);
    expect(() => parseTemplate("{{#amount}}x{{/order_number}}", names)).toThrow(/closes \{\{#amount\}\}/);
    expect(() => parseTemplate("{{/amount}}", names)).toThrow(/closes nothing/);
    expect(() => parseTemplate("{{ Amount }}", names)).toThrow(/malformed tag/);
  });
});

describe("values a reply may quote", () => {
  it("takes the first value of each known entity type and drops unquotable ones", () => {
    expect(
      entityValues([
        { type: "order_number", value: " 48213 " },
        { type: "order_number", value: "99999" },
        { type: "email", value: "someone@example.com" },
        { type: "amount", value: "<script>alert(1)</script>" },
        { type: "date", value: "next\nFriday" },
        { type: "account_id", value: "x".repeat(60) },
      ]),
    ).toEqual({ order_number: "48213" });
  });

  it("never quotes a value that is personal data", () => {
    expect(entityValues([{ type: "account_id", value: "4111 1111 1111 1111" }])).toEqual({});
  });

  it("greets by the envelope's name only when it looks like a name", () => {
    expect(greetingName({ ...anonymous, name: "Zoë O'Neill" })).toBe("Zoë O'Neill");
    expect(greetingName({ ...anonymous, name: "  " })).toBeNull();
    expect(greetingName({ ...anonymous, name: "dana@example.com" })).toBeNull();
    expect(greetingName(anonymous)).toBeNull();
  });
});

describe("replies from an article", () => {
  it("quote the article's answer, framed and with a way back to a person", () => {
    const reply = retrievalReply(asIndexed("delivery_options"), { entities: [], customer: anonymous }, messages);
    expect(reply).toContain('"Delivery options and shipping costs"');
    expect(reply).toContain("Express: 1–2 business days");
    expect(reply).toMatch(/reply to this message/);
    expectClean(reply);
  });
});

describe("holding messages", () => {
  it.each([
    ["en", "within 24 hours"],
    ["de", "innerhalb von 24 Stunden"],
    ["es", "en un plazo de 24 horas"],
    ["fr", "sous 24 heures"],
    ["pt", "no prazo de 24 horas"],
  ])("are written in %s with the department's expectation", (language, promise) => {
    const text = messages.holding({ language, department: "billing", escalated: false, customerName: null });
    expect(text).toContain(promise);
    expect(text).not.toMatch(/\{\{|\}\}/);
  });

  it("fall back to English for other languages and to the default expectation for unknown departments", () => {
    const text = messages.holding({ language: "ja", department: "nowhere", escalated: false, customerName: "Kenji" });
    expect(text.startsWith("Hello Kenji,")).toBe(true);
    expect(text).toContain("within 48 hours");
  });

  it("promise a faster, prioritized answer when escalated", () => {
    expect(messages.holding({ language: "en", department: "billing", escalated: true, customerName: null })).toMatch(
      /priority.*within 2 hours/s,
    );
    expect(messages.holding({ language: "fr", department: "billing", escalated: true, customerName: null })).toMatch(
      /prioritaire.*sous 2 heures/s,
    );
  });

  it.each([
    ["en", /helps with orders.*a member of our team will read it and reply within 48 hours/s],
    ["de", /hilft bei Bestellungen.*liest sie und antwortet Ihnen innerhalb von 48\s+Stunden/s],
    ["es", /ayuda con pedidos.*lo leerá y le responderá en un plazo de 48 horas/s],
    ["fr", /vous aide pour les commandes.*le lira et vous répondra sous 48 heures/s],
    ["pt", /ajuda com\s+encomendas.*irá lê-la e responder-lhe no prazo de 48\s+horas/s],
  ])("say what we help with and that a person reads an out-of-scope inquiry, in %s", (language, pattern) => {
    const text = messages.holding({ language, department: "general", escalated: false, customerName: null, outOfScope: true });
    expect(text).toMatch(pattern);
    expect(text).not.toMatch(/\{\{|\}\}/);
    // Escalation still comes first: its faster promise.
    expect(messages.holding({ language, department: "general", escalated: true, customerName: null, outOfScope: true })).toBe(
      messages.holding({ language, department: "general", escalated: true, customerName: null }),
    );
  });
});
