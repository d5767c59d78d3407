import type { ProcessorImplementation } from "./processor.js";
import { chainMembers, chainOf, writtenInChain, type ChainDeclaration, type ProcessorDeclaration, type Topology } from "./topology.js";

export interface TaskMember {
  readonly declaration: ProcessorDeclaration;
  readonly implementation: ProcessorImplementation;
}

/**
 * What one runtime instance runs as one consumer group with one transactional producer: a
 * processor on its own, or a chain of them. A processor alone is a chain of one.
 */
export interface StreamTask {
  /** The consumer group, the prefix of the transactional id and the `processor` label of the task's own metrics. */
  readonly name: string;
  /** Topics consumed from Kafka. */
  readonly inputs: readonly string[];
  /** Topics written by a member and read by a later one: handed on in the transaction, and written too. */
  readonly handedOn: ReadonlySet<string>;
  readonly members: readonly TaskMember[];
  readonly concurrency: number;
  readonly minCommitIntervalMs: number;
  /**
   * By input topic, the group the task takes turns with on it (a chain and the member reading
   * its input): where that group got further, the task starts there (runtime.ts, adoptOffsets).
   */
  readonly adoptsOffsetsOf: ReadonlyMap<string, string>;
}

/** A processor alone; given its topology, a member of a chain takes over the chain's offsets on the chain's inputs. */
export function processorTask(declaration: ProcessorDeclaration, implementation: ProcessorImplementation, topology?: Topology): StreamTask {
  const chain = topology && chainOf(topology, declaration.name);
  return {
    name: declaration.name,
    inputs: declaration.inputs,
    handedOn: new Set(),
    members: [{ declaration, implementation }],
    concurrency: declaration.concurrency ?? 1,
    minCommitIntervalMs: declaration.minCommitIntervalMs ?? 0,
    adoptsOffsetsOf: new Map(chain ? declaration.inputs.filter((t) => chain.inputs.includes(t)).map((t) => [t, chain.name]) : []),
  };
}

/** `implementations` by member name; the chain is checked against its topology first. */
export function chainTask(
  topology: Topology,
  chain: ChainDeclaration,
  implementations: ReadonlyMap<string, ProcessorImplementation>,
): StreamTask {
  const members = chainMembers(topology, chain).map((declaration) => {
    const implementation = implementations.get(declaration.name);
    if (!implementation) throw new Error(`chain ${chain.name}: no implementation for its member ${declaration.name}`);
    return { declaration, implementation };
  });
  const read = new Set(members.flatMap((m) => m.declaration.inputs));
  return {
    name: chain.name,
    inputs: chain.inputs,
    handedOn: new Set([...writtenInChain(topology, chain)].filter((topic) => read.has(topic))),
    members,
    concurrency: chain.concurrency,
    // A chain is on the reply path: it commits as soon as a fetch is processed.
    minCommitIntervalMs: 0,
    adoptsOffsetsOf: new Map(
      chain.inputs.map((topic) => [topic, members.find((m) => m.declaration.inputs.includes(topic))!.declaration.name]),
    ),
  };
}

/** Every topic a task reads or writes: what its codec must know. */
export function taskTopics(task: StreamTask): Set<string> {
  return new Set([...task.inputs, ...task.members.flatMap((m) => [...m.declaration.inputs, ...m.declaration.outputs])]);
}
