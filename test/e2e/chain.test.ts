import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { datasetInquiries } from "../../cli/samples/index.js";
import type { InquiryReceived, InquiryRouted } from "../../schemas/types.generated.js";
import { countByKey, preparePipeline, startPipeline, watch, type Pipeline } from "./pipeline.js";

/**
 * The pipeline as `switchboard up` deploys it: the triage chain (clean → classify | sentiment |
 * urgency → route → respond in one process and one transaction) and the sinks. pipeline.test.ts
 * runs every processor alone; this file shows the chain writes exactly what they write.
 */
const endpoints = inject("endpoints");
const runId = `chain-${randomUUID().slice(0, 8)}`;
let pipeline: Pipeline;
let observed: Awaited<ReturnType<typeof watch>>;

/** Every topic the chain writes, and how many records each inquiry gets on it. */
const WRITTEN = {
  "inquiries.cleaned": 1,
  "inquiries.classified": 1,
  "inquiries.sentiment": 1,
  "inquiries.urgency": 1,
  "inquiries.routed": 1,
  "inquiries.responses": 1,
  // intent, category, sentiment, urgency
  "predictions.feedback": 4,
};

function tagged(inquiries: readonly InquiryReceived[], label: string): InquiryReceived[] {
  return inquiries.map((inquiry, i) => ({ ...inquiry, inquiry_id: `${runId}-${label}-${i}` }));
}

/** Per topic: inquiries missing, and inquiries with another count than WRITTEN says. */
function tally(label: string, sent: readonly InquiryReceived[]) {
  const wanted = new Set(sent.map((i) => i.inquiry_id));
  return Object.fromEntries(
    Object.entries(WRITTEN).map(([topic, each]) => {
      const counts = countByKey(observed.of(topic).filter((r) => r.key.includes(`-${label}-`)));
      return [topic, { missing: [...wanted].filter((id) => !counts.has(id)).length, wrongCount: [...counts].filter(([, n]) => n !== each).length }];
    }),
  );
}

const clean = Object.fromEntries(Object.keys(WRITTEN).map((topic) => [topic, { missing: 0, wrongCount: 0 }]));

beforeAll(async () => {
  await preparePipeline(endpoints);
  pipeline = await startPipeline(endpoints, {}, "chained");
  observed = await watch(pipeline.kafka, pipeline.codec, (key) => key.startsWith(runId));
}, 1_800_000);

afterAll(async () => {
  await observed?.close();
  await pipeline?.stop();
});

describe("the triage chain, end to end", () => {
  it("writes one record per inquiry to every topic of the chain (four predictions), each routed with every part, in one process", async () => {
    const inquiries = tagged([...datasetInquiries("bitext", 150, 4), ...datasetInquiries("tickets", 150, 4)], "flow");
    await pipeline.send(inquiries);
    const done = () => Object.values(tally("flow", inquiries)).every((t) => t.missing === 0);
    expect(await observed.until(done, 240_000, 3_000)).toBe(true);
    expect(tally("flow", inquiries)).toEqual(clean);
    const routed = observed.of("inquiries.routed").filter((r) => r.key.includes("-flow-"));
    expect(routed.filter((r) => (r.value as InquiryRouted).missing_parts.length > 0)).toEqual([]);
    expect([...pipeline.pids().keys()].sort()).toEqual(["archive", "drift", "feedback", "retrain", "search", "triage"]);
  });

  it("SIGKILLed twice mid-stream and restarted, the chain loses and duplicates nothing on any of its topics", async () => {
    const inquiries = tagged(datasetInquiries("bitext", 500, 8), "kill");
    const sending = (async () => {
      for (let i = 0; i < inquiries.length; i += 25) {
        await pipeline.send(inquiries.slice(i, i + 25));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    for (const name of ["triage", "archive", "triage"]) {
      await new Promise((resolve) => setTimeout(resolve, 500 + Math.random() * 1_000));
      pipeline.kill(name);
      await pipeline.start(name);
    }
    await sending;
    const done = () => Object.values(tally("kill", inquiries)).every((t) => t.missing === 0);
    expect(await observed.until(done, 300_000, 5_000)).toBe(true);
    expect(tally("kill", inquiries)).toEqual(clean);
  });

  it("stopped gracefully, the chain hands over: its members' groups stand where it stopped, so run alone they redo nothing", async () => {
    await pipeline.terminate("triage");
    const admin = pipeline.kafka.admin();
    await admin.connect();
    try {
      const offsets = async (groupId: string, topic: string) =>
        new Map((await admin.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions.map((p) => [p.partition, p.offset]));
      expect(await offsets("clean", "inquiries.received")).toEqual(await offsets("triage", "inquiries.received"));
      const ends = new Map((await admin.fetchTopicOffsets("inquiries.cleaned")).map((p) => [p.partition, p.high]));
      for (const member of ["classify", "sentiment", "urgency", "route"]) expect(await offsets(member, "inquiries.cleaned"), member).toEqual(ends);
    } finally {
      await admin.disconnect();
      await pipeline.start("triage");
    }
  });
});
