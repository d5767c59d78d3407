import type { ProcessorImplementation } from "../streams/processor.js";
import { RELAY, findProcessor, type ProcessorDeclaration } from "../streams/topology.js";
import { relay } from "./relay.js";

type Factory = (declaration: ProcessorDeclaration) => ProcessorImplementation | Promise<ProcessorImplementation>;

/** The implementation of each declared processor, by name. */
const IMPLEMENTATIONS: Readonly<Record<string, Factory>> = {
  ...Object.fromEntries(RELAY.processors.map((p) => [p.name, relay])),
};

export async function implementationOf(name: string): Promise<ProcessorImplementation> {
  const { processor } = findProcessor(name);
  const factory = IMPLEMENTATIONS[name];
  if (!factory) throw new Error(`processor "${name}" is declared in the topology but has no implementation`);
  return factory(processor);
}
