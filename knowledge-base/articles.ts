import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { parseTemplate, TemplateError, type Template } from "./template.js";

/** Where the articles live: one YAML file per intent, named after it. */
export const ARTICLES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "articles");

/**
 * The entity types `clean` extracts that a reply template may quote. A template never sees the
 * inquiry text itself, so it cannot echo personal data the customer wrote.
 */
export const ENTITY_PLACEHOLDERS: ReadonlySet<string> = new Set(["order_number", "account_id", "amount", "date"]);

const text = z.string().trim().min(1);

const articleFile = z.strictObject({
  intent: z.string().regex(/^[a-z_]+$/, "snake_case intent name"),
  category: z.string().regex(/^[A-Z_]+$/, "upper-case category name"),
  department: z.string().regex(/^[a-z_]+$/, "snake_case department name"),
  title: text,
  keywords: z.array(text).min(1),
  /** How customers ask for this, in our own words: indexed for BM25 and embedded for kNN. */
  questions: z.array(text).min(1),
  /** The answer with the facts a reply needs (policy windows, steps, links). */
  body: text,
  /** The per-intent reply, with placeholders for extracted entities. */
  template: text,
});

export type ArticleContent = z.output<typeof articleFile>;

export interface Article extends ArticleContent {
  /** The article's id in the index: its intent. */
  readonly id: string;
  readonly parsedTemplate: Template;
  /** sha256 of the content, so an unchanged article is not re-indexed. */
  readonly digest: string;
}

export class ArticleError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = "ArticleError";
  }
}

/** Validates one article; `file` names it in errors. */
export function toArticle(raw: unknown, file: string): Article {
  const parsed = articleFile.safeParse(raw);
  if (!parsed.success) {
    throw new ArticleError(
      file,
      parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; "),
    );
  }
  const content = parsed.data;
  let parsedTemplate: Template;
  try {
    parsedTemplate = parseTemplate(content.template, ENTITY_PLACEHOLDERS);
  } catch (error) {
    if (error instanceof TemplateError) throw new ArticleError(file, `template: ${error.message}`);
    throw error;
  }
  return { ...content, id: content.intent, parsedTemplate, digest: contentDigest(content) };
}

/** Reads and validates every article of `dir`; each file must be named after its intent. */
export function readArticles(dir: string = ARTICLES_DIR): Article[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  const articles = files.map((file) => {
    const full = path.join(dir, file);
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(full, "utf8"));
    } catch (error) {
      throw new ArticleError(full, `not valid YAML: ${(error as Error).message}`);
    }
    const article = toArticle(raw, full);
    if (`${article.intent}.yaml` !== file)
      throw new ArticleError(full, `intent "${article.intent}" does not match the file name`);
    return article;
  });
  if (articles.length === 0) throw new Error(`no articles (*.yaml) in ${dir}`);
  return articles;
}

function contentDigest(content: ArticleContent): string {
  const canonical = JSON.stringify(
    Object.keys(content)
      .sort()
      .map((k) => [k, content[k as keyof ArticleContent]]),
  );
  return createHash("sha256").update(canonical).digest("hex");
}
