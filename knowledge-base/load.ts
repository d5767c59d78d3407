import { errors, type Client, type estypes } from "@elastic/elasticsearch";
import type { Logger } from "pino";
import type { Article } from "./articles.js";
import { EMBEDDING_DIMS, articleEmbedding, type TextEmbedder } from "./embedding.js";

/**
 * The knowledge base in Elasticsearch: one document per article (id = intent) with text fields
 * for BM25 and a dense vector for kNN. Loading is idempotent: an article whose content and
 * embedding model are unchanged is left alone, a changed one is replaced, a removed one deleted.
 */

/** Bumped when the mapping below changes: an index of another version must be recreated. */
export const MAPPING_VERSION = 1;

/** The analyzer of every text field: this Elasticsearch has no English analyzer or stemmer, so standard with English stop words. */
const TEXT_ANALYZER = "kb_text";
const fullText = { type: "text", analyzer: TEXT_ANALYZER } as const;
const keyword = { type: "keyword" } as const;

const SETTINGS: estypes.IndicesIndexSettings = {
  number_of_shards: 1,
  // The local stack is a single node: a replica could never be assigned.
  number_of_replicas: 0,
  analysis: { analyzer: { [TEXT_ANALYZER]: { type: "standard", stopwords: "_english_" } } },
};

const MAPPINGS: estypes.MappingTypeMapping = {
  dynamic: "strict",
  _meta: { mapping_version: MAPPING_VERSION },
  properties: {
    intent: keyword,
    category: keyword,
    department: keyword,
    title: fullText,
    body: fullText,
    keywords: fullText,
    questions: fullText,
    // Stored for the responder, never searched.
    template: { type: "text", index: false },
    digest: keyword,
    embedder: keyword,
    embedding: { type: "dense_vector", dims: EMBEDDING_DIMS, similarity: "cosine", index: true },
    loaded_at: { type: "date" },
  },
};

/** An article as indexed. */
export interface ArticleDocument {
  readonly intent: string;
  readonly category: string;
  readonly department: string;
  readonly title: string;
  readonly body: string;
  readonly keywords: readonly string[];
  readonly questions: readonly string[];
  readonly template: string;
  readonly digest: string;
  /** name@version of the model that embedded it; null when it was loaded without embeddings. */
  readonly embedder: string | null;
  readonly embedding?: readonly number[];
  readonly loaded_at: string;
}

export interface LoadReport {
  readonly index: string;
  readonly created: readonly string[];
  readonly updated: readonly string[];
  readonly unchanged: readonly string[];
  readonly deleted: readonly string[];
  readonly embedder: string | null;
}

export interface LoadOptions {
  /** Sentence embedder for the kNN field; without one the articles are searchable by BM25 only. */
  readonly embedder?: TextEmbedder | null;
  /** Delete and recreate the index first (needed after a mapping change). */
  readonly recreate?: boolean;
  readonly log: Logger;
}

/** Creates the index when missing; refuses an index made with another mapping version. */
export async function ensureKnowledgeBaseIndex(client: Client, index: string, recreate = false): Promise<void> {
  if (recreate) await client.indices.delete({ index, ignore_unavailable: true });
  if (await client.indices.exists({ index })) {
    const mapping = await client.indices.getMapping({ index });
    const found = Object.values(mapping)[0]?.mappings._meta?.mapping_version;
    if (found !== MAPPING_VERSION) {
      throw new Error(
        `knowledge-base index ${index} has mapping version ${String(found)}, this code needs ${MAPPING_VERSION}: run \`switchboard kb load --recreate\``,
      );
    }
    return;
  }
  try {
    await client.indices.create({ index, settings: SETTINGS, mappings: MAPPINGS, wait_for_active_shards: 1 });
  } catch (error) {
    // Another loader created it between our check and our create: theirs has the same mapping.
    if (!(error instanceof errors.ResponseError && error.body?.error?.type === "resource_already_exists_exception"))
      throw error;
  }
}

/** Loads `articles` into `index`, touching only what changed; the index is refreshed when it returns. */
export async function loadKnowledgeBase(
  client: Client,
  index: string,
  articles: readonly Article[],
  options: LoadOptions,
): Promise<LoadReport> {
  const embedderModel = options.embedder?.model ?? null;
  await ensureKnowledgeBaseIndex(client, index, options.recreate);
  const existing = await indexedVersions(client, index);

  const created: string[] = [];
  const updated: string[] = [];
  const unchanged: string[] = [];
  const operations: (estypes.BulkOperationContainer | ArticleDocument)[] = [];
  const loadedAt = new Date().toISOString();
  for (const article of articles) {
    const current = existing.get(article.id);
    if (current && current.digest === article.digest && current.embedder === embedderModel) {
      unchanged.push(article.id);
      continue;
    }
    (current ? updated : created).push(article.id);
    const document: ArticleDocument = {
      intent: article.intent,
      category: article.category,
      department: article.department,
      title: article.title,
      body: article.body,
      keywords: article.keywords,
      questions: article.questions,
      template: article.template,
      digest: article.digest,
      embedder: embedderModel,
      ...(options.embedder ? { embedding: await articleEmbedding(options.embedder, article) } : {}),
      loaded_at: loadedAt,
    };
    operations.push({ index: { _index: index, _id: article.id } }, document);
  }
  const wanted = new Set(articles.map((a) => a.id));
  const deleted = [...existing.keys()].filter((id) => !wanted.has(id)).sort();
  for (const id of deleted) operations.push({ delete: { _index: index, _id: id } });

  if (operations.length > 0) {
    const response = await client.bulk({ operations, refresh: "wait_for" });
    if (response.errors) {
      const failures = response.items
        .flatMap((item) => Object.values(item))
        .filter((result) => result?.error)
        .map((result) => `${result!._id}: ${result!.error!.type} ${result!.error!.reason ?? ""}`.trim());
      throw new Error(
        `loading the knowledge base into ${index} failed for ${failures.length} article(s): ${failures.join("; ")}`,
      );
    }
  }
  const report = { index, created, updated, unchanged, deleted, embedder: embedderModel };
  options.log.info(
    {
      index,
      created: created.length,
      updated: updated.length,
      unchanged: unchanged.length,
      deleted: deleted.length,
      embedder: embedderModel,
    },
    "knowledge base loaded",
  );
  return report;
}

/** The digest and embedder of every indexed article, by id. */
async function indexedVersions(
  client: Client,
  index: string,
): Promise<Map<string, { digest: string; embedder: string | null }>> {
  const response = await client.search<Pick<ArticleDocument, "digest" | "embedder">>({
    index,
    size: 10_000,
    query: { match_all: {} },
    _source: ["digest", "embedder"],
  });
  return new Map(
    response.hits.hits.map((hit) => [
      hit._id!,
      { digest: hit._source?.digest ?? "", embedder: hit._source?.embedder ?? null },
    ]),
  );
}
