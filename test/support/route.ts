import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import type pg from "pg";
import { REPO_ROOT } from "../../config/settings.js";
import type {
  InquiryClassified,
  InquiryCleaned,
  InquirySentiment,
  InquiryUrgency,
  RouteTimeout,
} from "../../schemas/types.generated.js";
import type { ProcessorDeclaration, TopicDeclaration, Topology } from "../../streams/topology.js";
import { URGENCY_FEATURES, type CombinationWeights, type UrgencyFeature } from "../../processors/urgency/combination.js";

/**
 * A PostgreSQL schema of its own holding route's tables, migrated as migrate() does (the file
 * run with the schema as search_path), so concurrent test runs and the application never share
 * join state.
 */
export async function createRouteSchema(pool: pg.Pool): Promise<string> {
  const schema = `route_test_${randomUUID().slice(0, 8)}`;
  const migration = readFileSync(path.join(REPO_ROOT, "storage", "migrations", "002_route_join.sql"), "utf8");
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.query(`SET LOCAL search_path TO ${schema}`);
    await client.query(migration);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK");
    throw error;
  } finally {
    client.release();
  }
  return schema;
}

export async function dropRouteSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}

/** route's inputs and output under names unique to one test run, with the real topics' schemas. */
export function routeTestTopology(label: string): { topology: Topology; processor: ProcessorDeclaration } {
  const id = `${label}-${randomUUID().slice(0, 8)}`;
  const topic = (schema: string): TopicDeclaration => ({
    name: `test.${id}.${schema}`,
    description: schema,
    partitions: 3,
    retentionMs: 86_400_000,
    compacted: false,
    valueSchema: schema,
  });
  const inputs = [
    "inquiries.cleaned",
    "inquiries.classified",
    "inquiries.sentiment",
    "inquiries.urgency",
    "route.timeouts",
  ].map(topic);
  const output = topic("inquiries.routed");
  const processor: ProcessorDeclaration = {
    name: `test-route-${id}`,
    description: "route under test",
    inputs: inputs.map((t) => t.name),
    outputs: [output.name],
    metricsPort: 0,
  };
  return { topology: { name: `test-${id}`, topics: [...inputs, output], processors: [processor], chains: [], connectors: [] }, processor };
}

/** The parts route joins, for one inquiry, as the upstream processors would write them. */
/**
 * An urgency combination that keeps the urgency part's level (model weight 10, thresholds halfway
 * between the levels' scores) and counts outage, asap, deadline and repeat contact as small raises:
 * route tests that are about routing, not about the fitted weights, use it.
 */
export const LEVEL_AS_IS: CombinationWeights = {
  weights: Object.fromEntries(
    URGENCY_FEATURES.map((f) => [f, f === "model" ? 10 : ["signal:outage", "signal:asap", "signal:deadline", "signal:repeat_contact"].includes(f) ? 1 : 0]),
  ) as Record<UrgencyFeature, number>,
  thresholds: [5, 15, 25],
};

export interface InquiryParts {
  readonly cleaned: InquiryCleaned;
  readonly classified: InquiryClassified;
  readonly sentiment: InquirySentiment;
  readonly urgency: InquiryUrgency;
  readonly timeout: RouteTimeout;
}

export interface PartsOverrides {
  readonly cleaned?: Partial<InquiryCleaned>;
  readonly classified?: Partial<InquiryClassified>;
  readonly sentiment?: Partial<InquirySentiment>;
  readonly urgency?: Partial<InquiryUrgency>;
  readonly tier?: string | null;
}

const AT = 1_750_000_000_000;

/** A confidently classified English inquiry (ACCOUNT / edit_account, neutral, medium) unless overridden. */
export function inquiryParts(inquiryId: string, overrides: PartsOverrides = {}): InquiryParts {
  return {
    cleaned: {
      inquiry_id: inquiryId,
      envelope: {
        channel: "email",
        source_id: `<${inquiryId}@mail.example>`,
        thread_id: null,
        customer: { id: "cust-1", email: null, name: null, tier: overrides.tier ?? null },
        received_at: AT,
        reply_to: null,
        metadata: { mailbox: "support" },
      },
      subject: "Changing my profile",
      text: "How do I change the name on my account?",
      language: "en",
      language_confidence: 0.97,
      redaction_count: 0,
      entities: [{ type: "account_id", value: "AC-1234" }],
      cleaned_at: AT + 5,
      ...overrides.cleaned,
    },
    classified: {
      inquiry_id: inquiryId,
      intent: "edit_account",
      category: "ACCOUNT",
      confidence: 0.92,
      out_of_scope: false,
      top_k: [
        { label: "edit_account", probability: 0.92 },
        { label: "switch_account", probability: 0.05 },
      ],
      model: "intent@3",
      classified_at: AT + 10,
      ...overrides.classified,
    },
    sentiment: {
      inquiry_id: inquiryId,
      label: "neutral",
      score: 0.81,
      probabilities: [
        { label: "negative", probability: 0.1 },
        { label: "neutral", probability: 0.81 },
        { label: "positive", probability: 0.09 },
      ],
      model: "sentiment@2",
      scored_at: AT + 11,
      ...overrides.sentiment,
    },
    urgency: {
      inquiry_id: inquiryId,
      level: "medium",
      score: 0.7,
      signals: [],
      model: "urgency@1",
      // No distribution: route counts the level as the model's (what a part recorded before them carries).
      probabilities: [],
      drivers: [],
      scored_at: AT + 12,
      ...overrides.urgency,
    },
    timeout: { inquiry_id: inquiryId, first_seen_at: AT + 6, timed_out_at: AT + 5_006 },
  };
}
