import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node } from "yaml";
import type { z } from "zod";
import { RULES_FILE_SCHEMA, compileRules, type RoutingRules } from "./rules.js";

/** One reason a rules file is refused, at the line and column it concerns (1-based). */
export interface RulesProblem {
  readonly line: number;
  readonly column: number;
  readonly reason: string;
}

/** A rules file that cannot be applied; the message lists `file:line:column: reason` per problem. */
export class RulesError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly RulesProblem[],
  ) {
    super(
      `routing rules ${file} refused:\n${problems.map((p) => `  ${file}:${p.line}:${p.column}: ${p.reason}`).join("\n")}`,
    );
    this.name = "RulesError";
  }
}

export const digestOf = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 12);

/** Parses and validates the text of a rules file; throws a RulesError with the line of each problem. */
export function parseRules(text: string, file: string): RoutingRules {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const [syntaxError] = document.errors;
  if (syntaxError) {
    // Only the first: the parser's later errors are usually consequences of it.
    const { line, col } = lineCounter.linePos(syntaxError.pos[0]);
    throw new RulesError(file, [{ line, column: col, reason: `YAML: ${syntaxError.message}` }]);
  }
  const parsed = RULES_FILE_SCHEMA.safeParse(document.toJS() ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) => problemsOf(issue, document, lineCounter));
    throw new RulesError(
      file,
      problems.sort((a, b) => a.line - b.line || a.column - b.column),
    );
  }
  return compileRules(parsed.data, digestOf(text));
}

export async function loadRulesFile(file: string): Promise<RoutingRules> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new RulesError(file, [{ line: 1, column: 1, reason: `cannot read the file: ${(error as Error).message}` }]);
  }
  return parseRules(text, file);
}

function problemsOf(issue: z.core.$ZodIssue, document: Document, lineCounter: LineCounter): RulesProblem[] {
  const at = (path: readonly PropertyKey[], key: boolean) => {
    const { line, col } = lineCounter.linePos(offsetOf(document, path, key));
    return { line, column: col };
  };
  const where = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({ ...at([...issue.path, key], true), reason: `${where}unknown key "${key}"` }));
  }
  return [{ ...at(issue.path, false), reason: `${where}${issue.message}` }];
}

/**
 * Where in the text the node at `path` starts: the key itself when `key` is set (for unknown
 * keys), else its value. When the path does not exist (a missing required key), the key that
 * introduces the deepest existing map or list item.
 */
function offsetOf(document: Document, path: readonly PropertyKey[], key: boolean): number {
  let node: unknown = document.contents;
  let offset = (document.contents as Node | null)?.range?.[0] ?? 0;
  for (const [i, segment] of path.entries()) {
    const last = i === path.length - 1;
    let introducer: Node | undefined;
    let next: Node | undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) return offset;
      introducer = pair.key as Node;
      next = (key && last ? pair.key : pair.value) as Node | undefined;
    } else if (isSeq(node) && typeof segment === "number") {
      introducer = next = node.items[segment] as Node | undefined;
    }
    if (!next?.range) return introducer?.range?.[0] ?? offset;
    offset = last ? next.range[0] : (introducer?.range?.[0] ?? next.range[0]);
    node = next;
  }
  return offset;
}
