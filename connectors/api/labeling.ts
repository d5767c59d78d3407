import { readFile } from "node:fs/promises";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import type pg from "pg";
import { parseManifest } from "../../models/manifest.js";
import { productionVersionDir } from "../../models/registry.js";
import { loadRulesFile } from "../../processors/route/rules-file.js";
import { errorMessage } from "../../streams/errors.js";
import type { ConnectorDependencies } from "../connector.js";
import { IntakeUnavailableError } from "../intake.js";
import { LABEL_TASKS, UnlabelableError, labelRecord, type LabelTask } from "../labels.js";
import { ApiError, UNAVAILABLE_RETRY_AFTER_S, UnavailableError } from "./errors.js";
import { ERROR, INQUIRY_PARAMS, LABELS_ACCEPTED, NEW_LABELS } from "./schemas.js";

/** How long the classes a task knows are remembered: a promoted model or an edited rules file shows within this. */
const CLASSES_TTL_MS = 10_000;

/**
 * The classes a person may give for a free-text task: the production model's labels (intent,
 * category) and the routing rules' departments. Sentiment and urgency are the contracts' enums,
 * which the request schema checks. The last good answer is kept while a source cannot be read.
 */
export function knownClasses(pool: pg.Pool, modelsDir: string, registrySchema: string, rulesFile: string) {
  const cached = new Map<LabelTask, { classes: ReadonlySet<string>; until: number }>();
  const read = async (task: LabelTask): Promise<ReadonlySet<string>> => {
    if (task === "department") return new Set((await loadRulesFile(rulesFile)).departments.keys());
    const directory = await productionVersionDir(pool, task, modelsDir, registrySchema);
    return new Set(parseManifest(await readFile(path.join(directory, "manifest.json"), "utf8")).labels);
  };
  return async (task: LabelTask): Promise<ReadonlySet<string> | undefined> => {
    if (task === "sentiment" || task === "urgency") return undefined;
    const entry = cached.get(task);
    if (entry && entry.until > Date.now()) return entry.classes;
    try {
      const classes = await read(task);
      cached.set(task, { classes, until: Date.now() + CLASSES_TTL_MS });
      return classes;
    } catch (error) {
      if (entry) return entry.classes;
      throw new ApiError(503, "classes_unavailable", `cannot tell which ${task} labels exist now (${errorMessage(error)}); retry later`, {
        headers: { "retry-after": String(UNAVAILABLE_RETRY_AFTER_S) },
      });
    }
  };
}

/** The classes a task's label may take (undefined: the request schema's enum decides). */
export type ClassesOf = ReturnType<typeof knownClasses>;

export function labelRoutes(app: FastifyInstance, deps: ConnectorDependencies, pool: pg.Pool, classesOf: ClassesOf): void {
  const { intake, metrics, declaration } = deps;

  app.post(
    "/v1/inquiries/:id/labels",
    {
      config: { scope: "label" },
      schema: {
        summary: "Give human labels for an inquiry",
        description:
          "Each label becomes a predictions.feedback record (label_source agent) joined to the prediction it judges (for department: the routing decision); answers 202 once Kafka has them all. A later label for the same task replaces an earlier one.",
        tags: ["labels"],
        params: INQUIRY_PARAMS,
        body: NEW_LABELS,
        response: { 202: LABELS_ACCEPTED, ...Object.fromEntries([400, 401, 403, 404, 409, 413, 415, 422, 429, 503].map((status) => [status, ERROR])) },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const given = request.body as Partial<Record<LabelTask, string>>;
      const labels = LABEL_TASKS.flatMap((task) => (given[task] === undefined ? [] : [{ task, label: given[task] }]));
      for (const { task, label } of labels) {
        const classes = await classesOf(task);
        if (classes && !classes.has(label)) {
          const known = [...classes].sort().join(", ");
          throw new ApiError(422, "validation_failed", `${task}: unknown ${task} "${label}"`, { field: task, reason: `is not a known ${task}; known: ${known}` });
        }
      }
      // Every record is built (each can still be refused) before any is published.
      const records = await Promise.all(
        labels.map(({ task, label }) =>
          labelRecord(pool, { inquiryId: id, task, label, source: "agent" }).catch((error: unknown) => {
            if (!(error instanceof UnlabelableError)) throw new UnavailableError("postgres", error);
            throw error.reason === "unknown_inquiry"
              ? new ApiError(404, "not_found", error.message)
              : new ApiError(409, "not_predicted_yet", error.message, { headers: { "retry-after": "2" } });
          }),
        ),
      );
      try {
        await Promise.all(records.map((record) => intake.publishFeedback(record)));
      } catch (error) {
        // A label that did reach Kafka is harmless when the client resends: it names the same prediction and the newest label wins.
        if (error instanceof IntakeUnavailableError) throw new UnavailableError("kafka", error);
        throw error;
      }
      metrics.accepted.inc({ connector: declaration.name, kind: "label" }, records.length);
      return reply.code(202).send({
        inquiry_id: id,
        labels: records.map(({ prediction_id, task, model, predicted_label, label }) => ({ prediction_id, task, model, predicted_label, label })),
      });
    },
  );
}
