import type { ProcessorDependencies, ProcessorFactory, ProcessorImplementation } from "../streams/processor.js";
import { findProcessor, type TriageProcessorName } from "../streams/topology.js";
import { archive } from "../sinks/archive.js";
import { search } from "../sinks/search.js";
import { classify } from "./classify.js";
import { clean } from "./clean.js";
import { respond } from "./respond/index.js";
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
  search,
};

export async function implementationOf(name: string, deps: ProcessorDependencies): Promise<ProcessorImplementation> {
  const { processor } = findProcessor(name);
  const factory = (IMPLEMENTATIONS as Readonly<Record<string, ProcessorFactory>>)[name];
  if (!factory) throw new Error(`processor "${name}" is declared in the topology but has no implementation`);
  return factory(processor, deps);
}
