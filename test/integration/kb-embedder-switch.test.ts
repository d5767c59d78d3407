import { Client } from "@elastic/elasticsearch";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { elasticsearchOptions } from "../../config/security.js";
import { readArticles } from "../../knowledge-base/articles.js";
import type { TextEmbedder } from "../../knowledge-base/embedding.js";
import { loadKnowledgeBase, type ArticleDocument } from "../../knowledge-base/load.js";
import { knowledgeBaseRetriever } from "../../processors/respond/retrieval.js";
import { quietLog } from "../support/topics.js";
import { deleteIndex, exportedEmbedder, kbIndexName, type ExportedEmbedder } from "./kb-fixture.js";

/**
 * Switching the embedder (MiniLM → static, issue 10): `kb load` re-embeds every article with the
 * new model, and until it has, respond's kNN ignores the vectors of the old one.
 */

const articles = readArticles();
let client: Client;
let staticModel: ExportedEmbedder;
let minilm: ExportedEmbedder;
let index: string;

beforeAll(async () => {
  client = new Client(elasticsearchOptions(inject("endpoints")));
  staticModel = await exportedEmbedder("static");
  minilm = await exportedEmbedder("minilm");
  index = kbIndexName("switch");
});

afterAll(async () => {
  await deleteIndex(client, index);
  await staticModel?.dispose();
  await minilm?.dispose();
  await client?.close();
});

async function embedders(): Promise<Set<string | null>> {
  const response = await client.search<ArticleDocument>({ index, size: 100, _source: ["embedder"] });
  return new Set(response.hits.hits.map((hit) => hit._source!.embedder));
}

describe("switching the knowledge base's embedder", () => {
  it("re-embeds every article with the new model; kNN uses only vectors of the query's model", async () => {
    const previous: TextEmbedder = minilm.embedder;
    const next: TextEmbedder = staticModel.embedder;
    expect(next.model).not.toBe(previous.model);
    await loadKnowledgeBase(client, index, articles, { embedder: previous, log: quietLog });
    expect(await embedders()).toEqual(new Set([previous.model]));

    // Respond already serves the new model, the index still holds the old one's vectors.
    const query = { text: "I forgot my password and cannot sign in" };
    const stale = await knowledgeBaseRetriever({ client, index, embedder: next }).retrieve(query);
    expect(stale.rankers).toEqual(["bm25"]);

    const report = await loadKnowledgeBase(client, index, articles, { embedder: next, log: quietLog });
    expect(report.updated).toHaveLength(articles.length);
    expect(report.embedder).toBe(next.model);
    expect(await embedders()).toEqual(new Set([next.model]));
    const fresh = await knowledgeBaseRetriever({ client, index, embedder: next }).retrieve(query);
    expect(fresh.rankers).toEqual(["bm25", "knn"]);
    expect(fresh.hits.find((hit) => hit.ranks.knn === 1)?.article.id).toBe("recover_password");

    const again = await loadKnowledgeBase(client, index, articles, { embedder: next, log: quietLog });
    expect(again.unchanged).toHaveLength(articles.length);
  });
});
