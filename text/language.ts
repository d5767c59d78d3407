/**
 * Language identification with eld (n-gram based, 60 languages, ISO 639-1 codes). Short or
 * ambiguous text gets `und` rather than a guess, with the low confidence that says why.
 */

/** Languages the models are trained on (en/de/es/fr/pt tickets, English Bitext); others go to a language queue. */
export const SUPPORTED_LANGUAGES = ["en", "de", "es", "fr", "pt"] as const;
export type SupportedLanguage = (typeof SUPPORTED_LANGUAGES)[number];

/** ISO 639-2's code for "undetermined": too little or too ambiguous text to tell. */
export const UNDETERMINED_LANGUAGE = "und";

export function isSupportedLanguage(language: string): language is SupportedLanguage {
  return (SUPPORTED_LANGUAGES as readonly string[]).includes(language);
}

export interface DetectedLanguage {
  /** ISO 639-1 code, or `und`. */
  readonly language: string;
  /** 0..1: how far the best language leads the runner-up. */
  readonly confidence: number;
}

export interface LanguageDetector {
  detect(text: string): DetectedLanguage;
}

/**
 * eld scores each language 0..1; on the project's multilingual tickets the correct language leads
 * the runner-up by at least 0.07 in 99% of texts and by 0.17 typically. A lead of 0.15 counts as
 * certain; below MIN_CONFIDENCE (a lead under 0.045) the text is undetermined.
 */
const CERTAIN_LEAD = 0.15;
const MIN_CONFIDENCE = 0.3;

/**
 * eld stops after about 350 bytes anyway, and its cost grows with what it scans; on the project's
 * tickets, 200 characters agree with the whole text as often as 600 do.
 */
const DETECTION_CHARS = 300;
/** Placeholders ("[EMAIL]", "{{Order Number}}") and URLs say nothing about the writer's language. */
const NOT_LANGUAGE = /\[[A-Z_]+\]|\{\{[^}]*\}\}|https?:\/\/\S+/g;

let loading: Promise<LanguageDetector> | undefined;

/**
 * The detector, built once per process. Its n-gram database (the "small" one: 0.9 s to load,
 * about 150 MB; "large" takes 3.5 s and 390 MB for no gain on support text) loads on first use,
 * so processes that only import this module for SUPPORTED_LANGUAGES never pay for it.
 */
export function loadLanguageDetector(): Promise<LanguageDetector> {
  loading ??= import("eld/small").then(({ eld }) => {
    const instance = eld.newInstance();
    // Drops numbers, codes, emails and URLs before scoring.
    instance.enableTextCleanup(true);
    return { detect: (text) => detectWith(instance, text) };
  });
  return loading;
}

function detectWith(instance: { detect: (text: string) => EldResult }, text: string): DetectedLanguage {
  const result = instance.detect(text.slice(0, DETECTION_CHARS).replace(NOT_LANGUAGE, " "));
  const [best = 0, runnerUp = 0] = Object.values(result.getScores()).sort((a, b) => b - a);
  const confidence = Math.min(1, (best - runnerUp) / CERTAIN_LEAD);
  // eld calls a result unreliable when the text has too few n-grams or an unusually low score.
  if (result.language === "" || !result.isReliable() || confidence < MIN_CONFIDENCE) {
    return { language: UNDETERMINED_LANGUAGE, confidence: round(Math.min(confidence, MIN_CONFIDENCE)) };
  }
  return { language: result.language, confidence: round(confidence) };
}

interface EldResult {
  readonly language: string;
  getScores(): Record<string, number>;
  isReliable(): boolean;
}

const round = (value: number): number => Math.round(value * 1000) / 1000;
