import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { RulesError, parseRules } from "../../processors/route/rules-file.js";

const FILE = "config/routing-rules.yaml";
const DEFAULT = readFileSync(path.join(REPO_ROOT, FILE), "utf8");

/** The 11 categories of the Bitext data set the default intent models are trained on. */
const BITEXT_CATEGORIES = [
  "ACCOUNT",
  "CANCEL",
  "CONTACT",
  "DELIVERY",
  "FEEDBACK",
  "INVOICE",
  "ORDER",
  "PAYMENT",
  "REFUND",
  "SHIPPING",
  "SUBSCRIPTION",
];

/** 1-based number of the first line that starts with `needle`, indentation aside. */
function lineOf(text: string, needle: string): number {
  const index = text.split("\n").findIndex((line) => line.trimStart().startsWith(needle.trimStart()));
  if (index < 0) throw new Error(`"${needle}" is not in the text`);
  return index + 1;
}

function replaceLine(text: string, needle: string, replacement: string): string {
  const lines = text.split("\n");
  lines[lineOf(text, needle) - 1] = replacement;
  return lines.join("\n");
}

function refusal(text: string): RulesError {
  try {
    parseRules(text, FILE);
  } catch (error) {
    if (error instanceof RulesError) return error;
    throw error;
  }
  throw new Error("the rules were accepted");
}

describe("routing rules file", () => {
  it("accepts the default rules, with a department for every Bitext category", () => {
    const rules = parseRules(DEFAULT, FILE);
    for (const category of BITEXT_CATEGORIES) {
      expect(rules.categories.get(category.toLowerCase()), category).toBeDefined();
      expect(rules.categories.get(category.toLowerCase())).not.toBe(rules.defaultDepartment);
    }
    expect(rules.intents.get("recover_password")?.name).toBe("technical_support");
    expect(rules.digest).toMatch(/^[0-9a-f]{12}$/);
  });

  it("refuses a YAML syntax error with its line, column and the parser's reason", () => {
    const nested = replaceLine(DEFAULT, "  ORDER: orders", "  ORDER: orders: more");
    const line = lineOf(nested, "ORDER: orders: more");
    expect(refusal(nested).problems).toEqual([
      { line, column: 10, reason: "YAML: Nested mappings are not allowed in compact mappings" },
    ]);
    expect(refusal(nested).message).toContain(`${FILE}:${line}:10: YAML: Nested mappings`);

    const tab = replaceLine(DEFAULT, "  ORDER: orders", "\tORDER: orders");
    expect(refusal(tab).problems).toEqual([{ line, column: 1, reason: "YAML: Tabs are not allowed as indentation" }]);
  });

  it("refuses a mapping to an unknown department at the line of the mapping", () => {
    const text = replaceLine(DEFAULT, "  PAYMENT: billing", "  PAYMENT: biling");
    expect(refusal(text).problems).toEqual([
      {
        line: lineOf(text, "PAYMENT: biling"),
        column: 12,
        reason: expect.stringMatching(/^categories\.PAYMENT: unknown department "biling" \(declared: accounts, .*\)$/),
      },
    ]);
    const intents = replaceLine(DEFAULT, "  recover_password: technical_support", "  recover_password: it");
    expect(refusal(intents).problems[0]).toMatchObject({
      line: lineOf(intents, "recover_password: it"),
      reason: expect.stringContaining('unknown department "it"'),
    });
  });

  it("refuses an unknown key at the line of the key", () => {
    const text = replaceLine(DEFAULT, "  out_of_scope: true", "  out_of_scop: true");
    expect(refusal(text).problems).toEqual([
      {
        line: lineOf(text, "review:"),
        column: 1,
        reason: expect.stringMatching(/^review\.out_of_scope: Invalid input: expected boolean/),
      },
      { line: lineOf(text, "out_of_scop:"), column: 3, reason: 'review: unknown key "out_of_scop"' },
    ]);
  });

  it("refuses a value of the wrong type or range at the line of the value", () => {
    const text = replaceLine(
      DEFAULT,
      "  min_confidence:",
      "  min_confidence: { intent: 1.5, sentiment: 0.4, urgency: high }",
    );
    const problems = refusal(text).problems;
    const line = lineOf(text, "min_confidence: { intent: 1.5");
    const column = (needle: string) => text.split("\n")[line - 1]!.indexOf(needle) + 1;
    expect(problems).toEqual([
      { line, column: column("1.5"), reason: expect.stringMatching(/^review\.min_confidence\.intent: Too big/) },
      {
        line,
        column: column("high"),
        reason: expect.stringMatching(/^review\.min_confidence\.urgency: Invalid input: expected number/),
      },
    ]);
  });

  it("refuses an escalation rule without conditions, with an unknown level, or naming an unknown tier", () => {
    const empty = refusal(replaceLine(DEFAULT, "  - when: { urgency: [critical] }", "  - when: {}"));
    expect(empty.problems[0]).toMatchObject({
      line: lineOf(DEFAULT, "- when: { urgency: [critical] }"),
      reason: expect.stringContaining("needs at least one of"),
    });

    const level = replaceLine(DEFAULT, "  - when: { urgency: [critical] }", "  - when: { urgency: [urgent] }");
    expect(refusal(level).problems[0]).toMatchObject({
      line: lineOf(level, "- when: { urgency: [urgent] }"),
      reason: expect.stringContaining("escalation.0.when.urgency.0"),
    });

    const tier = replaceLine(
      DEFAULT,
      "  - when: { tier: [vip], sentiment: [negative] }",
      "  - when: { tier: [gold], sentiment: [negative] }",
    );
    expect(refusal(tier).problems).toEqual([
      {
        line: lineOf(tier, "- when: { tier: [gold]"),
        column: 20,
        reason: 'escalation.3.when.tier.0: unknown tier "gold"',
      },
    ]);
  });

  it("refuses keys that differ only in case, as names are matched case-insensitively", () => {
    const text = replaceLine(DEFAULT, "  ORDER: orders", "  ORDER: orders\n  order: billing");
    expect(refusal(text).problems).toEqual([
      {
        line: lineOf(text, "order: billing"),
        column: 10,
        reason: 'categories.order: "order" repeats another key of categories (names are case-insensitive)',
      },
    ]);
  });

  it("refuses a missing section at the line of the enclosing map, and an empty or non-map file", () => {
    const noPriority = DEFAULT.slice(0, DEFAULT.indexOf("\npriority:"));
    expect(refusal(noPriority).problems).toEqual([
      { line: lineOf(DEFAULT, "version: 1"), column: 1, reason: expect.stringMatching(/^priority: Invalid input/) },
    ]);
    expect(refusal("").problems[0]).toMatchObject({ line: 1 });
    expect(refusal("- a list\n").problems[0]).toMatchObject({
      line: 1,
      reason: expect.stringContaining("expected object"),
    });
  });
});
