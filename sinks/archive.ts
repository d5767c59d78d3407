import type { ProcessorDependencies } from "../streams/processor.js";
import type { TopicValues } from "../schemas/types.generated.js";
import { createPool, migrate } from "../storage/postgres.js";
import { InvalidInputError, TransientError, errorMessage } from "../streams/errors.js";
import type { ProcessorImplementation } from "../streams/processor.js";
import type { ProcessorDeclaration } from "../streams/topology.js";
import { ArchiveBatch } from "./archive-batch.js";
import { writeArchive } from "./archive-store.js";
import { redactionGuard, type RedactionGuard } from "./redaction-guard.js";

type ArchivedTopic = "inquiries.cleaned" | "predictions.feedback" | "inquiries.routed" | "inquiries.responses";
type Adder<T extends ArchivedTopic> = (batch: ArchiveBatch, record: TopicValues[T], guard: RedactionGuard) => void;

/** Which table each input topic is archived into. */
const ADDERS: { readonly [T in ArchivedTopic]: Adder<T> } = {
  "inquiries.cleaned": (batch, record, guard) => batch.addInquiry(record, guard),
  "predictions.feedback": (batch, record) => batch.addPrediction(record),
  "inquiries.routed": (batch, record) => batch.addRoutingDecision(record),
  "inquiries.responses": (batch, record, guard) => batch.addResponse(record, guard),
};

const isArchivedTopic = (topic: string): topic is ArchivedTopic => Object.hasOwn(ADDERS, topic);

/**
 * The PostgreSQL sink: archives inquiries, predictions, routing decisions and responses. `process`
 * checks each record and adds it to the transaction's batch; `flush` writes the batch in one
 * PostgreSQL transaction, one idempotent multi-row upsert per table (see archive-store.ts), before
 * the runtime commits the records' offsets. A redelivered batch writes nothing twice.
 */
export async function archive(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
): Promise<ProcessorImplementation> {
  const unhandled = declaration.inputs.filter((topic) => !isArchivedTopic(topic));
  if (unhandled.length > 0)
    throw new Error(`${declaration.name}: no archive table for input topic(s) ${unhandled.join(", ")}`);

  const db = createPool(deps.endpoints, `switchboard-${declaration.name}`);
  try {
    await migrate(db, deps.log);
  } catch (error) {
    await db.end();
    throw error;
  }
  const guard = redactionGuard(deps.log);
  const log = deps.log.child({ processor: declaration.name });
  let batch = new ArchiveBatch();

  const add = <T extends ArchivedTopic>(topic: T, record: TopicValues[T]): void => ADDERS[topic](batch, record, guard);

  return {
    process(input) {
      const topic = input.topic;
      if (!isArchivedTopic(topic)) throw new InvalidInputError(`${declaration.name} does not archive topic ${topic}`);
      const record = input.value as TopicValues[typeof topic];
      try {
        add(topic, record);
      } catch (error) {
        if (!(error instanceof InvalidInputError)) throw error;
        throw new InvalidInputError(`archiving ${topic} record of inquiry ${record.inquiry_id}: ${error.message}`, {
          cause: error,
        });
      }
      return [];
    },

    async flush() {
      if (batch.records === 0) return;
      // The records are redelivered if this write fails, so the batch is done with either way.
      const flushing = batch;
      batch = new ArchiveBatch();
      try {
        const written = await writeArchive(db, flushing.rows());
        log.debug({ records: flushing.records, written }, "batch archived");
      } catch (error) {
        throw new TransientError(`archiving a batch of ${flushing.records} records: ${errorMessage(error)}`, {
          cause: error,
        });
      }
    },

    close: () => db.end(),
  };
}
