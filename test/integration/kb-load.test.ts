import { Client } from "@elastic/elasticsearch";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { readArticles, toArticle, type Article } from "../../knowledge-base/articles.js";
import { EMBEDDING_DIMS, type TextEmbedder } from "../../knowledge-base/embedding.js";
import {
  ensureKnowledgeBaseIndex,
  loadKnowledgeBase,
  MAPPING_VERSION,
  type ArticleDocument,
} from "../../knowledge-base/load.js";
import { quietLog } from "../support/topics.js";
import { deleteIndex, exportedEmbedder, kbIndexName, type ExportedEmbedder } from "./kb-fixture.js";
import { elasticsearchOptions } from "../../config/security.js";

/** `switchboard kb load` against the real Elasticsearch: index creation, idempotence, updates, embeddings. */

const articles = readArticles();
let client: Client;
let embedder: TextEmbedder;
let exported: ExportedEmbedder;
const indices: string[] = [];
const freshIndex = (label: string) => {
  const index = kbIndexName(label);
  indices.push(index);
  return index;
};

beforeAll(async () => {
  client = new Client(elasticsearchOptions(inject("endpoints")));
  exported = await exportedEmbedder();
  embedder = exported.embedder;
});

afterAll(async () => {
  for (const index of indices) await deleteIndex(client, index);
  await exported?.dispose();
  await client?.close();
});

async function documents(index: string): Promise<Map<string, { version: number; source: ArticleDocument }>> {
  const response = await client.search<ArticleDocument>({ index, size: 100, version: true, query: { match_all: {} } });
  return new Map(response.hits.hits.map((hit) => [hit._id!, { version: hit._version!, source: hit._source! }]));
}

const edited = (article: Article, body: string): Article =>
  toArticle({ ...pick(article), body }, `${article.intent}.yaml`);
function pick(article: Article) {
  const { intent, category, department, title, keywords, questions, body, template } = article;
  return { intent, category, department, title, keywords, questions, body, template };
}

describe("knowledge-base loading", () => {
  it("creates the index as specified and loads one document per intent; a second load writes nothing", async () => {
    const index = freshIndex("load");
    const first = await loadKnowledgeBase(client, index, articles, { log: quietLog });
    expect(first.created).toHaveLength(27);
    expect([first.updated, first.unchanged, first.deleted]).toEqual([[], [], []]);

    const settings = Object.values(await client.indices.getSettings({ index }))[0]!.settings!.index!;
    expect(settings.number_of_replicas).toBe("0");
    const mapping = Object.values(await client.indices.getMapping({ index }))[0]!.mappings;
    expect(mapping._meta).toEqual({ mapping_version: MAPPING_VERSION });
    expect(mapping.properties!.embedding).toEqual({
      type: "dense_vector",
      dims: EMBEDDING_DIMS,
      index: true,
      similarity: "cosine",
      index_options: expect.anything(),
    });
    expect(mapping.properties!.title).toMatchObject({ type: "text", analyzer: "kb_text" });

    const second = await loadKnowledgeBase(client, index, articles, { log: quietLog });
    expect(second.unchanged).toHaveLength(27);
    expect([second.created, second.updated, second.deleted]).toEqual([[], [], []]);
    const docs = await documents(index);
    expect([...docs.keys()].sort()).toEqual(articles.map((a) => a.intent).sort());
    expect([...docs.values()].every((doc) => doc.version === 1)).toBe(true);
    expect(docs.get("track_order")!.source).toMatchObject({
      intent: "track_order",
      category: "ORDER",
      department: "orders",
      embedder: null,
    });
  });

  it("replaces a changed article and deletes one no longer in the knowledge base", async () => {
    const index = freshIndex("update");
    await loadKnowledgeBase(client, index, articles, { log: quietLog });
    const changed = articles.map((a) =>
      a.intent === "get_refund" ? edited(a, `${a.body}\nRefunds to gift cards are immediate.`) : a,
    );
    const report = await loadKnowledgeBase(
      client,
      index,
      changed.filter((a) => a.intent !== "review"),
      { log: quietLog },
    );
    expect(report.updated).toEqual(["get_refund"]);
    expect(report.deleted).toEqual(["review"]);
    expect(report.unchanged).toHaveLength(25);

    const docs = await documents(index);
    expect(docs.size).toBe(26);
    expect(docs.get("get_refund")!.version).toBe(2);
    expect(docs.get("get_refund")!.source.body).toContain("Refunds to gift cards are immediate.");
    expect(docs.get("track_order")!.version).toBe(1);
  });

  it("embeds every article with the embedder, and re-embeds only when the embedder changes", async () => {
    const index = freshIndex("embed");
    await loadKnowledgeBase(client, index, articles, { log: quietLog });
    const embedded = await loadKnowledgeBase(client, index, articles, { embedder, log: quietLog });
    expect(embedded.updated).toHaveLength(27);
    expect(embedded.embedder).toBe(embedder.model);

    const docs = await documents(index);
    for (const { source } of docs.values()) {
      expect(source.embedder).toBe(embedder.model);
      expect(source.embedding).toHaveLength(EMBEDDING_DIMS);
      expect(Math.hypot(...source.embedding!)).toBeCloseTo(1, 4);
    }
    expect((await loadKnowledgeBase(client, index, articles, { embedder, log: quietLog })).unchanged).toHaveLength(27);

    const { hits } = await client.search({
      index,
      size: 1,
      knn: {
        field: "embedding",
        query_vector: Array.from((await embedder.embed(["I forgot my password and cannot sign in"]))[0]!),
        k: 1,
        num_candidates: 27,
      },
    });
    expect(hits.hits[0]!._id).toBe("recover_password");
  });

  it("refuses an index made with another mapping version, and rebuilds it on request", async () => {
    const index = freshIndex("mapping");
    await client.indices.create({
      index,
      settings: { number_of_replicas: 0 },
      mappings: { _meta: { mapping_version: 0 }, properties: { title: { type: "keyword" } } },
    });
    await expect(ensureKnowledgeBaseIndex(client, index)).rejects.toThrow(
      /mapping version 0, this code needs 1: run `switchboard kb load --recreate`/,
    );
    const report = await loadKnowledgeBase(client, index, articles, { recreate: true, log: quietLog });
    expect(report.created).toHaveLength(27);
  });
});
