import type { Logger } from "pino";
import type { Config } from "../config/settings.js";
import type { Endpoints } from "../stack/index.js";
import type { ProcessorImplementation } from "../streams/processor.js";
import { findProcessor, type ProcessorDeclaration } from "../streams/topology.js";
import { archive } from "../sinks/archive.js";
import { search } from "../sinks/search.js";
import { classify } from "./classify.js";
import { clean } from "./clean.js";
import { respond } from "./respond/index.js";
import { route } from "./route/index.js";
import { sentiment } from "./sentiment.js";
import { urgency } from "./urgency/index.js";

/** What a processor may use to build itself: it opens its own clients (models, stores) from these. */
export interface ProcessorDependencies {
  readonly config: Config;
  readonly endpoints: Endpoints;
  readonly log: Logger;
}

type Factory = (declaration: ProcessorDeclaration, deps: ProcessorDependencies) => ProcessorImplementation | Promise<ProcessorImplementation>;

/** The implementation of each declared processor, by name. */
const IMPLEMENTATIONS: Readonly<Record<string, Factory>> = {
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
  const factory = IMPLEMENTATIONS[name];
  if (!factory) throw new Error(`processor "${name}" is declared in the topology but has no implementation`);
  return factory(processor, deps);
}
