import type { ProcessorDependencies } from "../streams/processor.js";
import type { PredictionFeedback, TopicValues } from "../schemas/types.generated.js";
import { InvalidInputError } from "../streams/errors.js";
import type { InputRecord, ProcessorImplementation } from "../streams/processor.js";
import { sinkProcessor } from "../streams/sink.js";
import { findTopic, type ProcessorDeclaration } from "../streams/topology.js";
import {
  agentReplyItem,
  archiveKey,
  archiveRows,
  inquiryItem,
  newerItem,
  predictionItem,
  responseItem,
  routingDecisionItem,
  type ArchiveItem,
} from "./archive-batch.js";
import { writeArchive } from "./archive-store.js";
import { redactionGuard, type RedactionGuard } from "./redaction-guard.js";

type ArchivedTopic = "inquiries.cleaned" | "predictions.feedback" | "inquiries.routed" | "inquiries.responses" | "inquiries.replies";
type ItemOf<T extends ArchivedTopic> = (record: TopicValues[T], guard: RedactionGuard) => ArchiveItem;

/** Which table the records of each contract (an input topic's schema) are archived into. */
const ITEMS: { readonly [T in ArchivedTopic]: ItemOf<T> } = {
  "inquiries.cleaned": inquiryItem,
  "predictions.feedback": predictionItem,
  "inquiries.routed": routingDecisionItem,
  "inquiries.responses": responseItem,
  "inquiries.replies": agentReplyItem,
};

const itemOf = <T extends ArchivedTopic>(topic: T, record: TopicValues[T], guard: RedactionGuard): ArchiveItem =>
  ITEMS[topic](record, guard);

const isArchivedTopic = (topic: string): topic is ArchivedTopic => Object.hasOwn(ITEMS, topic);

/**
 * The PostgreSQL sink, a batching sink (streams/sink.ts): archives inquiries, predictions,
 * routing decisions, responses and agents' replies. Each record becomes a checked row of its table; the rows of
 * a batch collapse to one per key, the newer record winning (archive-batch.ts), and are written
 * in one PostgreSQL transaction, one idempotent multi-row upsert per table (archive-store.ts). A
 * redelivered batch writes nothing twice. Shadow predictions are left to the feedback sink.
 */
export async function archive(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
): Promise<ProcessorImplementation> {
  // Topic names may differ (a test's own topics): what a record is comes from its topic's schema.
  const contractOf = new Map(declaration.inputs.map((topic) => [topic, findTopic(deps.topology, topic).valueSchema]));
  const unhandled = declaration.inputs.filter((topic) => !isArchivedTopic(contractOf.get(topic)!));
  if (unhandled.length > 0)
    throw new Error(`${declaration.name}: no archive table for input topic(s) ${unhandled.join(", ")}`);

  const db = await deps.resources.postgres();
  const guard = redactionGuard(deps.log);

  const implementation = sinkProcessor<ArchiveItem>(
    declaration.name,
    {
      add(input) {
        const topic = input.topic;
        const contract = contractOf.get(topic) ?? "";
        if (!isArchivedTopic(contract)) throw new InvalidInputError(`${declaration.name} does not archive topic ${topic}`);
        const record = input.value as TopicValues[typeof contract];
        try {
          return itemOf(contract, record, guard);
        } catch (error) {
          if (!(error instanceof InvalidInputError)) throw error;
          throw new InvalidInputError(`archiving ${topic} record of inquiry ${record.inquiry_id}: ${error.message}`, {
            cause: error,
          });
        }
      },
      key: archiveKey,
      merge: newerItem,
      write: async (items) => ({ written: await writeArchive(db, archiveRows(items)) }),
      describe: (batch) => `archiving a batch of ${batch.records} records`,
    },
    { log: deps.log },
  );
  // A shadow version's predictions were never routed: the archive, what happened to each inquiry, keeps production's.
  const isShadow = (input: InputRecord) =>
    contractOf.get(input.topic) === "predictions.feedback" && (input.value as PredictionFeedback).stage === "shadow";
  return { ...implementation, process: (input, context) => (isShadow(input) ? [] : implementation.process(input, context)) };
}
