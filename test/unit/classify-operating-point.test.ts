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
  readonly statistic?: string;
  /** The graph's in_scope_similarity for the prediction; absent: the graph outputs none. */
  readonly similarity?: number;
}

function servedModel(name: string, label: string, confidence: () => number, version: () => Version) {
  return {
    async predict(): Promise<ServedAnswer> {
      const { id, threshold, served, statistic, similarity } = version();
      const point = threshold === null ? null : { threshold, ...(served !== undefined && { served }), ...(statistic && { statistic }) };
      const manifest = { operating_point: point } as unknown as Manifest;
      const loaded = { name, version: id, directory: `/models/${name}/${id}`, manifest } as unknown as LoadedModel;
      const c = confidence();
      return {
        production: {
          prediction: {
            label,
            confidence: c,
            ranked: [{ label, score: c }],
            model: `${name}@${id}`,
            ...(similarity !== undefined && { inScopeSimilarity: similarity }),
          },
          version: loaded,
          latencyMs: 1,
        },
      };
    },
  } as unknown as ServedModel;
}

function cleaned(inquiryId: string, language = "en"): InquiryCleaned {
  const sample = toInquiry(SAMPLE_INQUIRIES[0]!);
  return {
    inquiry_id: inquiryId,
    envelope: sample.envelope,
    subject: sample.subject,
    text: sample.body,
    language,
    language_confidence: 0.99,
    redaction_count: 0,
    entities: [],
    cleaned_at: Date.now(),
  };
}

/** classify over an intent model answering `state.confidence` from `state.version`, with the fallback threshold 0.4. */
async function harness(state: { confidence: number; version: Version }) {
  const entries: Record<string, unknown>[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void entries.push(JSON.parse(line) as Record<string, unknown>) });
  const models: Record<string, ServedModel> = {
    intent: servedModel("intent", "track_order", () => state.confidence, () => state.version),
    category: servedModel("category", "ORDER", () => 0.9, () => ({ id: "c1", threshold: null })),
  };
  const config = { ...loadConfig(), outOfScopeThreshold: 0.4 };
  // No multilingual pair in production: the English head answers every language.
  const productionModel = (name: string) => (models[name] ? Promise.resolve(models[name]) : Promise.reject(new Error(`no ${name} in production`)));
  const resources = { productionModel, schedule: () => ({ stop: () => Promise.resolve() }) } as unknown as Resources;
  const deps = { topology: TRIAGE, config, log, resources } as unknown as ProcessorDependencies;
  const classifier = await classify(findProcessor("classify").processor, deps);
  let n = 0;
  const run = async (language = "en") => {
    const inquiry = cleaned(`i-${n++}`, language);
    const input = { topic: "inquiries.cleaned", partition: 0, offset: "0", key: inquiry.inquiry_id, value: inquiry, headers: {}, timestamp: Date.now() };
    const outputs = await classifier.process(input, { log });
    return outputs[0]!.value as InquiryClassified;
  };
  const warnings = () => entries.filter((e) => e.level === 40 && String(e.msg).includes("fallback threshold"));
  return { run, warnings };
}

describe("classify's out-of-scope operating point", () => {
  it("uses the answering version's manifest threshold, and warns once per version that has none", async () => {
    const state = { confidence: 0.6, version: { id: "v-point", threshold: 0.7 } as Version };
    const { run, warnings } = await harness(state);

    // 0.6 is below the manifest's 0.7 (out of scope) though above the fallback 0.4.
    expect(await run()).toMatchObject({ confidence: 0.6, out_of_scope: true });
    state.confidence = 0.75;
    expect(await run()).toMatchObject({ out_of_scope: false });
    expect(warnings()).toEqual([]);

    // An old version without a point: the configured fallback, with one warning for the version.
    state.version = { id: "v-old", threshold: null };
    state.confidence = 0.6;
    expect(await run()).toMatchObject({ out_of_scope: false });
    state.confidence = 0.3;
    expect(await run()).toMatchObject({ out_of_scope: true });
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ model: "intent", version: "v-old", threshold: 0.4 });

    // A point that is measured, not served: the fallback too, with a warning that says so.
    state.version = { id: "v-measured", threshold: 0.99, served: false };
    state.confidence = 0.6;
    expect(await run()).toMatchObject({ out_of_scope: false });
    state.confidence = 0.3;
    expect(await run()).toMatchObject({ out_of_scope: true });
    expect(warnings()).toHaveLength(2);
    expect(warnings()[1]).toMatchObject({ version: "v-measured", threshold: 0.4, measuredPoint: 0.99, msg: expect.stringContaining("measured, not served") });
  });

  it("on a head's in-scope similarity point, decides by similarity in English and by the fallback on confidence in other languages", async () => {
    const similarityPoint = { id: "v-head", threshold: 0.46, statistic: "in-scope similarity" };
    const state = { confidence: 0.95, version: { ...similarityPoint, similarity: 0.3 } as Version };
    const { run, warnings } = await harness(state);

    // Confident but far from every intent centroid: out of scope; near one though unsure: in scope.
    expect(await run()).toMatchObject({ confidence: 0.95, out_of_scope: true });
    state.confidence = 0.2;
    state.version = { ...similarityPoint, similarity: 0.7 };
    expect(await run()).toMatchObject({ out_of_scope: false });
    expect(await run("und")).toMatchObject({ out_of_scope: false });
    expect(warnings()).toEqual([]);

    // Spanish, answered by the English head: its point was chosen on English text, so confidence against 0.4 decides.
    state.confidence = 0.3;
    state.version = { ...similarityPoint, similarity: 0.9 };
    expect(await run("es")).toMatchObject({ out_of_scope: true });
    state.confidence = 0.5;
    state.version = { ...similarityPoint, similarity: 0.1 };
    expect(await run("es")).toMatchObject({ out_of_scope: false });
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ version: "v-head", threshold: 0.4, measuredPoint: 0.46, reason: "point chosen on English text" });

    // A version claiming a similarity point whose graph outputs none is an error, not a silent fallback.
    state.version = { ...similarityPoint, id: "v-broken" };
    await expect(run()).rejects.toThrow(/intent@v-broken has an out-of-scope point on in-scope similarity but its graph outputs none/);
  });
});
