import type { Client, estypes } from "@elastic/elasticsearch";
import type { Histogram } from "prom-client";
import type { TextEmbedder } from "../../knowledge-base/embedding.js";
import type { ArticleDocument } from "../../knowledge-base/load.js";
import { DependencyUnavailableError } from "../../streams/errors.js";
import { reciprocalRankFusion } from "./fusion.js";

/** What the responder needs of an indexed article. */
export type KnowledgeArticle = Pick<
  ArticleDocument,
  "intent" | "category" | "department" | "title" | "body" | "template"
> & { readonly id: string };

export type Ranker = "bm25" | "knn";

export interface RetrievedHit {
  readonly article: KnowledgeArticle;
  readonly fusedScore: number;
  /** 1-based rank in each ranking that ran; null where the article was not in it. */
  readonly ranks: Readonly<Record<Ranker, number | null>>;
  /** BM25 score, for judging how clearly the first hit leads. */
  readonly bm25Score: number | null;
}

export interface Retrieval {
  /** Best first, by reciprocal rank fusion of the rankings that ran. */
  readonly hits: readonly RetrievedHit[];
  /** The rankings that found something: kNN only with an embedder and articles embedded by it. */
  readonly rankers: readonly Ranker[];
}

export interface RetrievalQuery {
  readonly text: string;
  /** The classifier's category: its articles get a boost, the others stay reachable. */
  readonly category?: string | null;
}

export interface Retriever {
  retrieve(query: RetrievalQuery): Promise<Retrieval>;
}

export interface RetrieverOptions {
  readonly client: Client;
  readonly index: string;
  readonly embedder: TextEmbedder | null;
  /** Hits per ranking. */
  readonly size?: number;
  /** Added to the BM25 score of articles in the predicted category. */
  readonly categoryBoost?: number;
  /** Where the time of each step (embed, search) is recorded. */
  readonly stepSeconds?: Histogram<"step">;
}

/** Field weights of the BM25 query: a title match says most about what an article is for. */
export const BM25_FIELDS = ["title^2", "keywords^1.5", "questions", "body"];
/** About a quarter of a typical first BM25 score: it settles close calls without overriding a clear match. */
export const DEFAULT_CATEGORY_BOOST = 3;
/** The text of a long inquiry adds little to the query beyond its start; this bounds the query's cost. */
const MAX_QUERY_CHARS = 600;
/**
 * The embedded part of the query, shorter still: the encoder's cost grows with the tokens (a
 * ticket's 600 characters take 11 ms, its first 256 take 7), and the request is in the opening.
 */
const MAX_EMBEDDED_CHARS = 256;
const SOURCE_FIELDS = ["intent", "category", "department", "title", "body", "template"];

/**
 * Retrieves knowledge-base articles for an inquiry: BM25 over the text fields and kNN over the
 * article embeddings, two searches of one request, whose rankings are fused in application code.
 */
export function knowledgeBaseRetriever(options: RetrieverOptions): Retriever {
  const { client, index, embedder } = options;
  const size = options.size ?? 5;
  const categoryBoost = options.categoryBoost ?? DEFAULT_CATEGORY_BOOST;
  const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    const end = options.stepSeconds?.startTimer({ step });
    try {
      return await work();
    } finally {
      end?.();
    }
  };

  function bm25(text: string, category: string | null): estypes.MsearchMultisearchBody {
    return {
      size,
      _source: SOURCE_FIELDS,
      query: {
        bool: {
          must: {
            // Not fuzzy: misspellings are the kNN ranking's to catch. Fuzziness cost ~8 ms of
            // Elasticsearch CPU per short query (0.04 ms without) and no top-1 accuracy in the
            // retrieval test (fused 91.4% with it, 92.6% without, on realistic inquiries).
            multi_match: {
              query: text,
              fields: BM25_FIELDS,
              type: "best_fields",
              tie_breaker: 0.3,
            },
          },
          should:
            category && categoryBoost > 0
              ? [{ constant_score: { filter: { term: { category } }, boost: categoryBoost } }]
              : [],
        },
      },
    };
  }

  /** Only articles embedded by the same model version are comparable: after a swap, kNN finds none until `kb load` re-embeds. */
  function knn(model: string, vector: Float32Array): estypes.MsearchMultisearchBody {
    return {
      size,
      _source: SOURCE_FIELDS,
      knn: {
        field: "embedding",
        query_vector: Array.from(vector),
        k: size,
        num_candidates: Math.max(50, size * 10),
        filter: { term: { embedder: model } },
      },
    };
  }

  /**
   * Both rankings in one `_msearch` request: for a knowledge base of tens of articles the
   * searches themselves are cheap, and a request of its own per ranking cost Elasticsearch about
   * twice the CPU (measured: 5.7 against 4.7 ms per pair at 16 in flight, 5.9 against 2.9 one at a time).
   */
  async function search(bodies: readonly estypes.MsearchMultisearchBody[]): Promise<estypes.SearchHit<KnowledgeArticle>[][]> {
    const response = await timed("search", () =>
      client.msearch<KnowledgeArticle>({ searches: bodies.flatMap((body) => [{ index }, body]) }),
    );
    return response.responses.map((item, i) => {
      if ("error" in item) {
        const message = `the ${i === 0 ? "BM25" : "kNN"} search failed: ${item.error.reason ?? item.error.type}`;
        // 503 (no shard ready: Elasticsearch just restarted, the index still recovering) or 429
        // (overloaded): the cluster's moment, not the inquiry's, so respond waits for it.
        if (item.status === 503 || item.status === 429) throw new DependencyUnavailableError(`${message} (status ${item.status})`);
        throw new Error(message);
      }
      return item.hits.hits;
    });
  }

  return {
    async retrieve({ text, category = null }) {
      const query = text.slice(0, MAX_QUERY_CHARS);
      const vector = embedder
        ? (await timed("embed", () => embedder.embed([query.slice(0, MAX_EMBEDDED_CHARS)])))[0]!
        : undefined;
      const [lexical = [], knnHits = []] = await search([
        bm25(query, category),
        ...(embedder && vector ? [knn(embedder.model, vector)] : []),
      ]);
      const semantic = knnHits.length > 0 ? knnHits : null;
      const rankers: Ranker[] = semantic ? ["bm25", "knn"] : ["bm25"];
      const articles = new Map<string, KnowledgeArticle>();
      for (const hit of [...lexical, ...(semantic ?? [])]) articles.set(hit._id!, { ...hit._source!, id: hit._id! });
      const bm25Scores = new Map(lexical.map((hit) => [hit._id!, hit._score ?? null]));
      const fused = reciprocalRankFusion(semantic ? [ids(lexical), ids(semantic)] : [ids(lexical)]);
      return {
        rankers,
        hits: fused.map(({ id, score, ranks }) => ({
          article: articles.get(id)!,
          fusedScore: score,
          ranks: { bm25: ranks[0] ?? null, knn: ranks[1] ?? null },
          bm25Score: bm25Scores.get(id) ?? null,
        })),
      };
    },
  };
}

const ids = (hits: readonly estypes.SearchHit[]) => hits.map((hit) => hit._id!);
