import type { ProcessorImplementation } from "../streams/processor.js";
import type { ProcessorDeclaration } from "../streams/topology.js";

/** Forwards each inquiry unchanged to the hop's output: the runtime's demo and benchmark load. */
export function relay(declaration: ProcessorDeclaration): ProcessorImplementation {
  const [output] = declaration.outputs;
  if (!output || declaration.outputs.length !== 1) throw new Error(`${declaration.name}: a relay hop has exactly one output`);
  return { process: (input) => [{ topic: output, value: input.value }] };
}
