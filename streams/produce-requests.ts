import type { Message, TopicMessages } from "kafkajs";

/**
 * The most a transaction writes in one produce request. The broker refuses a record batch over
 * its `message.max.bytes` (1 MiB by default) and kafkajs puts each partition's share of a request
 * in one batch, so a fetch's worth of outputs (thousands of records under a backlog) is split.
 */
export const PRODUCE_REQUEST_BUDGET_BYTES = 512 * 1024;

/** Bytes a message adds to a record batch: key, value, headers, plus a record's fixed overhead. */
function messageBytes(message: Message): number {
  let bytes = 64 + byteLength(message.key) + byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    bytes += Buffer.byteLength(name) + (Array.isArray(value) ? value.reduce((sum, v) => sum + byteLength(v), 0) : byteLength(value));
  }
  return bytes;
}

function byteLength(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === "string" ? Buffer.byteLength(value) : value.length;
}

/**
 * Groups outgoing messages, in order, into requests of at most `budgetBytes` each (a message
 * larger than the budget goes alone). Order within a topic is kept, so per-partition order is too.
 */
export function splitIntoRequests(
  outgoing: readonly { topic: string; message: Message }[],
  budgetBytes = PRODUCE_REQUEST_BUDGET_BYTES,
): TopicMessages[][] {
  const requests: TopicMessages[][] = [];
  let current = new Map<string, Message[]>();
  let currentBytes = 0;
  const close = () => {
    if (current.size > 0) requests.push([...current].map(([topic, messages]) => ({ topic, messages })));
    current = new Map();
    currentBytes = 0;
  };
  for (const { topic, message } of outgoing) {
    const bytes = messageBytes(message);
    if (currentBytes > 0 && currentBytes + bytes > budgetBytes) close();
    const messages = current.get(topic);
    if (messages) messages.push(message);
    else current.set(topic, [message]);
    currentBytes += bytes;
  }
  close();
  return requests;
}
