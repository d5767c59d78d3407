import pino from "pino";
import { describe, expect, it } from "vitest";
import { toInquiry, SAMPLE_INQUIRIES } from "../../cli/samples/index.js";
import { loadConfig } from "../../config/settings.js";
import type { ServedAnswer, ServedModel } from "../../models/index.js";
import type { Manifest } from "../../models/manifest.js";
import type { LoadedModel } from "../../models/version.js";
import { classify, MULTILINGUAL_MODELS } from "../../processors/classify.js";
import type { InquiryClassified, InquiryCleaned } from "../../schemas/types.generated.js";
import type { ProcessorDependencies } from "../../streams/processor.js";
import type { Resources } from "../../streams/resources.js";
import { findProcessor, TRIAGE } from "../../streams/topology.js";

/** A served model that answers `label` and records the inputs it was asked about. */
function servedModel(name: string, label: string, asked: string[]): ServedModel {
  return {
    async predict(input: string): Promise<ServedAnswer> {
      asked.push(input);
      const manifest = { operating_point: { threshold: 0.1 } } as unknown as Manifest;
      const version = { name, version: "v1", directory: `/models/${name}/v1`, manifest } as unknown as LoadedModel;
      return {
        production: { prediction: { label, confidence: 0.9, ranked: [{ label, score: 0.9 }], model: `${name}@v1` }, version, latencyMs: 1 },
      };
    },
  } as unknown as ServedModel;
}

function cleaned(inquiryId: string, text: string, language: string): InquiryCleaned {
  const sample = toInquiry(SAMPLE_INQUIRIES[0]!);
  return { inquiry_id: inquiryId, envelope: sample.envelope, subject: null, text, language, language_confidence: 0.9, redaction_count: 0, entities: [], cleaned_at: Date.now() };
}

/** The processor's timers, run by the test when it says (in place of the host's intervals). */
type Timers = Map<string, () => Promise<void>>;

async function classifier(models: Record<string, ServedModel>, timers: Timers = new Map()) {
  const log = pino({ level: "silent" });
  const resources = {
    productionModel: (name: string) =>
      models[name] ? Promise.resolve(models[name]) : Promise.reject(new Error(`model ${name} has no production version in the registry`)),
    schedule: (name: string, _intervalMs: number, task: () => Promise<void>) => {
      timers.set(name, task);
      return { run: task, stop: () => Promise.resolve(void timers.delete(name)) };
    },
  } as unknown as Resources;
  const deps = { topology: TRIAGE, config: loadConfig(), log, resources } as unknown as ProcessorDependencies;
  const processor = await classify(findProcessor("classify").processor, deps);
  return async (inquiry: InquiryCleaned) => {
    const input = { topic: "inquiries.cleaned", partition: 0, offset: "0", key: inquiry.inquiry_id, value: inquiry, headers: {}, timestamp: Date.now() };
    const outputs = await processor.process(input, { log });
    return outputs[0]!.value as InquiryClassified;
  };
}

describe("classify by language", () => {
  it("classifies an inquiry not in English with the multilingual models, English and undetermined ones with the English models", async () => {
    const english: string[] = [];
    const multilingual: string[] = [];
    const run = await classifier({
      intent: servedModel("intent", "track_order", english),
      category: servedModel("category", "ORDER", english),
      [MULTILINGUAL_MODELS.intent]: servedModel(MULTILINGUAL_MODELS.intent, "get_refund", multilingual),
      [MULTILINGUAL_MODELS.category]: servedModel(MULTILINGUAL_MODELS.category, "REFUND", multilingual),
    });
    expect(await run(cleaned("i-de", "Ich möchte mein Geld zurück", "de"))).toMatchObject({
      intent: "get_refund",
      category: "REFUND",
      model: `${MULTILINGUAL_MODELS.intent}@v1`,
    });
    expect(await run(cleaned("i-en", "where is my order", "en"))).toMatchObject({ intent: "track_order", model: "intent@v1" });
    expect(await run(cleaned("i-und", "ok", "und"))).toMatchObject({ intent: "track_order" });
    expect(multilingual).toEqual(["Ich möchte mein Geld zurück", "Ich möchte mein Geld zurück"]);
    expect(english).toEqual(["where is my order", "where is my order", "ok", "ok"]);
  });

  it("classifies every language with the English models while the multilingual ones are not in production", async () => {
    const english: string[] = [];
    const run = await classifier({ intent: servedModel("intent", "track_order", english), category: servedModel("category", "ORDER", english) });
    expect(await run(cleaned("i-es", "¿Dónde está mi pedido?", "es"))).toMatchObject({ intent: "track_order", model: "intent@v1" });
    expect(english).toHaveLength(2);
  });

  it("serves the multilingual models once both are promoted, without a restart, and stops looking", async () => {
    const english: string[] = [];
    const multilingual: string[] = [];
    const models: Record<string, ServedModel> = { intent: servedModel("intent", "track_order", english), category: servedModel("category", "ORDER", english) };
    const timers: Timers = new Map();
    const run = await classifier(models, timers);
    const look = timers.get("multilingual models") ?? expect.fail("classify started without the multilingual models but does not look for them");

    // Only one of the pair promoted: still the English models.
    models[MULTILINGUAL_MODELS.intent] = servedModel(MULTILINGUAL_MODELS.intent, "get_refund", multilingual);
    await look();
    expect(await run(cleaned("i-fr-1", "Je veux être remboursé", "fr"))).toMatchObject({ model: "intent@v1" });

    models[MULTILINGUAL_MODELS.category] = servedModel(MULTILINGUAL_MODELS.category, "REFUND", multilingual);
    await look();
    expect(await run(cleaned("i-fr-2", "Je veux être remboursé", "fr"))).toMatchObject({ intent: "get_refund", category: "REFUND", model: `${MULTILINGUAL_MODELS.intent}@v1` });
    expect(multilingual).toEqual(["Je veux être remboursé", "Je veux être remboursé"]);
    expect(timers.has("multilingual models"), "the look stops once they are served").toBe(false);
  });
});
