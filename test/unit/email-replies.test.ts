import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../config/settings.js";
import { decideAutoReply } from "../../connectors/email/replies.js";
import { RulesError, parseRules } from "../../processors/route/rules-file.js";
import type { InquiryResponse } from "../../schemas/types.generated.js";

const FILE = "config/routing-rules.yaml";
const DEFAULT = readFileSync(path.join(REPO_ROOT, FILE), "utf8");
const withAutoReply = (section: string) => DEFAULT.replace(/^auto_reply:[\s\S]*$/m, section);

const on = parseRules(
  withAutoReply("auto_reply:\n  enabled: true\n  strategies: [template, retrieval]\n  intents: { Track_Order: 0.8 }\n"),
  FILE,
).autoReply;

const response = (
  strategy: InquiryResponse["strategy"],
  metadata: Record<string, string> = {},
  replyTo: string | null = "dana@example.com",
): InquiryResponse => ({
  inquiry_id: "i-1",
  envelope: {
    channel: "email",
    source_id: "<a@example.com>",
    thread_id: "<a@example.com>",
    customer: { id: null, email: replyTo, name: null, tier: null },
    received_at: 0,
    reply_to: replyTo,
    metadata,
  },
  strategy,
  text: "Your order is on its way.",
  sources: [],
  department: "logistics",
  model: null,
  responded_at: 0,
});

describe("auto_reply rules", () => {
  it("are off in the default rules file, and off when the section is left out", () => {
    expect(parseRules(DEFAULT, FILE).autoReply.enabled).toBe(false);
    const without = parseRules(withAutoReply(""), FILE).autoReply;
    expect(without).toEqual({ enabled: false, strategies: new Set(["template"]), intents: new Map() });
  });

  it("refuse a hand-off strategy and a confidence outside 0..1, with the line", () => {
    const bad = withAutoReply("auto_reply:\n  enabled: true\n  strategies: [human]\n  intents: { track_order: 1.5 }\n");
    let error: unknown;
    try {
      parseRules(bad, FILE);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RulesError);
    const reasons = (error as RulesError).problems.map((p) => p.reason).join("\n");
    expect(reasons).toContain("auto_reply.strategies.0");
    expect(reasons).toContain("auto_reply.intents.track_order");
  });
});

describe("decideAutoReply", () => {
  const sure = { intent: "track_order", confidence: 0.93 };

  it("sends an allowed strategy's reply for a listed intent at or above its confidence (intents case-insensitive)", () => {
    expect(decideAutoReply(on, response("template"), sure)).toEqual({ send: true });
    expect(decideAutoReply(on, response("retrieval"), { intent: "TRACK_ORDER", confidence: 0.8 })).toEqual({
      send: true,
    });
  });

  it("keeps every other reply a draft, saying why", () => {
    const off = parseRules(DEFAULT, FILE).autoReply;
    expect(decideAutoReply(off, response("template"), sure)).toEqual({ send: false, reason: "draft" });
    expect(decideAutoReply(on, response("human"), sure)).toEqual({ send: false, reason: "strategy" });
    expect(decideAutoReply(on, response("llm"), sure)).toEqual({ send: false, reason: "strategy" });
    expect(decideAutoReply(on, response("template", { auto_submitted: "true" }), sure)).toEqual({
      send: false,
      reason: "automatic_sender",
    });
    expect(decideAutoReply(on, response("template", {}, null), sure)).toEqual({ send: false, reason: "no_address" });
    expect(decideAutoReply(on, response("template"), undefined)).toEqual({ send: false, reason: "no_classification" });
    expect(decideAutoReply(on, response("template"), { intent: "complaint", confidence: 0.99 })).toEqual({
      send: false,
      reason: "intent",
    });
    expect(decideAutoReply(on, response("template"), { intent: "track_order", confidence: 0.79 })).toEqual({
      send: false,
      reason: "low_confidence",
    });
  });
});
