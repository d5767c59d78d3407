import type { Logger } from "pino";
import { TemplateError } from "../../knowledge-base/template.js";
import type { InquiryResponse, InquiryRouted } from "../../schemas/types.generated.js";
import { TransientError, errorMessage } from "../../streams/errors.js";
import { checkLlmInput, checkLlmOutput } from "./guardrails.js";
import { LlmError, replyPrompt, type ChatModel } from "./llm.js";
import type { Messages } from "./messages.js";
import type { RespondMetrics } from "./metrics.js";
import type { Retrieval, Retriever } from "./retrieval.js";
import {
  handOffBeforeRetrieval,
  isOutOfScope,
  planReply,
  type FallbackPlan,
  type HandOffReason,
  type ReplyPlan,
} from "./strategy.js";
import { draftedReply, greetingName, retrievalReply, templateReply, type ReplyContext } from "./templates.js";
import { checkToxicity, type ToxicityFinding, type ToxicityModel } from "./toxicity.js";

/** A drafted reply, before it becomes an inquiries.responses record. */
export interface Draft {
  readonly strategy: InquiryResponse["strategy"];
  readonly text: string;
  readonly sources: readonly string[];
  readonly model: string | null;
  /** Why a person takes over, on a hand-off. */
  readonly reason?: HandOffReason;
  /** A guardrail's figures behind it: the toxicity score, threshold and model@version. */
  readonly detail?: string;
}

export interface ResponderParts {
  readonly retriever: Retriever;
  readonly messages: Messages;
  /** Null keeps the LLM off. */
  readonly llm: ChatModel | null;
  /** The reply guardrail's classifier: every drafted reply (and an LLM's draft) is scored before it is sent. */
  readonly toxicity: ToxicityModel;
  readonly metrics: RespondMetrics;
  readonly log: Logger;
}

/**
 * Drafts the reply to one routed inquiry: a hand-off with a holding message when a person must
 * look (escalated, flagged for review, no intent, a language the knowledge base is not written
 * in), otherwise retrieval from the knowledge base and the reply plan of `planReply`.
 * Elasticsearch failures are transient (retried by the runtime); LLM failures fall back. A
 * template or retrieval reply the toxicity model holds back becomes a hand-off (`toxic_reply`);
 * an LLM draft it holds back falls back like any refused draft.
 */
export async function draftReply(routed: InquiryRouted, parts: ResponderParts): Promise<Draft> {
  const context: ReplyContext = { entities: routed.entities, customer: routed.envelope.customer };
  const handOff = (reason: HandOffReason): Draft => ({
    strategy: "human",
    text: parts.messages.holding({
      language: routed.language,
      department: routed.department,
      escalated: routed.escalated,
      customerName: greetingName(routed.envelope.customer),
      outOfScope: isOutOfScope(routed),
    }),
    sources: [],
    model: null,
    reason,
  });

  const early = handOffBeforeRetrieval(routed);
  if (early) return handOff(early);

  let retrieval: Retrieval;
  try {
    retrieval = await parts.retriever.retrieve({ text: routed.text, category: routed.category });
  } catch (error) {
    throw new TransientError(`knowledge-base retrieval failed: ${errorMessage(error)}`, { cause: error });
  }
  const plan = planReply(routed.intent!, retrieval, parts.llm !== null);
  const draft = await execute(plan, routed, context, parts, handOff);
  // The LLM's draft was scored before it was accepted; hand-offs send the fixed holding messages.
  if (draft.strategy !== "template" && draft.strategy !== "retrieval") return draft;
  const finding = await toxicityOf(draft.text, parts);
  if (!finding.held) return draft;
  parts.metrics.guardrailRejections.inc({ stage: "reply", check: "toxicity" });
  parts.log.warn(
    { inquiry_id: routed.inquiry_id, strategy: draft.strategy, sources: draft.sources, reason: finding.reason },
    "drafted reply held back by the toxicity guardrail; handing off",
  );
  return { ...handOff("toxic_reply"), detail: finding.reason };
}

/** The toxicity model's verdict; a failed model call is transient (the runtime retries the record). */
async function toxicityOf(text: string, parts: ResponderParts): Promise<ToxicityFinding> {
  try {
    return await checkToxicity(text, parts.toxicity);
  } catch (error) {
    throw new TransientError(`toxicity check failed: ${errorMessage(error)}`, { cause: error });
  }
}

function execute(
  plan: ReplyPlan,
  routed: InquiryRouted,
  context: ReplyContext,
  parts: ResponderParts,
  handOff: (reason: HandOffReason) => Draft,
): Draft | Promise<Draft> {
  switch (plan.strategy) {
    case "human":
      return handOff(plan.reason);
    case "retrieval":
      return {
        strategy: "retrieval",
        text: retrievalReply(plan.article, context, parts.messages),
        sources: [plan.article.id],
        model: null,
      };
    case "template":
      try {
        return {
          strategy: "template",
          text: templateReply(plan.article, context, parts.messages),
          sources: [plan.article.id],
          model: null,
        };
      } catch (error) {
        if (!(error instanceof TemplateError)) throw error;
        parts.log.error(
          { article: plan.article.id, err: error },
          "knowledge-base template does not parse; handing off (run `switchboard kb load`)",
        );
        return handOff("broken_template");
      }
    case "llm":
      return draftWithLlm(plan, routed, context, parts, handOff);
  }
}

/** The LLM's draft when both guardrails pass it; the fallback plan otherwise. */
async function draftWithLlm(
  plan: Extract<ReplyPlan, { strategy: "llm" }>,
  routed: InquiryRouted,
  context: ReplyContext,
  parts: ResponderParts,
  handOff: (reason: HandOffReason) => Draft,
): Promise<Draft> {
  const fallback = () => execute(fallbackPlan(plan.fallback), routed, context, parts, handOff);
  const input = checkLlmInput(routed.text);
  if (!input.ok) {
    parts.metrics.guardrailRejections.inc({ stage: "input", check: input.check });
    parts.log.info(
      { inquiry_id: routed.inquiry_id, check: input.check },
      "LLM input refused by guardrail; using the fallback reply",
    );
    return fallback();
  }
  let completion;
  try {
    completion = await parts.llm!.complete(replyPrompt(input.text, plan.context));
  } catch (error) {
    if (!(error instanceof LlmError)) throw error;
    parts.metrics.llmFailures.inc({ failure: error.failure });
    parts.log.warn(
      { inquiry_id: routed.inquiry_id, failure: error.failure, err: error },
      "LLM call failed; using the fallback reply",
    );
    return fallback();
  }
  // Form first (length, personal data, links), then the toxicity model on the draft as written.
  let output = checkLlmOutput(completion.text);
  if (output.ok) {
    const toxicity = await toxicityOf(completion.text, parts);
    if (toxicity.held) output = { ok: false, check: "toxicity", detail: toxicity.reason };
  }
  if (!output.ok) {
    parts.metrics.guardrailRejections.inc({ stage: "output", check: output.check });
    parts.log.warn(
      { inquiry_id: routed.inquiry_id, check: output.check, model: completion.model, reason: output.detail },
      "LLM draft refused by guardrail; using the fallback reply",
    );
    return fallback();
  }
  return {
    strategy: "llm",
    text: draftedReply(completion.text, context, parts.messages),
    sources: plan.context.map((article) => article.id),
    model: completion.model,
  };
}

/** A refused LLM draft that would have been a hand-off for lack of an answer says so. */
const fallbackPlan = (plan: FallbackPlan): ReplyPlan =>
  plan.strategy === "human" ? { strategy: "human", reason: "llm_rejected" } : plan;
