import pino from "pino";
import { describe, expect, it } from "vitest";
import { toInquiry, SAMPLE_INQUIRIES } from "../../cli/samples/index.js";
import { loadConfig } from "../../config/settings.js";
import type { ServedAnswer, ServedModel } from "../../models/index.js";
import type { Manifest } from "../../models/manifest.js";
import type { LoadedModel } from "../../models/version.js";
import { classify } from "../../processors/classify.js";
import type { InquiryClassified, InquiryCleaned } from "../../schemas/types.generated.js";
import type { ProcessorDependencies } from "../../streams/processor.js";
import type { Resources } from "../../streams/resources.js";
import { findProcessor, TRIAGE } from "../../streams/topology.js";

/** A served model answering `confidence` for its label, from a version whose manifest has `point`. */
interface Version {
  readonly id: string;
  readonly threshold: number | null;
  readonly served?: boolean;
}

function servedModel(name: string, label: string, confidence: () => number, version: () => Version) {
  return {
    async predict(): Promise<ServedAnswer> {
      const { id, threshold, served } = version();
      const manifest = { operating_point: threshold === null ? null : { threshold, ...(served !== undefined && { served }) } } as unknown as Manifest;
      const loaded = { name, version: id, directory: `/models/${name}/${id}`, manifest } as unknown as LoadedModel;
      const c = confidence();
      return {
        production: {
          prediction: { label, confidence: c, ranked: [{ label, score: c }], model: `${name}@${id}` },
          version: loaded,
          latencyMs: 1,
        },
      };
    },
  } as unknown as ServedModel;
}

function cleaned(inquiryId: string): InquiryCleaned {
  const sample = toInquiry(SAMPLE_INQUIRIES[0]!);
  return {
    inquiry_id: inquiryId,
    envelope: sample.envelope,
    subject: sample.subject,
    text: sample.body,
    language: "en",
    language_confidence: 0.99,
    redaction_count: 0,
    entities: [],
    cleaned_at: Date.now(),
  };
}

describe("classify's out-of-scope operating point", () => {
  it("uses the answering version's manifest threshold, and warns once per version that has none", async () => {
    const entries: Record<string, unknown>[] = [];
    const log = pino({ level: "debug" }, { write: (line: string) => void entries.push(JSON.parse(line) as Record<string, unknown>) });
    let confidence = 0.6;
    let version: Version = { id: "v-point", threshold: 0.7 };
    const models: Record<string, ServedModel> = {
      intent: servedModel("intent", "track_order", () => confidence, () => version),
      category: servedModel("category", "ORDER", () => 0.9, () => ({ id: "c1", threshold: null })),
    };
    const config = { ...loadConfig(), outOfScopeThreshold: 0.4 };
    const resources = { productionModel: (name: string) => Promise.resolve(models[name]!) } as unknown as Resources;
    const deps = { topology: TRIAGE, config, log, resources } as unknown as ProcessorDependencies;
    const classifier = await classify(findProcessor("classify").processor, deps);
    let n = 0;
    const run = async () => {
      const inquiry = cleaned(`i-${n++}`);
      const input = { topic: "inquiries.cleaned", partition: 0, offset: "0", key: inquiry.inquiry_id, value: inquiry, headers: {}, timestamp: Date.now() };
      const outputs = await classifier.process(input, { log });
      return outputs[0]!.value as InquiryClassified;
    };
    const warnings = () => entries.filter((e) => e.level === 40 && String(e.msg).includes("using the configured fallback threshold"));

    // 0.6 is below the manifest's 0.7 (out of scope) though above the fallback 0.4.
    expect(await run()).toMatchObject({ confidence: 0.6, out_of_scope: true });
    confidence = 0.75;
    expect(await run()).toMatchObject({ out_of_scope: false });
    expect(warnings()).toEqual([]);

    // An old version without a point: the configured fallback, with one warning for the version.
    version = { id: "v-old", threshold: null };
    confidence = 0.6;
    expect(await run()).toMatchObject({ out_of_scope: false });
    confidence = 0.3;
    expect(await run()).toMatchObject({ out_of_scope: true });
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ model: "intent", version: "v-old", threshold: 0.4 });

    // A point that is measured, not served: the fallback too, with a warning that says so.
    version = { id: "v-measured", threshold: 0.99, served: false };
    confidence = 0.6;
    expect(await run()).toMatchObject({ out_of_scope: false });
    confidence = 0.3;
    expect(await run()).toMatchObject({ out_of_scope: true });
    expect(warnings()).toHaveLength(2);
    expect(warnings()[1]).toMatchObject({ version: "v-measured", threshold: 0.4, measuredPoint: 0.99, msg: expect.stringContaining("measured, not served") });
  });
});
