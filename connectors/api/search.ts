import type { Client, estypes } from "@elastic/elasticsearch";
import type { FastifyInstance } from "fastify";
import { errorType } from "../../sinks/inquiry-index.js";
import { ApiError, UnavailableError } from "./errors.js";
import { ERROR, MAX_RESULT_WINDOW, SEARCH_QUERY, SEARCH_RESULTS } from "./schemas.js";

interface SearchQuery {
  readonly q?: string;
  readonly department?: string;
  readonly queue?: string;
  readonly review?: boolean;
  readonly from?: string;
  readonly to?: string;
  readonly page: number;
  readonly size: number;
}

/** The fields of the search index (sinks/inquiry-index.ts) a hit shows. */
const HIT_FIELDS = [
  "inquiry_id",
  "received_at",
  "channel",
  "subject",
  "language",
  "department",
  "queue",
  "priority_score",
  "escalated",
  "human_review",
  "intent",
  "category",
  "sentiment",
  "urgency",
] as const;

/** An RFC 3339 time as Elasticsearch's default date format reads it (it refuses some forms RFC 3339 allows, e.g. a lower-case T). */
function searchTime(field: "from" | "to", value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const time = new Date(value.toUpperCase());
  if (Number.isNaN(time.getTime())) throw new ApiError(422, "validation_failed", `${field}: not a time this API can read`, { field, reason: "not a readable date-time" });
  return time.toISOString();
}

export function searchRoutes(app: FastifyInstance, es: Client, index: string): void {
  app.get(
    "/v1/inquiries",
    {
      config: { scope: "read" },
      schema: {
        summary: "Search inquiries",
        description:
          "Full text over the redacted subject and text (Elasticsearch), filtered by department, queue, review flag and received time; best matches first with q, newest first without.",
        tags: ["inquiries"],
        querystring: SEARCH_QUERY,
        response: { 200: SEARCH_RESULTS, ...Object.fromEntries([401, 403, 422, 429, 503].map((status) => [status, ERROR])) },
      },
    },
    async (request) => {
      const query = request.query as SearchQuery;
      const from = searchTime("from", query.from);
      const to = searchTime("to", query.to);
      if (from !== undefined && to !== undefined && from > to) {
        throw new ApiError(422, "validation_failed", "from: later than to", { field: "from", reason: "is later than to" });
      }
      if (query.page * query.size > MAX_RESULT_WINDOW) {
        throw new ApiError(422, "validation_failed", `page: pages reach at most ${MAX_RESULT_WINDOW} results deep; narrow the search`, {
          field: "page",
          reason: `page × size exceeds ${MAX_RESULT_WINDOW}`,
        });
      }
      const filter: estypes.QueryDslQueryContainer[] = [];
      if (query.department !== undefined) filter.push({ term: { department: query.department } });
      if (query.queue !== undefined) filter.push({ term: { queue: query.queue } });
      if (query.review !== undefined) filter.push({ term: { human_review: query.review } });
      if (from !== undefined || to !== undefined) filter.push({ range: { received_at: { gte: from, lte: to } } });
      const q = query.q?.trim() ? query.q : undefined;
      let result: estypes.SearchResponse<Record<string, unknown>>;
      try {
        result = await es.search<Record<string, unknown>>({
          index,
          query: { bool: { filter, ...(q ? { must: [{ simple_query_string: { query: q, fields: ["subject^2", "text"], default_operator: "and" } }] } : {}) } },
          from: (query.page - 1) * query.size,
          size: query.size,
          track_total_hits: true,
          sort: q ? ["_score", { received_at: { order: "desc", unmapped_type: "date" } }] : [{ received_at: { order: "desc", unmapped_type: "date" } }],
          _source: [...HIT_FIELDS],
          ...(q ? { highlight: { fields: { text: { number_of_fragments: 3, fragment_size: 160 } } } } : {}),
        });
      } catch (error) {
        // No inquiry was indexed yet: nothing matches.
        if (errorType(error) === "index_not_found_exception") return { total: 0, page: query.page, size: query.size, results: [] };
        throw new UnavailableError("elasticsearch", error);
      }
      const total = result.hits.total;
      return {
        total: typeof total === "number" ? total : (total?.value ?? 0),
        page: query.page,
        size: query.size,
        results: result.hits.hits.map((hit) => ({
          ...Object.fromEntries(HIT_FIELDS.map((field) => [field, hit._source?.[field] ?? null])),
          inquiry_id: hit._id,
          score: q ? (hit._score ?? null) : null,
          highlights: hit.highlight?.text ?? [],
        })),
      };
    },
  );
}
