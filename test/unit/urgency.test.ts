import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  decideUrgency,
  loadCombination,
  URGENCY_FEATURES,
  urgencyFeatures,
  type CombinationWeights,
  type UrgencyFeature,
} from "../../processors/urgency/combination.js";
import { allSignals, textSignals } from "../../processors/urgency/signals.js";

const received = Date.parse("2026-11-20T09:00:00Z");

describe("urgency signals", () => {
  it.each([
    ["Our checkout page is down since this morning, customers cannot pay", ["outage"]],
    ["Ich kann mich nicht anmelden, das Portal funktioniert nicht. Bitte dringend helfen!", ["outage", "asap"]],
    ["Please send the invoice by Friday, it is for our year-end deadline", ["deadline"]],
    ["Necesito el reembolso lo antes posible", ["asap"]],
    ["La plateforme est hors service depuis hier", ["outage"]],
    ["I would like to know your opening hours", []],
    ["We turned down the offer and want a down payment refund", []],
    ["If this is not refunded by Friday my lawyer will be in touch", ["deadline", "legal"]],
    ["The kettle caught fire on the first use, there was smoke everywhere", ["safety"]],
    ["Someone else logged into my account and placed orders I didn't make", ["fraud"]],
    ["This is the third time I'm writing about the same order", ["repeat_contact"]],
    ["No rush at all, just wondering about your return policy", ["no_rush"]],
    ["Le produit est dangereux, mon fils s'est blessé", ["safety"]],
    ["Fui cobrado duas vezes e não autorizei", ["fraud"]],
  ])("%s", (text, expected) => {
    expect(textSignals(text, [], received)).toEqual(expected);
  });

  it("a date entity within three days is a deadline; a date months away is not", () => {
    expect(textSignals("Delivery needed on that date", [{ type: "date", value: "2026-11-22" }], received)).toEqual(["deadline"]);
    expect(textSignals("Delivery needed on that date", [{ type: "date", value: "2027-03-01" }], received)).toEqual([]);
    expect(textSignals("Delivery needed on that date", [{ type: "date", value: "not a date" }], received)).toEqual([]);
  });

  it("adds the context's signals in the fixed order: repeat contact from the history, vip from the tier", () => {
    const customer = { id: "c1", email: null, name: null, tier: "VIP" };
    expect(allSignals(["outage", "no_rush"], { repeatContact: true, customer })).toEqual(["outage", "repeat_contact", "no_rush", "vip"]);
    expect(allSignals(["repeat_contact"], { repeatContact: true, customer: { ...customer, tier: "standard" } })).toEqual(["repeat_contact"]);
  });
});

/** Model weight 1, thresholds at 0.5 / 1.5 / 2.5, outage +2, no_rush -1, negative sentiment +0.5, time-sensitive intent +1. */
function combination(): CombinationWeights {
  const weights = Object.fromEntries(URGENCY_FEATURES.map((f) => [f, 0])) as Record<UrgencyFeature, number>;
  Object.assign(weights, { model: 1, "signal:outage": 2, "signal:no_rush": -1, "sentiment:negative": 0.5, "intent:time_sensitive": 1 });
  return { weights, thresholds: [0.5, 1.5, 2.5] };
}

const medium = [
  { label: "medium", probability: 0.8 },
  { label: "low", probability: 0.1 },
  { label: "high", probability: 0.1 },
];

