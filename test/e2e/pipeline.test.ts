import { randomUUID } from "node:crypto";
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Client as Elasticsearch } from "@elastic/elasticsearch";
import pg from "pg";
import { parse, stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { countArchived } from "../../sinks/archive-store.js";
import { joinedUrgency } from "../../processors/route/decision.js";
import { SAMPLE_INQUIRIES, datasetInquiries, toInquiry } from "../../cli/samples/index.js";
import { REPO_ROOT } from "../../config/settings.js";
import type { InquiryClassified, InquiryReceived, InquiryResponse, InquiryRouted, InquirySentiment, InquiryUrgency } from "../../schemas/types.generated.js";
import { countByKey, preparePipeline, startPipeline, watch, type Pipeline } from "./pipeline.js";
import { elasticsearchOptions, postgresOptions } from "../../config/security.js";

const endpoints = inject("endpoints");
const runId = `e2e-${randomUUID().slice(0, 8)}`;
const ours = (key: string) => key.startsWith(runId);
let pipeline: Pipeline;
let observed: Awaited<ReturnType<typeof watch>>;
let rulesFile: string;

/** Inquiries with ids of this run, so that records of other runs on the shared topics are ignored. */
function tagged(inquiries: readonly InquiryReceived[], label: string): InquiryReceived[] {
  return inquiries.map((inquiry, i) => ({ ...inquiry, inquiry_id: `${runId}-${label}-${i}` }));
}

const ids = (inquiries: readonly InquiryReceived[]) => inquiries.map((i) => i.inquiry_id);
const answeredAll = (wanted: readonly string[]) => () => {
  const answered = new Set(observed.of("inquiries.responses").map((r) => r.key));
  return wanted.every((id) => answered.has(id));
};

beforeAll(async () => {
  await preparePipeline(endpoints);
  rulesFile = path.join(REPO_ROOT, ".stack", `routing-rules-${runId}.yaml`);
  copyFileSync(path.join(REPO_ROOT, "config", "routing-rules.yaml"), rulesFile);
  pipeline = await startPipeline(endpoints, { SWITCHBOARD_ROUTING_RULES: rulesFile, SWITCHBOARD_ROUTE_JOIN_TIMEOUT_MS: "15000" });
  observed = await watch(pipeline.kafka, pipeline.codec, ours);
}, 1_800_000);

afterAll(async () => {
  await observed?.close();
  await pipeline?.stop();
});

describe("the pipeline, end to end", () => {
  it("a few hundred inquiries in: one routed decision and one response each, joined correctly, every prediction recorded, stored in PostgreSQL and Elasticsearch", async () => {
    const inquiries = tagged(
      [...SAMPLE_INQUIRIES.map((s) => toInquiry(s)), ...datasetInquiries("bitext", 120, 1), ...datasetInquiries("tickets", 80, 1), ...datasetInquiries("airline", 60, 1)],
      "main",
    );
    await pipeline.send(inquiries);
    expect(await observed.until(answeredAll(ids(inquiries)))).toBe(true);

    for (const topic of ["inquiries.cleaned", "inquiries.classified", "inquiries.sentiment", "inquiries.urgency", "inquiries.routed", "inquiries.responses"]) {
      const counts = countByKey(observed.of(topic).filter((r) => r.key.includes("-main-")));
      expect([...counts.values()].every((n) => n === 1), `${topic}: one record per inquiry`).toBe(true);
      expect(counts.size, topic).toBe(inquiries.length);
    }
    const byId = <T>(topic: string) => new Map(observed.of(topic).map((r) => [r.key, r.value as T]));
    const classified = byId<InquiryClassified>("inquiries.classified");
    const sentiments = byId<InquirySentiment>("inquiries.sentiment");
    const urgencies = byId<InquiryUrgency>("inquiries.urgency");
    for (const { key, value } of observed.of("inquiries.routed").filter((r) => r.key.includes("-main-"))) {
      const routed = value as InquiryRouted;
      expect(routed.inquiry_id).toBe(key);
      expect(routed.missing_parts).toEqual([]);
      expect(routed.intent).toBe(classified.get(key)!.intent);
      expect(routed.category).toBe(classified.get(key)!.category);
      expect(routed.sentiment).toBe(sentiments.get(key)!.label);
      // route decides urgency again with intent and sentiment joined (processors/route/decision.ts).
      const decided = joinedUrgency({ classified: classified.get(key), sentiment: sentiments.get(key), urgency: urgencies.get(key) })!;
      expect(routed.urgency).toBe(decided.level);
      expect(routed.urgency_drivers).toEqual(decided.drivers);
    }
    const feedback = countByKey(observed.of("predictions.feedback").filter((r) => r.key.includes("-main-")));
    // intent, category, sentiment, urgency: four predictions per inquiry, each recorded once.
    expect([...feedback.values()].every((n) => n === 4)).toBe(true);
    expect(feedback.size).toBe(inquiries.length);

    const db = new pg.Pool(postgresOptions(endpoints));
    const es = new Elasticsearch(elasticsearchOptions(endpoints));
    try {
      const deadline = Date.now() + 60_000;
      let archived = await countArchived(db, ids(inquiries));
      while (Date.now() < deadline && archived.responses < inquiries.length) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        archived = await countArchived(db, ids(inquiries));
      }
      expect(archived).toEqual({ inquiries: inquiries.length, predictions: 4 * inquiries.length, routingDecisions: inquiries.length, responses: inquiries.length });
      const routedRows = await db.query<{ inquiry_id: string; department: string }>(
        "SELECT inquiry_id, department FROM switchboard.routing_decisions WHERE inquiry_id = ANY($1)",
        [ids(inquiries)],
      );
      const routed = byId<InquiryRouted>("inquiries.routed");
      for (const row of routedRows.rows) expect(row.department).toBe(routed.get(row.inquiry_id)!.department);

      const index = process.env.SWITCHBOARD_INQUIRY_INDEX ?? "switchboard-inquiries";
      let documents = 0;
      while (Date.now() < deadline) {
        await es.indices.refresh({ index });
        documents = (await es.count({ index, query: { terms: { inquiry_id: ids(inquiries) } } })).count;
        const withRouting = (await es.count({ index, query: { bool: { filter: [{ terms: { inquiry_id: ids(inquiries) } }, { exists: { field: "department" } }] } } })).count;
        if (documents === inquiries.length && withRouting === inquiries.length) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(documents).toBe(inquiries.length);
    } finally {
      await db.end();
      await es.close();
    }
  });

  it("kill any processor with SIGKILL mid-stream and restart it: no inquiry lost, no decision or response duplicated", async () => {
    const inquiries = tagged(datasetInquiries("bitext", 400, 2), "kill");
    const sending = (async () => {
      for (let i = 0; i < inquiries.length; i += 20) {
        await pipeline.send(inquiries.slice(i, i + 20));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    for (const name of ["clean", "classify", "route", "respond", "archive"]) {
      await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 700));
      pipeline.kill(name);
      await pipeline.start(name);
    }
    await sending;
    expect(await observed.until(answeredAll(ids(inquiries)), 240_000, 5_000)).toBe(true);
    for (const topic of ["inquiries.cleaned", "inquiries.routed", "inquiries.responses"]) {
      const counts = countByKey(observed.of(topic).filter((r) => r.key.includes("-kill-")));
      expect(counts.size, topic).toBe(inquiries.length);
      expect([...counts.entries()].filter(([, n]) => n > 1), `${topic}: duplicates`).toEqual([]);
    }
    const feedback = countByKey(observed.of("predictions.feedback").filter((r) => r.key.includes("-kill-")));
    expect([...feedback.values()].filter((n) => n !== 4)).toEqual([]);
  });

  it("a broken rules file does not stop routing; a reload applies a good one", async () => {
    writeFileSync(rulesFile, "departments:\n  orders: { queue: [unclosed\n");
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const duringBreak = tagged(SAMPLE_INQUIRIES.slice(0, 5).map((s) => toInquiry(s)), "broken");
    await pipeline.send(duringBreak);
    expect(await observed.until(answeredAll(ids(duringBreak)))).toBe(true);

    const rules = parse(readFileSync(path.join(REPO_ROOT, "config", "routing-rules.yaml"), "utf8")) as Record<string, Record<string, string>>;
    for (const mapping of ["categories", "intents"]) for (const key of Object.keys(rules[mapping]!)) rules[mapping]![key] = "customer_care";
    rules.default_department = "customer_care" as never;
    writeFileSync(rulesFile, stringify(rules));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const afterReload = tagged(SAMPLE_INQUIRIES.slice(0, 5).map((s) => toInquiry(s)), "reloaded");
    await pipeline.send(afterReload);
    expect(await observed.until(answeredAll(ids(afterReload)))).toBe(true);
    const departments = observed.of("inquiries.routed").filter((r) => r.key.includes("-reloaded-")).map((r) => (r.value as InquiryRouted).department);
    expect(departments).toEqual(Array(5).fill("customer_care"));
  });

  it("bad input gets a DLQ record with its reason or safe handling, never a crash or a silent drop", async () => {
    const base = toInquiry(SAMPLE_INQUIRIES[0]!);
    const make = (label: string, body: string, content_type: "text" | "html" = "text"): InquiryReceived => ({ ...base, inquiry_id: `${runId}-bad-${label}`, subject: null, body, content_type });
    const safe = [
      make("html", "<html><script>alert('x')</script><style>p{}</style><p>Where is my order 48213? It is late.</p></html>", "html"),
      make("utf8", "My refund \uFFFD\uFFFD has not arrived, order 77120"),
      make("language", "Buongiorno, vorrei sapere quando arriverà il mio ordine numero 55123, grazie mille"),
    ];
    // Just under the broker's record limit, sent alone; the text models and stores see is capped.
    const huge = make("huge", "Where is my order 48213? ".repeat(40_000));
    const refused = [make("empty", "   ")];
    await pipeline.send([...safe, ...refused]);
    await pipeline.send([huge]);
    safe.push(huge);
    const invalidUtf8 = Buffer.concat([pipeline.codec.encode("inquiries.received", make("bytes", "x")).subarray(0, 5), Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28])]);
    await pipeline.sendRaw([{ key: `${runId}-bad-binary`, value: invalidUtf8 }]);

    const dlq = () => observed.of("inquiries.received.dlq");
    expect(await observed.until(() => answeredAll(ids(safe))() && dlq().length >= refused.length + 1)).toBe(true);
    const reasons = new Map(dlq().map((r) => [r.key, r.headers]));
    for (const key of [...ids(refused), `${runId}-bad-binary`]) {
      expect(reasons.get(key)?.["switchboard.error.message"], key).toBeTruthy();
    }
    const responses = new Map(observed.of("inquiries.responses").map((r) => [r.key, r.value as InquiryResponse]));
    expect(responses.get(`${runId}-bad-html`)!.text).not.toMatch(/alert|<script/);
    const routed = observed.of("inquiries.routed").find((r) => r.key === `${runId}-bad-language`)!.value as InquiryRouted;
    expect(routed.language).toBe("it");
    expect(routed.human_review).toBe(true);
    const cleanedHuge = observed.of("inquiries.cleaned").find((r) => r.key === huge.inquiry_id)!.value as { text: string };
    expect(cleanedHuge.text.length).toBeLessThanOrEqual(10_000);
  });

  it("personal data never reaches PostgreSQL, Elasticsearch or the logs unredacted", async () => {
    const secrets = ["jane.roe@example.org", "+44 20 7946 0958", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00"];
    const inquiries = tagged(
      [toInquiry({ channel: "email", customer: { id: "c-pii" }, subject: "Refund", body: `Please refund order 48213 to card ${secrets[2]} or IBAN ${secrets[3]}. Call me on ${secrets[1]} or write to ${secrets[0]}.` })],
      "pii",
    );
    await pipeline.send(inquiries);
    expect(await observed.until(answeredAll(ids(inquiries)))).toBe(true);
    const db = new pg.Pool(postgresOptions(endpoints));
    const es = new Elasticsearch(elasticsearchOptions(endpoints));
    try {
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const rows = await db.query(
        `SELECT row_to_json(i)::text AS row FROM switchboard.inquiries i WHERE inquiry_id = ANY($1)
         UNION ALL SELECT row_to_json(r)::text FROM switchboard.responses r WHERE inquiry_id = ANY($1)
         UNION ALL SELECT row_to_json(d)::text FROM switchboard.routing_decisions d WHERE inquiry_id = ANY($1)
         UNION ALL SELECT row_to_json(p)::text FROM switchboard.predictions p WHERE inquiry_id = ANY($1)
         UNION ALL SELECT row_to_json(f)::text FROM switchboard.feedback_predictions f WHERE inquiry_id = ANY($1)
         UNION ALL SELECT row_to_json(l)::text FROM switchboard.labels l WHERE inquiry_id = ANY($1)`,
        [ids(inquiries)],
      );
      expect(rows.rows.length).toBeGreaterThanOrEqual(3);
      const index = process.env.SWITCHBOARD_INQUIRY_INDEX ?? "switchboard-inquiries";
      await es.indices.refresh({ index });
      const documents = await es.search({ index, query: { terms: { inquiry_id: ids(inquiries) } } });
      expect(documents.hits.hits.length).toBe(1);
      const logDir = path.join(pipeline.logDir, "logs", "processors");
      const logs = readdirSync(logDir).map((f) => readFileSync(path.join(logDir, f), "utf8"));
      // Every process of the deployment wrote a log, and every one is searched.
      expect(logs.length).toBe(pipeline.pids().size);
      const stored = [...rows.rows.map((r: { row: string }) => r.row), JSON.stringify(documents.hits.hits), ...logs].join("\n");
      for (const secret of secrets) expect(stored.includes(secret), secret).toBe(false);
      const routed = observed.of("inquiries.routed").find((r) => r.key === inquiries[0]!.inquiry_id)!.value as InquiryRouted;
      for (const secret of secrets) expect(routed.text.includes(secret), secret).toBe(false);
    } finally {
      await db.end();
      await es.close();
    }
  });
});
