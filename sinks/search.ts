import type { Client, estypes } from "@elastic/elasticsearch";
import type { Logger } from "pino";
import type { ProcessorDependencies } from "../streams/processor.js";
import type { TopicValues } from "../schemas/types.generated.js";
import { InvalidInputError, errorMessage } from "../streams/errors.js";
import type { ProcessorImplementation } from "../streams/processor.js";
import { sinkProcessor } from "../streams/sink.js";
import { findTopic, type ProcessorDeclaration } from "../streams/topology.js";
import {
  checkDocument,
  cleanedFields,
  ensureInquiryIndex,
  routedFields,
  type InquiryDocument,
} from "./inquiry-index.js";
import { redactionGuard, type RedactionGuard } from "./redaction-guard.js";

type SearchTopic = "inquiries.cleaned" | "inquiries.routed";
type Fields<T extends SearchTopic> = (record: TopicValues[T], guard: RedactionGuard) => InquiryDocument;

/** The document fields each input topic fills. */
const FIELDS: { readonly [T in SearchTopic]: Fields<T> } = {
  "inquiries.cleaned": cleanedFields,
  "inquiries.routed": routedFields,
};

const fieldsOf = <T extends SearchTopic>(topic: T, record: TopicValues[T], guard: RedactionGuard): InquiryDocument =>
  FIELDS[topic](record, guard);

const isSearchTopic = (topic: string): topic is SearchTopic => Object.hasOwn(FIELDS, topic);

/** Busy, failing, or racing another writer of the same document (version conflict): worth another try. */
const isRetryable = (status: number): boolean => status === 409 || status === 429 || status >= 500;

/** How many failed items are logged one by one; a closed index fails every item alike. */
const LOGGED_FAILURES = 10;

interface FailedItem {
  readonly inquiryId: string;
  readonly status: number;
  readonly error: estypes.ErrorCause;
}

/**
 * The Elasticsearch sink, a batching sink (streams/sink.ts): keeps one searchable document per
 * inquiry in `config.inquiryIndex`. Each record fills its own fields of its inquiry's document,
 * checked against the mapping; a batch's fields merge into one document per inquiry, later records
 * overwriting earlier ones as successive updates would, and are written with one bulk request of
 * partial updates (doc_as_upsert) keyed by inquiry id, so a redelivered record rewrites the same
 * values, which Elasticsearch skips as a no-op. Documents become searchable at the index's next
 * refresh.
 */
export async function search(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
): Promise<ProcessorImplementation> {
  // Topic names may differ (a test's own topics): what a record is comes from its topic's schema.
  const contractOf = new Map(declaration.inputs.map((topic) => [topic, findTopic(deps.topology, topic).valueSchema]));
  const unhandled = declaration.inputs.filter((topic) => !isSearchTopic(contractOf.get(topic)!));
  if (unhandled.length > 0)
    throw new Error(`${declaration.name}: no search document fields for input topic(s) ${unhandled.join(", ")}`);

  const index = deps.config.inquiryIndex;
  const client = deps.resources.elasticsearch();
  try {
    await ensureInquiryIndex(client, index, deps.log);
  } catch (error) {
    throw new Error(`${declaration.name}: preparing Elasticsearch index ${index} failed: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  const guard = redactionGuard(deps.log);

  return sinkProcessor<InquiryDocument>(
    declaration.name,
    {
      add(input) {
        const topic = input.topic;
        const contract = contractOf.get(topic) ?? "";
        if (!isSearchTopic(contract)) throw new InvalidInputError(`${declaration.name} does not index topic ${topic}`);
        const record = input.value as TopicValues[typeof contract];
        try {
          const fields = fieldsOf(contract, record, guard);
          checkDocument(fields);
          return fields;
        } catch (error) {
          if (!(error instanceof InvalidInputError)) throw error;
          throw new InvalidInputError(
            `indexing ${topic} record of inquiry ${record.inquiry_id} into ${index}: ${error.message}`,
            { cause: error },
          );
        }
      },
      key: (fields) => fields.inquiry_id,
      merge: (held, incoming) => ({ ...held, ...incoming }),
      write: (documents, { log }) => indexDocuments(client, index, documents, log),
      describe: (batch) => `indexing a batch of ${batch.items.length} inquiries into ${index}`,
    },
    { log: deps.log.child({ index }) },
  );
}

/**
 * One bulk request; throws unless every document was written (or was already as written).
 * Returns how many documents came out of it each way (created, updated, noop), for the batch's log.
 */
async function indexDocuments(
  client: Client,
  index: string,
  documents: readonly InquiryDocument[],
  log: Logger,
): Promise<{ results: Record<string, number> }> {
  const response = await client.bulk({
    operations: documents.flatMap((doc) => [
      // Two instances may write one inquiry at once: its cleaned and routed partitions can be assigned to different ones.
      { update: { _index: index, _id: doc.inquiry_id, retry_on_conflict: 3 } },
      { doc, doc_as_upsert: true },
    ]),
  });

  const results = response.items.map((item) => item.update!);
  if (!response.errors) return { results: countBy(results, (r) => r.result ?? "unknown") };
  const failed: FailedItem[] = results.flatMap((r) =>
    r.error === undefined ? [] : [{ inquiryId: String(r._id), status: r.status, error: r.error }],
  );
  const refused = failed.filter((f) => !isRetryable(f.status));
  // process() refuses every document the mapping cannot hold, so a refusal here is about the index
  // (closed, read-only, missing) or a limit that check missed; retrying the batch repeats it until
  // that is fixed. The error's reason is not logged: Elasticsearch quotes the field's value in it.
  for (const f of refused.slice(0, LOGGED_FAILURES)) {
    log.error(
      { inquiryId: f.inquiryId, status: f.status, errorType: f.error.type, causedBy: f.error.caused_by?.type },
      "Elasticsearch refused a document; the batch will be retried until the cause is fixed",
    );
  }
  const byType = Object.entries(countBy(failed, (f) => `${f.error.type} (${f.status})`))
    .map(([type, count]) => `${count} × ${type}`)
    .join(", ");
  // The sink names the batch and makes this a TransientError: the batch is retried.
  throw new Error(`${failed.length} failed: ${byType}`);
}

function countBy<T>(items: readonly T[], keyOf: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[keyOf(item)] = (counts[keyOf(item)] ?? 0) + 1;
  return counts;
}
