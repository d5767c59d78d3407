import { Registry } from "prom-client";
import {
  EMBEDDER_MODEL,
  servedEmbedder,
  slotEmbedder,
  type TextEmbedder,
} from "../../knowledge-base/embedding.js";
import type { ModelSlot } from "../../models/index.js";
import type { InquiryResponse } from "../../schemas/types.generated.js";
import { outputOf, reading } from "../../streams/ports.js";
import { errorMessage } from "../../streams/errors.js";
import type { ProcessorImplementation } from "../../streams/processor.js";
import type { ProcessorDeclaration } from "../../streams/topology.js";
import type { ProcessorDependencies } from "../../streams/processor.js";
import { draftReply, type ResponderParts } from "./draft.js";
import { openAiChatModel, type ChatModel } from "./llm.js";
import { readMessages } from "./messages.js";
import { createRespondMetrics } from "./metrics.js";
import { knowledgeBaseRetriever } from "./retrieval.js";
import { servedToxicity, TOXICITY_MODEL, toxicityThreshold, type ToxicityModel } from "./toxicity.js";

/** How long a customer's reply may wait on the LLM before the fallback reply goes out instead. */
export const LLM_TIMEOUT_MS = 8_000;

export interface ResponderOptions {
  /** Where the responder's counters are registered; a registry of its own (served by the host) otherwise. */
  readonly metricsRegistry?: Registry;
  /** Replaces the registry's production embedder (null: BM25 only). */
  readonly embedder?: TextEmbedder | null;
  /** Replaces the endpoint of SWITCHBOARD_LLM_URL (null: no LLM). */
  readonly llm?: ChatModel | null;
  /** Replaces the registry's production toxicity model (tests). */
  readonly toxicity?: ToxicityModel;
}

/** The `respond` processor: inquiries.routed → inquiries.responses (its one output). */
export async function respond(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
  options: ResponderOptions = {},
): Promise<ProcessorImplementation> {
  const responseOut = outputOf(deps.topology, declaration, "inquiries.responses");
  const { config, log } = deps;
  const index = config.knowledgeBaseIndex;
  const messages = readMessages();
  const client = deps.resources.elasticsearch();
  let slot: ModelSlot | null = null;
  let toxicity: ToxicityModel;
  let toxicityVersion: string | null = null;
  try {
    if (!(await client.indices.exists({ index }))) {
      throw new Error(`the knowledge-base index ${index} does not exist: run \`switchboard kb load\` first`);
    }
    if (options.embedder === undefined) {
      slot = await servedEmbedder(async () => (await deps.resources.productionModel(EMBEDDER_MODEL)).slot, log);
    }
    if (options.toxicity) {
      toxicity = options.toxicity;
    } else {
      const served = await openToxicity(deps);
      toxicityVersion = `${served.current.name}@${served.current.version}`;
      toxicity = servedToxicity(served);
    }
  } catch (error) {
    throw new Error(`${declaration.name}: cannot start: ${errorMessage(error)}`, { cause: error });
  }

  const llm =
    options.llm !== undefined
      ? options.llm
      : config.llmUrl
        ? openAiChatModel({
            baseUrl: config.llmUrl,
            model: config.llmModel,
            apiKey: config.llmApiKey,
            timeoutMs: LLM_TIMEOUT_MS,
          })
        : null;
  const metricsRegistry = options.metricsRegistry ?? new Registry();
  const embedder = options.embedder !== undefined ? options.embedder : slot && slotEmbedder(slot);
  const metrics = createRespondMetrics(metricsRegistry);
  const parts: ResponderParts = {
    retriever: knowledgeBaseRetriever({ client, index, embedder, stepSeconds: metrics.retrievalSeconds }),
    messages,
    llm,
    toxicity,
    metrics,
    log,
  };
  log.info(
    { processor: declaration.name, index, embedder: embedder?.model ?? null, llm: llm !== null, toxicity: toxicityVersion },
    "responder ready",
  );

  return {
    process: reading(deps.topology, declaration, "inquiries.routed", async ({ value: routed }, { log: recordLog }) => {
      const draft = await draftReply(routed, { ...parts, log: recordLog });
      parts.metrics.replies.inc({ strategy: draft.strategy });
      if (draft.reason) parts.metrics.handOffs.inc({ reason: draft.reason });
      recordLog.debug(
        { inquiry_id: routed.inquiry_id, strategy: draft.strategy, reason: draft.reason, detail: draft.detail, sources: draft.sources },
        "reply drafted",
      );
      const response: InquiryResponse = {
        inquiry_id: routed.inquiry_id,
        envelope: routed.envelope,
        strategy: draft.strategy,
        text: draft.text,
        sources: draft.sources,
        department: routed.department,
        model: draft.model,
        responded_at: Date.now(),
      };
      return [responseOut(response)];
    }),
    metrics: metricsRegistry,
  };
}

/**
 * The production toxicity model, checked to be one (labels, threshold). Without it respond does
 * not start: every drafted reply goes through it, and a reply guardrail that is silently off would
 * send whatever a template or an LLM produced.
 */
async function openToxicity(deps: ProcessorDependencies) {
  let served;
  try {
    served = await deps.resources.productionModel(TOXICITY_MODEL);
  } catch (error) {
    throw new Error(
      `no production ${TOXICITY_MODEL} model, the reply guardrail (${errorMessage(error)}); ` +
        "`switchboard train --defaults` (which `npm start` runs) converts and registers it",
      { cause: error },
    );
  }
  toxicityThreshold(served.current);
  return served;
}
