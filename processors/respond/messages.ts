import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { REPO_ROOT } from "../../config/settings.js";
import { parseTemplate, renderTemplate, TemplateError, type Template } from "../../knowledge-base/template.js";

/** The fixed parts of every reply, per language: see the file's own comments. */
export const MESSAGES_FILE = path.join(REPO_ROOT, "knowledge-base", "messages.yaml");

/** Replies are drafted in English; every language listed in the file gets its own holding messages. */
export const FALLBACK_LANGUAGE = "en";

const hours = z.number().int().positive();
const text = z.string().trim().min(1);
const messagesFile = z.strictObject({
  expectations: z.strictObject({
    default_hours: hours,
    escalated_hours: hours,
    departments: z.record(z.string(), hours),
  }),
  languages: z
    .record(
      z.string().regex(/^[a-z]{2}$/, "ISO 639-1 code"),
      z.strictObject({
        greeting: text,
        greeting_named: text,
        sign_off: text,
        handoff: text,
        escalated: text,
        out_of_scope: text,
      }),
    )
    .refine((languages) => FALLBACK_LANGUAGE in languages, `the fallback language "${FALLBACK_LANGUAGE}" is required`),
});

type LanguageTemplates = Readonly<
  Record<"greeting" | "greeting_named" | "sign_off" | "handoff" | "escalated" | "out_of_scope", Template>
>;

export interface HoldingContext {
  readonly language: string;
  readonly department: string;
  readonly escalated: boolean;
  readonly customerName: string | null;
  /** The intent model found the inquiry out of scope: the holding message says what we help with (unless escalated). */
  readonly outOfScope?: boolean;
}

export interface Messages {
  /** The languages with their own messages. */
  readonly languages: ReadonlySet<string>;
  /** "Hello Dana," or "Hello," in `language` (English when it has no messages). */
  greeting(language: string, customerName: string | null): string;
  signOff(language: string): string;
  /** A complete hand-off reply: greeting, holding message with the reply-time expectation, sign-off. */
  holding(context: HoldingContext): string;
  /** Hours until a person replies, as the holding message promises. */
  expectedHours(department: string, escalated: boolean): number;
}

const PLACEHOLDERS: ReadonlySet<string> = new Set(["customer_name", "hours"]);

/** Reads and validates the messages file; a bad file is refused with the reason. */
export function readMessages(file: string = MESSAGES_FILE): Messages {
  let parsed: z.output<typeof messagesFile>;
  try {
    const result = messagesFile.safeParse(parseYaml(readFileSync(file, "utf8")));
    if (!result.success)
      throw new Error(result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; "));
    parsed = result.data;
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`, { cause: error });
  }
  const templates = new Map<string, LanguageTemplates>();
  for (const [language, entries] of Object.entries(parsed.languages)) {
    const compiled = Object.fromEntries(
      Object.entries(entries).map(([key, source]) => {
        try {
          return [key, parseTemplate(source, PLACEHOLDERS)];
        } catch (error) {
          if (error instanceof TemplateError)
            throw new Error(`${file}: languages.${language}.${key}: ${error.message}`, { cause: error });
          throw error;
        }
      }),
    ) as LanguageTemplates;
    templates.set(language, compiled);
  }
  const { expectations } = parsed;
  const forLanguage = (language: string) => templates.get(language) ?? templates.get(FALLBACK_LANGUAGE)!;
  const expectedHours = (department: string, escalated: boolean) =>
    escalated ? expectations.escalated_hours : (expectations.departments[department] ?? expectations.default_hours);

  const greeting = (language: string, customerName: string | null) =>
    customerName
      ? renderTemplate(forLanguage(language).greeting_named, { customer_name: customerName })
      : renderTemplate(forLanguage(language).greeting, {});
  const signOff = (language: string) => renderTemplate(forLanguage(language).sign_off, {});

  return {
    languages: new Set(templates.keys()),
    greeting,
    signOff,
    expectedHours,
    holding({ language, department, escalated, customerName, outOfScope = false }) {
      const kind = escalated ? "escalated" : outOfScope ? "out_of_scope" : "handoff";
      const body = renderTemplate(forLanguage(language)[kind], {
        hours: String(expectedHours(department, escalated)),
      });
      return [greeting(language, customerName), body, signOff(language)].join("\n\n");
    },
  };
}
