import type { InquiryRouted } from "../../schemas/types.generated.js";

/** A routed inquiry as respond reads it: an email customer asking where order 48213 is. */
export function routedInquiry(overrides: Partial<InquiryRouted> = {}): InquiryRouted {
  return {
    inquiry_id: "inq-1",
    envelope: {
      channel: "email",
      source_id: "m-1",
      thread_id: null,
      customer: { id: "c-1", email: "dana@example.com", name: "Dana", tier: null },
      received_at: 1_790_000_000_000,
      reply_to: null,
      metadata: {},
    },
    text: "Hi, where is my order 48213? It still has not arrived.",
    language: "en",
    entities: [{ type: "order_number", value: "48213" }],
    department: "orders",
    queue: "orders",
    priority_score: 40,
    escalated: false,
    escalation_reason: null,
    human_review: false,
    review_reasons: [],
    missing_parts: [],
    intent: "track_order",
    category: "ORDER",
    sentiment: "neutral",
    urgency: "medium",
    urgency_drivers: [],
    routed_at: 1_790_000_000_100,
    ...overrides,
  };
}
