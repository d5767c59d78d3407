import { describe, expect, it } from "vitest";
import type { KnowledgeArticle, Ranker, Retrieval, RetrievedHit } from "../../processors/respond/retrieval.js";
import {
  handOffBeforeRetrieval,
  isConfident,
  LLM_CONTEXT_ARTICLES,
  planReply,
} from "../../processors/respond/strategy.js";

const article = (id: string): KnowledgeArticle => ({
  id,
  intent: id,
  category: "X",
  department: "d",
  title: id,
  body: `${id} body`,
  template: `${id} template`,
});

/** A retrieval whose rankings are given as id lists (BM25 with scores). */
function retrieval(bm25: readonly [string, number][], knn: readonly string[] | null = null): Retrieval {
  const ids = [...new Set([...bm25.map(([id]) => id), ...(knn ?? [])])];
  const rank = (list: readonly string[], id: string) => (list.includes(id) ? list.indexOf(id) + 1 : null);
  const bm25Ids = bm25.map(([id]) => id);
  const hits: RetrievedHit[] = ids
    .map((id) => {
      const ranks = { bm25: rank(bm25Ids, id), knn: knn ? rank(knn, id) : null };
      const fusedScore = [ranks.bm25, ranks.knn].reduce<number>((sum, r) => sum + (r ? 1 / (60 + r) : 0), 0);
      return { article: article(id), fusedScore, ranks, bm25Score: bm25.find(([i]) => i === id)?.[1] ?? null };
    })
    .sort((a, b) => b.fusedScore - a.fusedScore);
  const rankers: Ranker[] = knn ? ["bm25", "knn"] : ["bm25"];
  return { hits, rankers };
}

const routed = { escalated: false, human_review: false, review_reasons: [] as string[], intent: "track_order", language: "en" };

describe("hand-off before retrieval", () => {
  it("sends escalated, flagged, intent-less and non-English inquiries to a person, in that order", () => {
    expect(handOffBeforeRetrieval({ ...routed, escalated: true, human_review: true })).toBe("escalated");
    expect(handOffBeforeRetrieval({ ...routed, human_review: true })).toBe("human_review");
    expect(handOffBeforeRetrieval({ ...routed, intent: null })).toBe("no_intent");
    expect(handOffBeforeRetrieval({ ...routed, intent: "" })).toBe("no_intent");
    expect(handOffBeforeRetrieval({ ...routed, language: "de" })).toBe("unsupported_language");
  });

  it("hands an out-of-scope inquiry off as out_of_scope, after escalation and before any other review", () => {
    const outOfScope = { ...routed, human_review: true, review_reasons: ["out_of_scope", "low_confidence:urgency"] };
    expect(handOffBeforeRetrieval(outOfScope)).toBe("out_of_scope");
    expect(handOffBeforeRetrieval({ ...outOfScope, escalated: true })).toBe("escalated");
    expect(handOffBeforeRetrieval({ ...routed, human_review: true, review_reasons: ["low_confidence:intent"] })).toBe("human_review");
  });

  it("lets English and undetermined-language inquiries with an intent through", () => {
    expect(handOffBeforeRetrieval(routed)).toBeNull();
    expect(handOffBeforeRetrieval({ ...routed, language: "und" })).toBeNull();
  });
});

describe("confidence of a retrieval", () => {
  it("needs every ranking to put the same article first", () => {
    expect(
      isConfident(
        retrieval(
          [
            ["a", 9],
            ["b", 8.9],
          ],
          ["a", "b"],
        ),
      ),
    ).toBe(true);
    expect(
      isConfident(
        retrieval(
          [
            ["a", 9],
            ["b", 3],
          ],
          ["b", "a"],
        ),
      ),
    ).toBe(false);
  });

  it("with BM25 alone, needs a clear lead over the runner-up", () => {
    expect(
      isConfident(
        retrieval([
          ["a", 12],
          ["b", 10],
        ]),
      ),
    ).toBe(true);
    expect(
      isConfident(
        retrieval([
          ["a", 11],
          ["b", 10],
        ]),
      ),
    ).toBe(false);
    expect(isConfident(retrieval([["a", 5]]))).toBe(true);
  });

  it("is never confident about nothing", () => {
    expect(isConfident(retrieval([]))).toBe(false);
  });
});

describe("reply plan", () => {
  it("fills the intent's template when retrieval agrees with the classifier", () => {
    expect(
      planReply(
        "track_order",
        retrieval([
          ["track_order", 9],
          ["cancel_order", 8.9],
        ]),
        false,
      ),
    ).toEqual({
      strategy: "template",
      article: article("track_order"),
    });
  });

  it("keeps the template ahead of the LLM", () => {
    expect(planReply("track_order", retrieval([["track_order", 9]]), true).strategy).toBe("template");
  });

  it("answers from another article when retrieval confidently disagrees", () => {
    const plan = planReply(
      "track_order",
      retrieval(
        [
          ["track_refund", 15],
          ["track_order", 6],
        ],
        ["track_refund", "track_order"],
      ),
      false,
    );
    expect(plan).toEqual({ strategy: "retrieval", article: article("track_refund") });
  });

  it("hands off when retrieval disagrees without confidence, or finds nothing", () => {
    expect(
      planReply(
        "track_order",
        retrieval([
          ["track_refund", 9],
          ["track_order", 8.5],
        ]),
        false,
      ),
    ).toEqual({ strategy: "human", reason: "no_confident_answer" });
    expect(planReply("track_order", retrieval([]), false)).toEqual({
      strategy: "human",
      reason: "no_confident_answer",
    });
    expect(planReply("track_order", retrieval([]), true)).toEqual({ strategy: "human", reason: "no_confident_answer" });
  });

  it("asks the LLM when one is configured and no template fits, with the top articles and the plan it replaces as fallback", () => {
    const plan = planReply(
      "track_order",
      retrieval([
        ["a", 9],
        ["b", 8.9],
        ["c", 5],
        ["d", 4],
      ]),
      true,
    );
    expect(plan).toEqual({
      strategy: "llm",
      context: ["a", "b", "c", "d"].slice(0, LLM_CONTEXT_ARTICLES).map(article),
      fallback: { strategy: "human", reason: "no_confident_answer" },
    });
    const confident = planReply(
      "track_order",
      retrieval([
        ["a", 20],
        ["b", 5],
      ]),
      true,
    );
    expect(confident.strategy === "llm" && confident.fallback).toEqual({
      strategy: "retrieval",
      article: article("a"),
    });
  });
});
