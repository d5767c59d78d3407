import type { ProcessorImplementation } from "./processor.js";
import { chainMembers, writtenInChain, type ChainDeclaration, type ProcessorDeclaration, type Topology } from "./topology.js";

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
   * For a consumer group new to the cluster: the group whose committed offsets it starts from,
   * by input topic (a chain takes over where its members left off when they ran alone).
   */
  readonly adoptsOffsetsOf: ReadonlyMap<string, string>;
}

export function processorTask(declaration: ProcessorDeclaration, implementation: ProcessorImplementation): StreamTask {
  return {
    name: declaration.name,
    inputs: declaration.inputs,
    handedOn: new Set(),
    members: [{ declaration, implementation }],
    concurrency: declaration.concurrency ?? 1,
    minCommitIntervalMs: declaration.minCommitIntervalMs ?? 0,
    adoptsOffsetsOf: new Map(),
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
