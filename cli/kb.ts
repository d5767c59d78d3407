import { Client } from "@elastic/elasticsearch";
import type { Command } from "commander";
import { readArticles } from "../knowledge-base/articles.js";
import { openProductionEmbedder, slotEmbedder } from "../knowledge-base/embedding.js";
import { loadKnowledgeBase } from "../knowledge-base/load.js";
import { resolveEndpoints } from "../stack/index.js";
import { createPool } from "../storage/postgres.js";
import type { CliContext } from "./context.js";
import { elasticsearchOptions } from "../config/security.js";

export function knowledgeBaseCommands(program: Command, { config, log }: CliContext): void {
  const kb = program.command("kb").description("the knowledge base `respond` answers from (Elasticsearch)");
  kb.command("load")
    .description(
      "index the articles of knowledge-base/articles with the production embedder (idempotent: only changes are written)",
    )
    .option("--recreate", "delete and recreate the index first (after a mapping change)", false)
    .action(async (options: { recreate: boolean }) => {
      const endpoints = resolveEndpoints(config);
      const articles = readArticles();
      const client = new Client(elasticsearchOptions(endpoints));
      const pool = createPool(endpoints, "switchboard-kb");
      const slot = await openProductionEmbedder(pool, config.modelsDir, log);
      try {
        const report = await loadKnowledgeBase(client, config.knowledgeBaseIndex, articles, {
          embedder: slot ? slotEmbedder(slot) : null,
          recreate: options.recreate,
          log,
        });
        console.log(
          `${report.index}: ${report.created.length} created, ${report.updated.length} updated, ` +
            `${report.unchanged.length} unchanged, ${report.deleted.length} deleted; ` +
            `embeddings: ${report.embedder ?? "none (no production embedder; kNN is off until `kb load` runs with one)"}`,
        );
      } finally {
        await slot?.close();
        await pool.end();
        await client.close();
      }
    });
}
