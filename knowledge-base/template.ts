/**
 * The reply-template language of the knowledge base: a small, logic-less subset of Mustache.
 *
 *   {{name}}                    the value of `name`
 *   {{#name}}…{{/name}}         the section, only when `name` has a value
 *   {{^name}}…{{/name}}         the section, only when `name` has no value
 *
 * Templates are parsed once (at load) against the names they may use, so a typo in an article
 * is refused with the article and the name instead of rendering a broken reply later.
 */

export type TemplateNode =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "value"; readonly name: string }
  | {
      readonly kind: "section";
      readonly name: string;
      readonly inverted: boolean;
      readonly children: readonly TemplateNode[];
    };

export interface Template {
  readonly source: string;
  readonly nodes: readonly TemplateNode[];
  /** Every placeholder name the template refers to. */
  readonly names: ReadonlySet<string>;
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

const TAG = /\{\{\s*([#^/]?)\s*([a-z_]+)\s*\}\}/g;

/** Parses `source`, refusing unknown names, unbalanced sections and stray braces. */
export function parseTemplate(source: string, allowedNames: ReadonlySet<string>): Template {
  const root: TemplateNode[] = [];
  const open: { name: string; inverted: boolean; children: TemplateNode[] }[] = [];
  const names = new Set<string>();
  const current = () => open.at(-1)?.children ?? root;
  const pushText = (text: string, offset: number) => {
    if (text.includes("{{") || text.includes("}}")) throw new TemplateError(`malformed tag near offset ${offset}`);
    if (text) current().push({ kind: "text", text });
  };

  let last = 0;
  for (const match of source.matchAll(TAG)) {
    const [tag, sigil, name] = match as unknown as [string, string, string];
    pushText(source.slice(last, match.index), last);
    last = match.index + tag.length;
    if (!allowedNames.has(name))
      throw new TemplateError(`unknown placeholder "${name}" (allowed: ${[...allowedNames].join(", ")})`);
    names.add(name);
    if (sigil === "#" || sigil === "^") {
      open.push({ name, inverted: sigil === "^", children: [] });
    } else if (sigil === "/") {
      const section = open.pop();
      if (section?.name !== name)
        throw new TemplateError(`{{/${name}}} closes ${section ? `{{#${section.name}}}` : "nothing"}`);
      current().push({ kind: "section", ...section });
    } else {
      current().push({ kind: "value", name });
    }
  }
  pushText(source.slice(last), last);
  if (open.length > 0) throw new TemplateError(`section {{#${open.at(-1)!.name}}} is never closed`);
  return { source, nodes: root, names };
}

/** Renders a parsed template; a missing or empty value counts as absent. */
export function renderTemplate(template: Template, values: Readonly<Record<string, string | undefined>>): string {
  const present = (name: string) => (values[name] ?? "") !== "";
  const render = (nodes: readonly TemplateNode[]): string =>
    nodes
      .map((node) => {
        switch (node.kind) {
          case "text":
            return node.text;
          case "value":
            return values[node.name] ?? "";
          case "section":
            return present(node.name) !== node.inverted ? render(node.children) : "";
        }
      })
      .join("");
  return tidy(render(template.nodes));
}

/** Sections that render empty can leave doubled spaces or blank lines behind; remove them. */
function tidy(text: string): string {
  return text
    .split("\n")
    .map((line) =>
      line
        .replace(/ {2,}/g, " ")
        .replace(/ +([.,;:])/g, "$1")
        .trimEnd(),
    )
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}
