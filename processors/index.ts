import type { ProcessorDependencies, ProcessorFactory, ProcessorImplementation } from "../streams/processor.js";
import { chainTask, type StreamTask } from "../streams/task.js";
import { findProcessor, type ChainDeclaration, type TriageProcessorName } from "../streams/topology.js";
import { archive } from "../sinks/archive.js";
import { feedback } from "../sinks/feedback.js";
import { search } from "../sinks/search.js";
import { classify } from "./classify.js";
import { clean } from "./clean.js";
import { drift } from "./drift.js";
import { respond } from "./respond/index.js";
import { retrain } from "./retrain.js";
import { route } from "./route/index.js";
import { sentiment } from "./sentiment.js";
import { urgency } from "./urgency/index.js";

/** The implementation of each declared processor, by name: a processor declared without one is a compile error. */
const IMPLEMENTATIONS: { readonly [Name in TriageProcessorName]: ProcessorFactory } = {
  clean,
  classify,
  sentiment,
  urgency,
  route,
  respond,
  archive,
  feedback,
  drift,
  retrain,
  search,
};

export async function implementationOf(name: string, deps: ProcessorDependencies): Promise<ProcessorImplementation> {
  const { processor } = findProcessor(name);
  const factory = (IMPLEMENTATIONS as Readonly<Record<string, ProcessorFactory>>)[name];
  if (!factory) throw new Error(`processor "${name}" is declared in the topology but has no implementation`);
  return factory(processor, deps);
}

/**
 * A chain's task: each member built with the chain in its dependencies (route then joins in
 * memory: every part of an inquiry arrives in the transaction that routes it). A member that
 * fails to start releases the ones built before it.
 */
export async function chainTaskOf(chain: ChainDeclaration, deps: ProcessorDependencies): Promise<StreamTask> {
  const built = new Map<string, ProcessorImplementation>();
  try {
    for (const name of chain.processors) built.set(name, await implementationOf(name, { ...deps, chain }));
    return chainTask(deps.topology, chain, built);
  } catch (error) {
    for (const implementation of [...built.values()].reverse()) await implementation.close?.().catch(() => undefined);
    throw error;
  }
}
