import type { IHeaders } from "kafkajs";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Config } from "../config/settings.js";
import type { Endpoints } from "../stack/index.js";
import type { Resources } from "./resources.js";
import type { ChainDeclaration, ProcessorDeclaration, Topology } from "./topology.js";

/** A decoded input record, as a processor sees it. */
export interface InputRecord<Value = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: Value;
  readonly headers: IHeaders;
  /** Kafka timestamp of the record (ms since epoch). */
  readonly timestamp: number;
}

/** A record a processor wants written; the runtime encodes it and writes it in the input's transaction. */
export interface OutputRecord<Value = unknown> {
  readonly topic: string;
  /** Defaults to the input's key, so every record about an inquiry stays in its partition. */
  readonly key?: string;
  readonly value: Value;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ProcessorContext {
  readonly log: Logger;
}

/**
 * A processor: a plain function from one decoded input to zero or more outputs. It throws
 * `InvalidInputError` for input it refuses and `TransientError` (or any other error) for
 * failures worth retrying; the runtime does the rest.
 */
export type Process<Value = unknown> = (
  input: InputRecord<Value>,
  context: ProcessorContext,
) => readonly OutputRecord[] | Promise<readonly OutputRecord[]>;

export interface ProcessorImplementation<Value = unknown> {
  readonly process: Process<Value>;
  /**
   * Sinks: makes durable what `process` buffered, once per transaction, before the transaction
   * commits the offsets of those records. A throw aborts the transaction and the records are
   * redelivered, so `process` must refuse (throw for) any record the store would reject.
   * A sink implements this as a `BatchingSink` (streams/sink.ts, where the contract is spelled out).
   */
  readonly flush?: () => Promise<void>;
  /**
   * In a chain: called once the chain has processed one of its input records and every record
   * that input caused, with that input. A processor that waits for several records (route's
   * join) emits here what can no longer complete: nothing more about that input will come.
   */
  readonly afterInput?: Process;
  /** The processor's own metrics, served on /metrics beside the runtime's. */
  readonly metrics?: Registry;
  /** Releases what the processor holds (models, connections) on shutdown. */
  readonly close?: () => Promise<void>;
}

/** What a processor may use to build itself: its topology, settings, and the host's resources. */
export interface ProcessorDependencies {
  /** The topology the processor runs in: its declaration's topics are looked up here, never in a global. */
  readonly topology: Topology;
  readonly config: Config;
  readonly endpoints: Endpoints;
  readonly log: Logger;
  /** The process's shared clients and served models (the host closes them after the processors). */
  readonly resources: Resources;
  /**
   * The chain the processor runs in, if it runs chained: what a member earlier in the chain
   * writes arrives in the same transaction, in causal order, instead of from Kafka.
   */
  readonly chain?: ChainDeclaration;
}

/** Builds a declared processor's implementation from its declaration and dependencies. */
export type ProcessorFactory = (
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
) => ProcessorImplementation | Promise<ProcessorImplementation>;
