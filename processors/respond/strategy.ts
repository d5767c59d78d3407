import type { InquiryRouted } from "../../schemas/types.generated.js";
import type { KnowledgeArticle, Retrieval } from "./retrieval.js";

/**
 * How a reply is drafted, decided from the routing decision and what the knowledge base returned.
 * Pure functions: the processor runs the retrieval and the drafting around them.
 */

/** Why an inquiry goes to a person instead of getting a drafted reply. */
export type HandOffReason =
  | "escalated"
  | "human_review"
  /** The intent model found the inquiry out of scope (route's review reason `out_of_scope`). */
  | "out_of_scope"
  | "no_intent"
  | "unsupported_language"
  | "no_confident_answer"
  | "broken_template"
  | "llm_rejected"
  /** The toxicity model held the drafted template or retrieval reply back. */
  | "toxic_reply";

/** Languages a drafted reply can be written in (the knowledge base is English; `und` is too short to tell). */
export const DRAFT_LANGUAGES: ReadonlySet<string> = new Set(["en", "und"]);

/** The routing decision says the intent model found the inquiry out of scope. */
export function isOutOfScope(routed: Pick<InquiryRouted, "review_reasons">): boolean {
  return routed.review_reasons.includes("out_of_scope");
}

/**
 * Before any retrieval: inquiries a person must see whatever the knowledge base holds. An
 * out-of-scope inquiry is never answered from the knowledge base (it would answer a question we
 * do not handle): it is handed off with the out-of-scope holding message.
 */
export function handOffBeforeRetrieval(
  routed: Pick<InquiryRouted, "escalated" | "human_review" | "review_reasons" | "intent" | "language">,
): HandOffReason | null {
  if (routed.escalated) return "escalated";
  if (isOutOfScope(routed)) return "out_of_scope";
  if (routed.human_review) return "human_review";
  if (!routed.intent) return "no_intent";
  if (!DRAFT_LANGUAGES.has(routed.language)) return "unsupported_language";
  return null;
}

export type ReplyPlan =
  | { readonly strategy: "template"; readonly article: KnowledgeArticle }
  | { readonly strategy: "retrieval"; readonly article: KnowledgeArticle }
  | { readonly strategy: "llm"; readonly context: readonly KnowledgeArticle[]; readonly fallback: FallbackPlan }
  | { readonly strategy: "human"; readonly reason: HandOffReason };

/** What is sent when the LLM's draft is refused: the reply the knowledge base alone would give. */
export type FallbackPlan = Extract<ReplyPlan, { strategy: "retrieval" | "human" }>;

/** Articles given to the LLM as context. */
export const LLM_CONTEXT_ARTICLES = 3;
/** With BM25 alone, how far its first hit must lead the second for retrieval to be trusted. */
export const MIN_BM25_LEAD = 1.2;

/**
 * A retrieval is confident when every ranking that ran puts the same article first and, when
 * BM25 ran alone, that article's score clearly leads the runner-up's.
 */
export function isConfident(retrieval: Retrieval): boolean {
  const [first, second] = retrieval.hits;
  if (!first) return false;
  if (!retrieval.rankers.every((ranker) => first.ranks[ranker] === 1)) return false;
  if (retrieval.rankers.length > 1) return true;
  // BM25 alone: the fused order is BM25's order.
  if (!second?.bm25Score) return true;
  return (first.bm25Score ?? 0) >= MIN_BM25_LEAD * second.bm25Score;
}

/**
 * For an inquiry that passed `handOffBeforeRetrieval`:
 * - template, when the predicted intent's article is the first fused hit (retrieval agrees);
 * - llm, when an endpoint is configured, with the retrieval plan as its fallback;
 * - retrieval, when another article is a confident hit;
 * - human otherwise.
 */
export function planReply(intent: string, retrieval: Retrieval, llmEnabled: boolean): ReplyPlan {
  const top = retrieval.hits[0];
  if (top && top.article.id === intent) return { strategy: "template", article: top.article };
  const fallback: FallbackPlan =
    top && isConfident(retrieval)
      ? { strategy: "retrieval", article: top.article }
      : { strategy: "human", reason: "no_confident_answer" };
  if (llmEnabled && top) {
    return {
      strategy: "llm",
      context: retrieval.hits.slice(0, LLM_CONTEXT_ARTICLES).map((hit) => hit.article),
      fallback,
    };
  }
  return fallback;
}