describe("urgency combination", () => {
  it("reads the model's expected level, the weighed signals, the intent's group and the sentiment", () => {
    const features = urgencyFeatures({
      model: medium,
      signals: ["outage", "vip"],
      intent: { label: "Payment_Issue", outOfScope: false },
      sentiment: "negative",
    });
    expect(features.model).toBeCloseTo(1.0);
    expect(features).toMatchObject({ "signal:outage": 1, "intent:time_sensitive": 1, "intent:action": 0, "sentiment:negative": 1 });
    // vip is recorded, not weighed (the labelling rules: a tier alone does not raise urgency).
    expect(Object.keys(features)).not.toContain("signal:vip");
    expect(urgencyFeatures({ model: medium, signals: [], intent: { label: "payment_issue", outOfScope: true } })["intent:out_of_scope"]).toBe(1);
    expect(urgencyFeatures({ model: medium, signals: [], intent: { label: "delivery_options", outOfScope: false } })).toMatchObject({
      "intent:time_sensitive": 0,
      "intent:action": 0,
    });
  });

  it("is an ordinal logistic model: probabilities sum to one, the level is the most probable, act-today is P(high or critical)", () => {
    const decision = decideUrgency({ model: medium, signals: [] }, combination());
    expect(decision.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1);
    // score 1: P(> low) = σ(0.5), P(> medium) = σ(-0.5), P(> high) = σ(-1.5)
    const s = (x: number) => 1 / (1 + Math.exp(-x));
    expect(decision.probabilities[0]).toBeCloseTo(1 - s(0.5));
    expect(decision.probabilities[3]).toBeCloseTo(s(-1.5));
    expect(decision.actToday).toBeCloseTo(s(-0.5));
    expect(decision.level).toBe("low");
    expect(decision.confidence).toBe(Math.max(...decision.probabilities));
  });

  it("raises with an outage, a time-sensitive intent and a negative tone, and lists what drove it, largest first", () => {
    const decision = decideUrgency(
      { model: medium, signals: ["outage"], intent: { label: "payment_issue", outOfScope: false }, sentiment: "negative" },
      combination(),
    );
    expect(decision.level).toBe("critical");
    expect(decision.drivers).toEqual([
      { name: "signal:outage", weight: 2 },
      { name: "intent:time_sensitive", weight: 1 },
      { name: "model:medium", weight: 1 },
      { name: "sentiment:negative", weight: 0.5 },
    ]);
  });

  it("lowers with no_rush and leaves out inputs that did not move it", () => {
    const decision = decideUrgency({ model: medium, signals: ["no_rush", "vip"], sentiment: "neutral" }, combination());
    expect(decision.level).toBe("low");
    expect(decision.drivers).toEqual([
      { name: "model:medium", weight: 1 },
      { name: "signal:no_rush", weight: -1 },
    ]);
  });

  it("refuses a model label that is not an urgency level", () => {
    expect(() => decideUrgency({ model: [{ label: "urgent-ish", probability: 1 }], signals: [] }, combination())).toThrow(
      /not one of low, medium, high, critical/,
    );
  });
});

describe("the weights file", () => {
  it("the served file has a weight for every input, increasing thresholds and one fit per fold", () => {
    const served = loadCombination();
    expect(Object.keys(served.weights).sort()).toEqual([...URGENCY_FEATURES].sort());
    expect(served.folds).toHaveLength(served.k);
    expect(served.fittedOn).toMatchObject({ rows: 380 });
  });

  it("under the served weights a failed payment from an unhappy customer is more urgent than a newsletter question", () => {
    const served = loadCombination();
    const low = [{ label: "low", probability: 1 }];
    const payment = decideUrgency(
      { model: low, signals: [], intent: { label: "payment_issue", outOfScope: false }, sentiment: "negative" },
      served,
    );
    const newsletter = decideUrgency(
      { model: low, signals: [], intent: { label: "newsletter_subscription", outOfScope: false }, sentiment: "neutral" },
      served,
    );
    expect(payment.actToday).toBeGreaterThan(newsletter.actToday);
    expect(payment.probabilities[0]).toBeLessThan(newsletter.probabilities[0]!);
    expect(payment.drivers.map((d) => d.name)).toEqual(expect.arrayContaining(["intent:time_sensitive", "sentiment:negative"]));
    // A fire is critical or high whatever the model says; "no rush" keeps a question low.
    expect(["high", "critical"]).toContain(decideUrgency({ model: low, signals: ["safety"] }, served).level);
    expect(decideUrgency({ model: [{ label: "medium", probability: 1 }], signals: ["no_rush"] }, served).level).toBe("low");
  });

  it("refuses a file whose inputs are not the combination's", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "urgency-weights-"));
    const file = path.join(dir, "combination.json");
    const fit = { weights: [1], thresholds: [0, 1, 2] };
    writeFileSync(file, JSON.stringify({ features: ["model"], ...fit, folds: { k: 2, rule: "x", fits: [fit, fit] }, fitted_on: {} }));
    expect(() => loadCombination(file)).toThrow(/do not match the combination's inputs \(missing signal:outage/);
    writeFileSync(
      file,
      JSON.stringify({ features: [...URGENCY_FEATURES], weights: URGENCY_FEATURES.map(() => 0), thresholds: [1, 0, 2], folds: { k: 2, rule: "x", fits: [] }, fitted_on: {} }),
    );
    expect(() => loadCombination(file)).toThrow(/2 fold fits|0 fold fits for k = 2/);
  });
});
