import type { SchemaTopic, TopicValues } from "../schemas/types.generated.js";
import type { InputRecord, OutputRecord, Process } from "./processor.js";
import { findTopic, type ProcessorDeclaration, type Topology } from "./topology.js";

/**
 * A processor's typed ends, bound to its declaration when it is built: it names the contract
 * (the schema) it reads or writes, never a topic, so the same code runs in the triage topology
 * and in a test's own topics; a declaration that lacks the contract fails at start-up.
 */

/** Writes a value of schema `S` to the declaration's output topic that carries it. */
export type Output<S extends SchemaTopic> = (
  value: TopicValues[S],
  options?: { readonly key?: string },
) => OutputRecord<TopicValues[S]>;

function carrying(topology: Topology, topics: readonly string[], schema: SchemaTopic): string[] {
  return topics.filter((topic) => findTopic(topology, topic).valueSchema === schema);
}

export function outputOf<S extends SchemaTopic>(
  topology: Topology,
  declaration: ProcessorDeclaration,
  schema: S,
): Output<S> {
  const [topic, ...others] = carrying(topology, declaration.outputs, schema);
  if (!topic || others.length > 0) {
    throw new Error(
      `${declaration.name} needs exactly one output carrying ${schema}; it declares ${declaration.outputs.join(", ") || "none"}`,
    );
  }
  return (value, options) => ({ topic, value, ...(options?.key === undefined ? {} : { key: options.key }) });
}

/**
 * A processor of records of schema `S`: checks that every input of the declaration carries it,
 * and hands `process` its records typed so. The runtime decoded each record with its topic's
 * contract, so the value is a `TopicValues[S]`; this is the one place that says so.
 */
export function reading<S extends SchemaTopic>(
  topology: Topology,
  declaration: ProcessorDeclaration,
  schema: S,
  process: Process<TopicValues[S]>,
): Process {
  const matching = carrying(topology, declaration.inputs, schema);
  if (matching.length === 0 || matching.length !== declaration.inputs.length) {
    throw new Error(`${declaration.name} reads ${schema}; its inputs are ${declaration.inputs.join(", ") || "none"}`);
  }
  return (record, context) => process(record as InputRecord<TopicValues[S]>, context);
}
