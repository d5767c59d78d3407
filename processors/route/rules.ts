import { z } from "zod";
import { SentimentValues, UrgencyLevelValues, type Sentiment, type UrgencyLevel } from "../../schemas/types.generated.js";

/**
 * The routing rules: the schema of `config/routing-rules.yaml` (see the file for what each
 * section means) and the compiled form the router reads. Labels (categories, intents, tiers)
 * are matched case-insensitively, so the compiled maps are keyed by lower-case names.
 */

const label = z.string().trim().min(1, "must not be empty");
const queue = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "a queue name is lower-case letters, digits, . _ -");
const language = z.string().regex(/^[a-z]{2,3}$/, "a language is an ISO 639 code such as en or und");
const probability = z.number().min(0).max(1);
const points = z.number().min(0).max(100);
const labels = z.array(label).min(1);
/** Strategies whose draft may go out without an agent; a hand-off (`human`) never does. */
export const AUTO_REPLY_STRATEGIES = ["template", "retrieval", "llm"] as const;

const condition = z
  .strictObject({
    urgency: z.array(z.enum(UrgencyLevelValues)).min(1).optional(),
    sentiment: z.array(z.enum(SentimentValues)).min(1).optional(),
    tier: labels.optional(),
    intent: labels.optional(),
    category: labels.optional(),
    signal: labels.optional(),
  })
  .refine(
    (c) => Object.values(c).some((v) => v !== undefined),
    "needs at least one of urgency, sentiment, tier, intent, category, signal",
  );

const rulesFile = z
  .strictObject({
    version: z.literal(1),
    departments: z.record(label, z.strictObject({ queue, escalation_queue: queue.optional() })),
    default_department: label,
    categories: z.record(label, label),
    intents: z.record(label, label).default({}),
    escalation: z.array(z.strictObject({ when: condition, reason: label })).default([]),
    tiers: z.record(label, z.strictObject({ priority_boost: points, queue: queue.optional() })).default({}),
    languages: z.strictObject({
      supported: z.array(language).min(1),
      queues: z.record(language, queue).default({}),
      other_queue: queue,
      review_unsupported: z.boolean(),
      // Unsupported languages that a served model classifies in, and the intent models that do.
      classified_in_language: z
        .strictObject({ languages: z.array(language).min(1), models: z.array(z.string().min(1)).min(1) })
        .optional(),
    }),
    review: z.strictObject({
      min_confidence: z.strictObject({ intent: probability, sentiment: probability, urgency: probability }),
      out_of_scope: z.boolean(),
      intents: z.array(label).default([]),
    }),
    priority: z.strictObject({
      base: points,
      urgency: z.strictObject({ low: points, medium: points, high: points, critical: points }),
      sentiment: z.strictObject({ negative: points, neutral: points, positive: points }),
      per_signal: points,
      escalation: points,
      unknown_urgency: z.enum(UrgencyLevelValues),
      unknown_sentiment: z.enum(SentimentValues),
    }),
    auto_reply: z
      .strictObject({
        enabled: z.boolean(),
        strategies: z.array(z.enum(AUTO_REPLY_STRATEGIES)).min(1).default(["template"]),
        intents: z.record(label, probability).default({}),
      })
      .default({ enabled: false, strategies: ["template"], intents: {} }),
  })
  .superRefine((file, ctx) => {
    const departments = new Set(Object.keys(file.departments));
    if (departments.size === 0)
      ctx.addIssue({ code: "custom", path: ["departments"], message: "declares no department" });
    const known = [...departments].join(", ");
    const department = (name: string, path: PropertyKey[]) => {
      if (!departments.has(name))
        ctx.addIssue({ code: "custom", path, message: `unknown department "${name}" (declared: ${known})` });
    };
    department(file.default_department, ["default_department"]);
    for (const [category, name] of Object.entries(file.categories)) department(name, ["categories", category]);
    for (const [intent, name] of Object.entries(file.intents)) department(name, ["intents", intent]);

    const tiers = new Set(Object.keys(file.tiers).map((t) => t.toLowerCase()));
    file.escalation.forEach((rule, i) =>
      rule.when.tier?.forEach((tier, j) => {
        if (!tiers.has(tier.toLowerCase()))
          ctx.addIssue({
            code: "custom",
            path: ["escalation", i, "when", "tier", j],
            message: `unknown tier "${tier}"`,
          });
      }),
    );

    // Case-insensitive matching makes `ACCOUNT` and `account` the same key: refuse the second.
    for (const section of ["categories", "intents", "tiers"] as const) {
      const seen = new Set<string>();
      for (const key of Object.keys(file[section])) {
        if (seen.has(key.toLowerCase())) {
          ctx.addIssue({
            code: "custom",
            path: [section, key],
            message: `"${key}" repeats another key of ${section} (names are case-insensitive)`,
          });
        }
        seen.add(key.toLowerCase());
      }
    }
  });

