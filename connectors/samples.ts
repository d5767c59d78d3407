import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Channel, Customer, InquiryReceived } from "../schemas/types.generated.js";

interface SampleInquiry {
  readonly channel: Channel;
  readonly customer: Partial<Customer>;
  readonly subject: string | null;
  readonly body: string;
}

/** Realistic inquiries written for the project, for demos and tests. */
export const SAMPLE_INQUIRIES: readonly SampleInquiry[] = JSON.parse(
  readFileSync(new URL("./sample-inquiries.json", import.meta.url), "utf8"),
) as SampleInquiry[];

/** A received inquiry as a connector would emit it. */
export function toInquiry(sample: SampleInquiry, receivedAt = Date.now()): InquiryReceived {
  const inquiryId = randomUUID();
  return {
    inquiry_id: inquiryId,
    envelope: {
      channel: sample.channel,
      source_id: `sample-${inquiryId}`,
      thread_id: null,
      customer: { id: null, email: null, name: null, tier: null, ...sample.customer },
      received_at: receivedAt,
      reply_to: sample.customer.email ?? null,
      metadata: { source: "samples" },
    },
    subject: sample.subject,
    body: sample.body,
    content_type: "text",
  };
}
