import { createReadStream } from "node:fs";
import { readFile, readdir, stat } from "node:fs/promises";
import path from "node:path";

/** One message of a back-fill, with where it came from (for the report: a file, and its position in an mbox). */
export interface MailFileMessage {
  readonly raw: Buffer;
  readonly file: string;
  /** 1-based position in an mbox; absent for a .eml file. */
  readonly position?: number;
}

const LF = 10;
/** mboxrd quotes a body line "From " as ">From " (and ">From " as ">>From "): one `>` comes off. */
const QUOTED_FROM = /^>+From /;

/**
 * The messages of an mbox file, one at a time (a mailbox export can be larger than memory). A
 * message starts at a "From " line at the start of the file or after an empty line; that line is
 * the mbox's, not the message's, and so is the empty line before the next one.
 */
export async function* mboxMessages(file: string): AsyncGenerator<MailFileMessage> {
  let lines: Buffer[] = [];
  let position = 0;
  let previousEmpty = true;
  let pending = Buffer.alloc(0);
  const flush = function* (): Generator<MailFileMessage> {
    if (position === 0) return;
    const last = lines.at(-1);
    if (last && (last.length === 0 || (last.length === 1 && last[0] === 13))) lines.pop();
    yield { raw: Buffer.concat(lines.map((line) => Buffer.concat([line, Buffer.from([LF])]))), file, position };
  };
  const line = function* (bytes: Buffer): Generator<MailFileMessage> {
    const text = bytes.toString("latin1", 0, Math.min(bytes.length, 6));
    if (previousEmpty && text.startsWith("From ")) {
      yield* flush();
      position += 1;
      lines = [];
      previousEmpty = false;
      return;
    }
    previousEmpty = bytes.length === 0 || (bytes.length === 1 && bytes[0] === 13);
    if (position === 0) return;
    const head = bytes.toString("latin1", 0, Math.min(bytes.length, 64));
    lines.push(QUOTED_FROM.test(head) ? bytes.subarray(1) : bytes);
  };
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    let data = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    let start = 0;
    for (let end = data.indexOf(LF, start); end !== -1; end = data.indexOf(LF, start)) {
      yield* line(data.subarray(start, end));
      start = end + 1;
    }
    data = data.subarray(start);
    pending = Buffer.from(data);
  }
  if (pending.length > 0) yield* line(pending);
  yield* flush();
}

/**
 * The messages at `target`: an mbox file, a single .eml file, or a folder of .eml files (in name
 * order, not recursive).
 */
export async function* mailFileMessages(target: string): AsyncGenerator<MailFileMessage> {
  const info = await stat(target);
  if (info.isDirectory()) {
    const names = (await readdir(target)).filter((name) => name.toLowerCase().endsWith(".eml")).sort();
    if (names.length === 0) throw new Error(`${target} holds no .eml files`);
    for (const name of names) {
      const file = path.join(target, name);
      yield { raw: await readFile(file), file };
    }
    return;
  }
  if (target.toLowerCase().endsWith(".eml")) {
    yield { raw: await readFile(target), file: target };
    return;
  }
  yield* mboxMessages(target);
}
