import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { REPO_ROOT, loadConfig } from "../../config/settings.js";
import { joinedUrgency } from "../../processors/route/decision.js";
import type { PartName } from "../../processors/route/join.js";
import { createRouteMetrics, type RouteMetrics } from "../../processors/route/metrics.js";
import { createRouteProcess, type RouteTopics } from "../../processors/route/processor.js";
import { parseRules } from "../../processors/route/rules-file.js";
import { createJoinStore, type JoinStore } from "../../processors/route/store.js";
import { startSweeper } from "../../processors/route/sweeper.js";
import type { InquiryRouted, RouteTimeout } from "../../schemas/types.generated.js";
import { createPool } from "../../storage/postgres.js";
import type { Process } from "../../streams/processor.js";
import { createResources } from "../../streams/resources.js";
import { createRouteSchema, dropRouteSchema, inquiryParts, type InquiryParts } from "../support/route.js";
import { quietLog } from "../support/topics.js";

/** The sweeper's timers, as a host would give them. */
const timers = createResources(loadConfig(), inject("endpoints"), quietLog, "route-join-test");

/** Process-level tests of the join against the real PostgreSQL: no Kafka, the runtime's calls are simulated. */

const TOPICS: RouteTopics = {
  parts: {
    cleaned: "inquiries.cleaned",
    classified: "inquiries.classified",
    sentiment: "inquiries.sentiment",
    urgency: "inquiries.urgency",
    timeout: "route.timeouts",
  },
  routed: "inquiries.routed",
};
const FOUR: readonly PartName[] = ["cleaned", "classified", "sentiment", "urgency"];
const RULES = parseRules(readFileSync(path.join(REPO_ROOT, "config/routing-rules.yaml"), "utf8"), "routing-rules.yaml");

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

let pool: pg.Pool;
let schema: string;
let store: JoinStore;
let metrics: RouteMetrics;
let process: Process;

beforeAll(async () => {
  pool = createPool(inject("endpoints"), "route-join-test");
  schema = await createRouteSchema(pool);
  store = createJoinStore(pool, schema);
  metrics = createRouteMetrics();
  process = createRouteProcess({ topics: TOPICS, store, rules: () => RULES, metrics });
});

afterAll(async () => {
  await dropRouteSchema(pool, schema);
  await pool.end();
});

let offset = 0;
/** Hands one part to route as the runtime would, returning the routed records it emits. */
async function deliver(parts: InquiryParts, part: PartName): Promise<InquiryRouted[]> {
  const outputs = await process(
    {
      topic: TOPICS.parts[part],
      partition: 0,
      offset: String(offset++),
      key: parts.cleaned.inquiry_id,
      value: parts[part],
      headers: {},
      timestamp: Date.now(),
    },
    { log: quietLog },
  );
  for (const output of outputs) {
    expect(output.topic).toBe(TOPICS.routed);
    expect(output.key).toBe(parts.cleaned.inquiry_id);
  }
  return outputs.map((o) => o.value as InquiryRouted);
}

const newInquiry = (overrides?: Parameters<typeof inquiryParts>[1]) => inquiryParts(`inq-${randomUUID()}`, overrides);

