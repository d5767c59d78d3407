import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { decideRoute, type JoinedInquiry } from "../../processors/route/decision.js";
import type { Prediction } from "../../processors/route/join.js";
import { parseRules } from "../../processors/route/rules-file.js";
import { inquiryParts, LEVEL_AS_IS, type PartsOverrides } from "../support/route.js";

const RULES = parseRules(readFileSync(path.join(REPO_ROOT, "config/routing-rules.yaml"), "utf8"), "routing-rules.yaml");

function joined(overrides: PartsOverrides = {}, missing: readonly Prediction[] = []): JoinedInquiry {
  const parts = inquiryParts("inq-1", overrides);
  return {
    cleaned: parts.cleaned,
    classified: missing.includes("classified") ? undefined : parts.classified,
    sentiment: missing.includes("sentiment") ? undefined : parts.sentiment,
    urgency: missing.includes("urgency") ? undefined : parts.urgency,
    missing,
  };
}

describe("routing decision under the default rules", () => {
  it("routes a confident, calm inquiry to its category's department and queue, with the formula's priority", () => {
    expect(decideRoute(joined(), RULES, LEVEL_AS_IS)).toEqual({
      department: "accounts",
      queue: "accounts",
      priority_score: 10 + 15 + 5, // base + medium urgency + neutral sentiment
      escalated: false,
      escalation_reason: null,
      human_review: false,
      review_reasons: [],
      urgency: "medium",
      urgency_drivers: [{ name: "model:medium", weight: 10 }],
    });
  });

  it("lets an intent override its category, matching labels case-insensitively", () => {
    expect(
      decideRoute(joined({ classified: { intent: "Recover_Password", category: "account" } }), RULES, LEVEL_AS_IS).department,
    ).toBe("technical_support");
    expect(decideRoute(joined({ classified: { intent: "track_order", category: "order" } }), RULES, LEVEL_AS_IS).department).toBe(
      "orders",
    );
    expect(
      decideRoute(joined({ classified: { intent: "unknown_intent", category: "UNMAPPED" } }), RULES, LEVEL_AS_IS).department,
    ).toBe("general");
  });

  it("escalates critical urgency, and high urgency with negative sentiment, to the department's escalation queue", () => {
    const critical = decideRoute(joined({ urgency: { level: "critical" } }), RULES, LEVEL_AS_IS);
    expect(critical).toMatchObject({
      escalated: true,
      escalation_reason: "critical urgency",
      queue: "accounts-priority",
    });
    expect(critical.priority_score).toBe(10 + 55 + 5 + 10);

    expect(decideRoute(joined({ urgency: { level: "high" }, sentiment: { label: "negative" } }), RULES, LEVEL_AS_IS)).toMatchObject({
      escalated: true,
      escalation_reason: "high urgency from an unhappy customer",
    });
    expect(decideRoute(joined({ urgency: { level: "high" }, sentiment: { label: "neutral" } }), RULES, LEVEL_AS_IS).escalated).toBe(
      false,
    );
  });

  it("escalates on urgency signals and counts each signal in the priority", () => {
    const outage = decideRoute(
      joined({ urgency: { level: "medium", signals: ["outage", "asap"] }, sentiment: { label: "negative" } }),
      RULES,
      LEVEL_AS_IS,
    );
    expect(outage).toMatchObject({
      escalated: true,
      escalation_reason: "service outage reported by an unhappy customer",
    });
    expect(outage.priority_score).toBe(10 + 15 + 15 + 2 * 5 + 10);
    expect(decideRoute(joined({ urgency: { signals: ["outage"] } }), RULES, LEVEL_AS_IS).escalated).toBe(false);
  });

  it("gives tiers their boost and queue, escalates unhappy VIPs, and ignores unknown tiers", () => {
    expect(decideRoute(joined({ tier: "VIP" }), RULES, LEVEL_AS_IS)).toMatchObject({
      queue: "vip",
      priority_score: 30 + 20,
      escalated: false,
    });
    expect(decideRoute(joined({ tier: "premium" }), RULES, LEVEL_AS_IS)).toMatchObject({
      queue: "accounts",
      priority_score: 30 + 10,
    });
    expect(decideRoute(joined({ tier: "vip", sentiment: { label: "negative" } }), RULES, LEVEL_AS_IS)).toMatchObject({
      escalated: true,
      escalation_reason: "unhappy VIP customer",
      queue: "accounts-priority",
    });
    expect(decideRoute(joined({ tier: "gold" }), RULES, LEVEL_AS_IS)).toMatchObject({ queue: "accounts", priority_score: 30 });
  });

  it("sends unsupported languages to their language queue, or the international one, for review", () => {
    expect(decideRoute(joined({ cleaned: { language: "de" } }), RULES, LEVEL_AS_IS)).toMatchObject({
      department: "accounts",
      queue: "support-de",
      human_review: true,
      review_reasons: ["unsupported_language:de"],
    });
    expect(decideRoute(joined({ cleaned: { language: "it" } }), RULES, LEVEL_AS_IS)).toMatchObject({
      queue: "international",
      review_reasons: ["unsupported_language:it"],
    });
    expect(decideRoute(joined({ cleaned: { language: "und" } }), RULES, LEVEL_AS_IS)).toMatchObject({
      queue: "accounts",
      human_review: false,
    });
  });

  it("waives the unsupported-language review only where a multilingual model classified the inquiry in its language", () => {
    const inGerman = { cleaned: { language: "de" }, classified: { model: "intent-multilingual@20261204T0150Z-head-1" } };
    expect(decideRoute(joined(inGerman), RULES, LEVEL_AS_IS)).toMatchObject({
      queue: "support-de",
      human_review: false,
      review_reasons: [],
    });
    // Classified by the English model (the multilingual pair not served yet): flagged as before.
    expect(decideRoute(joined({ cleaned: { language: "de" }, classified: { model: "intent@3" } }), RULES, LEVEL_AS_IS)).toMatchObject({
      queue: "support-de",
      review_reasons: ["unsupported_language:de"],
    });
    // A language the rules do not list, whichever model answered.
    expect(
      decideRoute(joined({ cleaned: { language: "it" }, classified: { model: "intent-multilingual@1" } }), RULES, LEVEL_AS_IS),
    ).toMatchObject({ queue: "international", review_reasons: ["unsupported_language:it"] });
    // No classification arrived: nothing read it in its language.
    expect(decideRoute(joined(inGerman, ["classified"]), RULES, LEVEL_AS_IS).review_reasons).toEqual([
      "missing:classified",
      "unsupported_language:de",
    ]);
    // The model's own doubt still flags it.
    expect(
      decideRoute(joined({ ...inGerman, classified: { ...inGerman.classified, confidence: 0.3 } }), RULES, LEVEL_AS_IS).review_reasons,
    ).toEqual(["low_confidence:intent"]);
  });

  it("flags every unsupported language for review in rules without classified_in_language", () => {
    const yaml = readFileSync(path.join(REPO_ROOT, "config/routing-rules.yaml"), "utf8");
    const without = yaml.replace(/^ {2}classified_in_language:\n(?: {4}.*\n)+/m, "");
    expect(without).not.toMatch(/^ {2}classified_in_language:/m);
    const rules = parseRules(without, "routing-rules.yaml");
    const inGerman = { cleaned: { language: "de" }, classified: { model: "intent-multilingual@1" } };
    expect(decideRoute(joined(inGerman), rules, LEVEL_AS_IS).review_reasons).toEqual(["unsupported_language:de"]);
  });

  it("flags an out-of-scope intent for review and routes it to the default department", () => {
    expect(decideRoute(joined({ classified: { out_of_scope: true, confidence: 0.2 } }), RULES, LEVEL_AS_IS)).toMatchObject({
      department: "general",
      queue: "general",
      human_review: true,
      review_reasons: ["out_of_scope"],
    });
  });

  it("flags each calibrated confidence below its threshold (urgency: unsure whether to act today), and intents that ask for a person", () => {
    // The model torn between medium and high: P(act today) = 0.5 under LEVEL_AS_IS.
    const torn = [
      { label: "medium", probability: 0.5 },
      { label: "high", probability: 0.5 },
    ];
    const unsure = decideRoute(
      joined({ classified: { confidence: 0.49 }, sentiment: { score: 0.39 }, urgency: { probabilities: torn } }),
      RULES,
      LEVEL_AS_IS,
    );
    expect(unsure).toMatchObject({
      department: "accounts",
      human_review: true,
      review_reasons: ["low_confidence:intent", "low_confidence:sentiment", "low_confidence:urgency"],
    });
    expect(decideRoute(joined({ classified: { confidence: 0.5 } }), RULES, LEVEL_AS_IS).human_review).toBe(false);
    expect(
      decideRoute(joined({ classified: { intent: "contact_human_agent", category: "CONTACT" } }), RULES, LEVEL_AS_IS),
    ).toMatchObject({
      department: "customer_care",
      review_reasons: ["intent:contact_human_agent"],
    });
  });

  it("routes a timed-out join with what is known: missing parts flagged, unknown labels priced as the rules say", () => {
    expect(decideRoute(joined({}, ["classified", "sentiment", "urgency"]), RULES, LEVEL_AS_IS)).toEqual({
      department: "general",
      queue: "general",
      priority_score: 10 + 15 + 5, // unknown_urgency medium, unknown_sentiment neutral
      escalated: false,
      escalation_reason: null,
      human_review: true,
      review_reasons: ["missing:classified", "missing:sentiment", "missing:urgency"],
      urgency: null,
      urgency_drivers: [],
    });
    // A condition on a prediction that never arrived does not hold.
    expect(decideRoute(joined({ urgency: { level: "high" } }, ["sentiment"]), RULES, LEVEL_AS_IS).escalated).toBe(false);
  });

  it("caps the priority at 100", () => {
    const worst = joined({
      tier: "vip",
      urgency: { level: "critical", signals: ["outage", "asap", "deadline", "repeat_contact"] },
      sentiment: { label: "negative" },
    });
    expect(decideRoute(worst, RULES, LEVEL_AS_IS).priority_score).toBe(100);
  });
});