export type RulesFile = z.output<typeof rulesFile>;
export const RULES_FILE_SCHEMA = rulesFile;

export interface Department {
  readonly name: string;
  readonly queue: string;
  readonly escalationQueue: string | undefined;
}

export interface EscalationCondition {
  readonly urgency?: ReadonlySet<UrgencyLevel>;
  readonly sentiment?: ReadonlySet<Sentiment>;
  readonly tier?: ReadonlySet<string>;
  readonly intent?: ReadonlySet<string>;
  readonly category?: ReadonlySet<string>;
  readonly signal?: ReadonlySet<string>;
}

export interface EscalationRule {
  readonly when: EscalationCondition;
  readonly reason: string;
}

export interface RoutingRules {
  /** Short digest of the file's text, logged when rules are applied, to tell versions apart. */
  readonly digest: string;
  readonly departments: ReadonlyMap<string, Department>;
  readonly defaultDepartment: Department;
  /** Lower-case category → department. */
  readonly categories: ReadonlyMap<string, Department>;
  /** Lower-case intent → department; wins over the category's. */
  readonly intents: ReadonlyMap<string, Department>;
  readonly escalation: readonly EscalationRule[];
  /** Lower-case tier → boost and optional queue. */
  readonly tiers: ReadonlyMap<string, { readonly priorityBoost: number; readonly queue: string | undefined }>;
  readonly languages: {
    readonly supported: ReadonlySet<string>;
    readonly queues: ReadonlyMap<string, string>;
    readonly otherQueue: string;
    readonly reviewUnsupported: boolean;
    /**
     * Languages not flagged `unsupported_language` when the intent came from one of `models`
     * (InquiryClassified.model's name before `@`): a model read the inquiry in its language.
     */
    readonly classifiedInLanguage: { readonly languages: ReadonlySet<string>; readonly models: ReadonlySet<string> };
  };
  readonly review: {
    readonly minConfidence: { readonly intent: number; readonly sentiment: number; readonly urgency: number };
    readonly outOfScope: boolean;
    readonly intents: ReadonlySet<string>;
  };
  readonly priority: RulesFile["priority"];
  /** Which drafted replies to email inquiries are sent without an agent (the email connector reads this). */
  readonly autoReply: {
    readonly enabled: boolean;
    readonly strategies: ReadonlySet<string>;
    /** Lower-case intent → the least intent confidence at which its reply is sent. */
    readonly intents: ReadonlyMap<string, number>;
  };
}

const lowerSet = <T extends string>(values: readonly T[] | undefined): ReadonlySet<T> | undefined =>
  values && new Set(values.map((v) => v.toLowerCase() as T));

/** The validated file in the form the router reads: departments resolved, names lower-cased. */
export function compileRules(file: RulesFile, digest: string): RoutingRules {
  const departments = new Map(
    Object.entries(file.departments).map(([name, d]) => [
      name,
      { name, queue: d.queue, escalationQueue: d.escalation_queue },
    ]),
  );
  const resolve = (name: string): Department => {
    const department = departments.get(name);
    if (!department) throw new Error(`department "${name}" is not declared (the schema should have refused this file)`);
    return department;
  };
  const byLowerName = (mapping: Record<string, string>) =>
    new Map(Object.entries(mapping).map(([key, name]) => [key.toLowerCase(), resolve(name)]));
  return {
    digest,
    departments,
    defaultDepartment: resolve(file.default_department),
    categories: byLowerName(file.categories),
    intents: byLowerName(file.intents),
    escalation: file.escalation.map(({ when, reason }) => ({
      reason,
      when: {
        urgency: when.urgency && new Set(when.urgency),
        sentiment: when.sentiment && new Set(when.sentiment),
        tier: lowerSet(when.tier),
        intent: lowerSet(when.intent),
        category: lowerSet(when.category),
        signal: lowerSet(when.signal),
      },
    })),
    tiers: new Map(
      Object.entries(file.tiers).map(([tier, t]) => [
        tier.toLowerCase(),
        { priorityBoost: t.priority_boost, queue: t.queue },
      ]),
    ),
    languages: {
      supported: new Set(file.languages.supported),
      queues: new Map(Object.entries(file.languages.queues)),
      otherQueue: file.languages.other_queue,
      reviewUnsupported: file.languages.review_unsupported,
      classifiedInLanguage: {
        languages: new Set(file.languages.classified_in_language?.languages ?? []),
        models: new Set(file.languages.classified_in_language?.models ?? []),
      },
    },
    review: {
      minConfidence: file.review.min_confidence,
      outOfScope: file.review.out_of_scope,
      intents: lowerSet(file.review.intents) ?? new Set(),
    },
    priority: file.priority,
    autoReply: {
      enabled: file.auto_reply.enabled,
      strategies: new Set(file.auto_reply.strategies),
      intents: new Map(Object.entries(file.auto_reply.intents).map(([intent, confidence]) => [intent.toLowerCase(), confidence])),
    },
  };
}
