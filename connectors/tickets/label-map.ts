import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { z } from "zod";
import { loadRulesFile } from "../../processors/route/rules-file.js";
import { errorMessage } from "../../streams/errors.js";
import type { LabelTask } from "../labels.js";
import type { LabelField } from "./events.js";
import type { Desk } from "./signatures.js";

/**
 * config/ticket-labels.yaml (the file explains each section): how a desk's groups, ticket types
 * and intent field become department, category and intent labels. Checked against the routing
 * rules when loaded, so a label always names a department or category route knows.
 */
const name = z.string().trim().min(1, "must not be empty");
const deskSection = z.strictObject({
  groups: z.record(name, name).default({}),
  types: z.record(name, name).default({}),
  intent_field: name.optional(),
});
const FILE = z.strictObject({
  version: z.literal(1),
  zendesk: deskSection.default({ groups: {}, types: {} }),
  freshdesk: deskSection.default({ groups: {}, types: {} }),
  generic: deskSection.omit({ intent_field: true }).default({ groups: {}, types: {} }),
});

/** The task each ticket field labels. */
export const FIELD_TASK: Readonly<Record<LabelField, LabelTask>> = { group: "department", type: "category", intent: "intent" };

export interface TicketLabelMap {
  /** The desk's intent field (its id or name), if it has one. */
  intentField(desk: Desk): string | undefined;
  /** The label a desk's field value gives, or undefined when the file does not map it. */
  label(desk: Desk, field: LabelField, value: string): string | undefined;
}

const key = (value: string) => value.trim().toLowerCase();

export async function loadTicketLabels(file: string, routingRulesFile: string): Promise<TicketLabelMap> {
  let parsed: z.output<typeof FILE>;
  try {
    const result = FILE.safeParse(parse(await readFile(file, "utf8")) ?? {});
    if (!result.success) throw new Error(result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    parsed = result.data;
  } catch (error) {
    throw new Error(`ticket labels ${file} refused: ${errorMessage(error)}`, { cause: error });
  }
  const rules = await loadRulesFile(routingRulesFile);
  const problems: string[] = [];
  const sections = { zendesk: parsed.zendesk, freshdesk: parsed.freshdesk, generic: { ...parsed.generic, intent_field: undefined } };
  const maps = Object.fromEntries(
    Object.entries(sections).map(([desk, section]) => {
      const groups = new Map(Object.entries(section.groups).map(([group, department]) => {
        if (!rules.departments.has(department)) problems.push(`${desk}.groups.${group}: unknown department "${department}" (routing rules: ${[...rules.departments.keys()].join(", ")})`);
        return [key(group), department];
      }));
      const types = new Map(Object.entries(section.types).map(([type, category]) => {
        if (!rules.categories.has(key(category))) problems.push(`${desk}.types.${type}: unknown category "${category}" (routing rules: ${[...rules.categories.keys()].join(", ")})`);
        // The classifier's categories are upper-case (routing-rules.yaml); labels must compare equal to its predictions.
        return [key(type), category.toUpperCase()];
      }));
      return [desk, { groups, types, intentField: section.intent_field }];
    }),
  ) as Record<Desk, { groups: Map<string, string>; types: Map<string, string>; intentField: string | undefined }>;
  if (problems.length > 0) throw new Error(`ticket labels ${file} refused:\n  ${problems.join("\n  ")}`);

  return {
    intentField: (desk) => maps[desk].intentField,
    label(desk, field, value) {
      if (field === "group") return maps[desk].groups.get(key(value));
      if (field === "type") return maps[desk].types.get(key(value));
      // Intents are the classifier's lower-case names; an option tag is already one.
      return key(value);
    },
  };
}