describe("route join on PostgreSQL", () => {
  it("emits one routed record, on the last of the four parts, in every arrival order", async () => {
    for (const order of permutations(FOUR)) {
      const parts = newInquiry();
      const emitted: InquiryRouted[][] = [];
      for (const part of order) emitted.push(await deliver(parts, part));
      expect(emitted.slice(0, 3).flat(), order.join(",")).toEqual([]);
      expect(emitted[3], order.join(",")).toHaveLength(1);
      // route decides urgency with the served combination (processors/urgency/combination.json).
      const level = joinedUrgency(parts)!.level;
      expect(emitted[3]![0]).toMatchObject({
        inquiry_id: parts.cleaned.inquiry_id,
        envelope: parts.cleaned.envelope,
        text: parts.cleaned.text,
        entities: parts.cleaned.entities,
        department: "accounts",
        queue: "accounts",
        priority_score: RULES.priority.base + RULES.priority.urgency[level] + RULES.priority.sentiment.neutral,
        missing_parts: [],
        human_review: false,
        intent: "edit_account",
        category: "ACCOUNT",
        sentiment: "neutral",
        urgency: level,
      });
    }
  });

  it("commits exactly one routed record when any subset of the parts is redelivered after an aborted transaction", async () => {
    // Each part is consumed in its own batch; the batches of `aborted` parts abort (their outputs
    // are discarded) and are redelivered after every other part, the worst case for the trigger.
    for (const order of permutations(FOUR)) {
      for (let mask = 1; mask < 1 << FOUR.length; mask++) {
        const aborted = order.filter((_, i) => mask & (1 << i));
        const parts = newInquiry();
        const committed: InquiryRouted[] = [];
        for (const part of order) {
          const outputs = await deliver(parts, part);
          if (!aborted.includes(part)) committed.push(...outputs);
        }
        for (const part of aborted) committed.push(...(await deliver(parts, part)));
        expect(
          committed.map((r) => r.inquiry_id),
          `order ${order.join(",")}, aborted ${aborted.join(",")}`,
        ).toEqual([parts.cleaned.inquiry_id]);
      }
    }
  });

  it("emits exactly once when two instances consume the parts of the same inquiries at the same time", async () => {
    // Records of one inquiry come from different topics, whose partitions may be assigned to
    // different instances: each instance here has its own connections and sees half the parts.
    const otherPool = createPool(inject("endpoints"), "route-join-test-2");
    const other = createRouteProcess({
      topics: TOPICS,
      store: createJoinStore(otherPool, schema),
      rules: () => RULES,
      metrics,
    });
    try {
      const inquiries = Array.from({ length: 150 }, () => newInquiry());
      const instance = async (run: Process, parts: readonly PartName[]) => {
        let emitted: string[] = [];
        for (const inquiry of inquiries) {
          const outputs = await Promise.all(
            parts.map((part) =>
              run(
                {
                  topic: TOPICS.parts[part],
                  partition: 0,
                  offset: "0",
                  key: inquiry.cleaned.inquiry_id,
                  value: inquiry[part],
                  headers: {},
                  timestamp: 0,
                },
                { log: quietLog },
              ),
            ),
          );
          emitted = [...emitted, ...outputs.flat().map((o) => (o.value as InquiryRouted).inquiry_id)];
        }
        return emitted;
      };
      const [a, b] = await Promise.all([
        instance(process, ["cleaned", "sentiment"]),
        instance(other, ["classified", "urgency"]),
      ]);
      expect([...a, ...b].sort()).toEqual(inquiries.map((i) => i.cleaned.inquiry_id).sort());
    } finally {
      await otherPool.end();
    }
  });

  it("routes a timed-out join once, with the missing parts flagged for review, and ignores the parts that come late", async () => {
    const parts = newInquiry();
    expect(await deliver(parts, "classified")).toEqual([]);
    expect(await deliver(parts, "cleaned")).toEqual([]);
    const [routed, ...more] = await deliver(parts, "timeout");
    expect(more).toEqual([]);
    expect(routed).toMatchObject({
      department: "accounts",
      missing_parts: ["sentiment", "urgency"],
      human_review: true,
      review_reasons: ["missing:sentiment", "missing:urgency"],
      intent: "edit_account",
      sentiment: null,
      urgency: null,
    });

    const lateBefore = (await metrics.lateParts.get()).values.reduce((sum, v) => sum + v.value, 0);
    expect(await deliver(parts, "sentiment")).toEqual([]);
    expect(await deliver(parts, "urgency")).toEqual([]);
    expect(await deliver(parts, "timeout")).toHaveLength(1); // the trigger again: only after an abort, so it re-emits
    const lateAfter = (await metrics.lateParts.get()).values.reduce((sum, v) => sum + v.value, 0);
    expect(lateAfter - lateBefore).toBe(2);
  });

  it("waits for the cleaned inquiry when the timeout comes first, and routes on its arrival", async () => {
    const parts = newInquiry();
    expect(await deliver(parts, "urgency")).toEqual([]);
    expect(await deliver(parts, "timeout")).toEqual([]);
    const routed = await deliver(parts, "cleaned");
    expect(routed).toHaveLength(1);
    expect(routed[0]).toMatchObject({
      department: "general",
      missing_parts: ["classified", "sentiment"],
      urgency: joinedUrgency({ classified: undefined, sentiment: undefined, urgency: parts.urgency })!.level,
    });
    expect(await deliver(parts, "classified")).toEqual([]);
  });

  it("refuses a part whose key is not its inquiry id, before storing anything", async () => {
    const parts = newInquiry();
    await expect(
      process(
        {
          topic: TOPICS.parts.cleaned,
          partition: 0,
          offset: "0",
          key: "someone-else",
          value: parts.cleaned,
          headers: {},
          timestamp: 0,
        },
        { log: quietLog },
      ),
    ).rejects.toMatchObject({ name: "InvalidInputError", message: expect.stringContaining('key "someone-else"') });
    const { rows } = await pool.query(`SELECT 1 FROM ${schema}.route_joins WHERE inquiry_id = $1`, [
      parts.cleaned.inquiry_id,
    ]);
    expect(rows).toEqual([]);
  });

  it("sweeps: requests a timeout for each overdue join once, and collects routed and abandoned joins", async () => {
    const waiting = newInquiry();
    const complete = newInquiry();
    await deliver(waiting, "cleaned");
    for (const part of FOUR) await deliver(complete, part);
    const abandoned = newInquiry();
    await deliver(abandoned, "sentiment");
    await pool.query(
      `UPDATE ${schema}.route_joins SET first_seen_at = now() - interval '8 days' WHERE inquiry_id = $1`,
      [abandoned.cleaned.inquiry_id],
    );

    const sent: RouteTimeout[] = [];
    let clock = Date.now();
    const sweeper = startSweeper({
      store,
      joinTimeoutMs: 1,
      intervalMs: 60_000,
      send: async (timeouts) => void sent.push(...timeouts),
      metrics,
      log: quietLog,
      schedule: timers.schedule,
      now: () => clock,
    });
    try {
      await sweeper.sweep();
      expect(sent).toEqual([]); // within one join timeout of the start, the backlog may still complete joins
      clock += 1;
      await sweeper.sweep();
      await sweeper.sweep();
    } finally {
      await sweeper.stop();
    }
    const ours = (id: string) => sent.filter((t) => t.inquiry_id === id);
    expect(ours(waiting.cleaned.inquiry_id)).toHaveLength(1);
    expect(ours(complete.cleaned.inquiry_id)).toEqual([]);
    expect(await deliver(waiting, "timeout")).toHaveLength(1);

    // A day after routing, a join's state goes; so does one whose cleaned inquiry never came.
    await pool.query(
      `UPDATE ${schema}.route_joins SET decided_at = now() - interval '25 hours' WHERE inquiry_id = $1`,
      [complete.cleaned.inquiry_id],
    );
    const collector = startSweeper({
      store,
      joinTimeoutMs: 60_000,
      intervalMs: 60_000,
      send: async () => undefined,
      metrics,
      log: quietLog,
      schedule: timers.schedule,
    });
    await collector.sweep();
    await collector.stop();
    const { rows } = await pool.query<{ inquiry_id: string }>(
      `SELECT inquiry_id FROM ${schema}.route_joins WHERE inquiry_id = ANY($1) UNION ALL SELECT inquiry_id FROM ${schema}.route_parts WHERE inquiry_id = ANY($1)`,
      [[complete.cleaned.inquiry_id, abandoned.cleaned.inquiry_id]],
    );
    expect(rows).toEqual([]);
    const collected = Object.fromEntries(
      (await metrics.joinsCollected.get()).values.map((v) => [v.labels.outcome, v.value]),
    );
    expect(collected).toEqual({ routed: 1, abandoned: 1 });
  });
});
