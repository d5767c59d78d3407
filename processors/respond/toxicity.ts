import type { ServedModel } from "../../models/served.js";
import type { Answer } from "../../models/slot.js";

/**
 * The reply guardrail's toxicity classifier: registry model `toxicity` (training/toxicity.py,
 * alt-profanity-check's calibrated linear SVMs converted to ONNX), served and hot-swapped like
 * every other model. Its manifest's operating point is the threshold on P(offensive), chosen on
 * held-out validation replies; the model is English only (trained on English data), so a reply
 * in another language is only caught by English profanity in it.
 */

export const TOXICITY_MODEL = "toxicity";
export const OFFENSIVE_LABEL = "offensive";

/** P(offensive) of one text, from the version that scored it, with that version's threshold. */
export interface ToxicityScore {
  readonly score: number;
  readonly threshold: number;
  /** "<name>@<version>". */
  readonly model: string;
}

export interface ToxicityModel {
  /** Scores in the order of `texts`. */
  score(texts: readonly string[]): Promise<ToxicityScore[]>;
}

export interface ToxicityFinding extends ToxicityScore {
  /** score >= threshold: the reply must not be sent. */
  readonly held: boolean;
  /** What a log line or a hand-off says, e.g. "toxicity 0.97 >= threshold 0.37 (toxicity@…)". */
  readonly reason: string;
}

/**
 * Character substitutions that hide a word from a bag-of-words model ("1d10t", "sh1t"): the
 * reply is scored as written and with these undone, and the higher score counts.
 */
const SUBSTITUTIONS: Readonly<Record<string, string>> = {
  "0": "o",
  "1": "i",
  "3": "e",
  "4": "a",
  "5": "s",
  "7": "t",
  "@": "a",
  $: "s",
  "!": "i",
};
const WORDISH = /[\p{L}\p{N}@$!]+/gu;

/**
 * The text with substitutions undone inside tokens that hold a letter ("y0u", "a$$hole"); numbers,
 * prices and a token's closing "!" stay as they are.
 */
export function deobfuscated(text: string): string {
  return text.normalize("NFKC").replace(WORDISH, (token) => {
    if (!/\p{L}/u.test(token)) return token;
    const closing = /!+$/.exec(token)?.[0] ?? "";
    const body = token.slice(0, token.length - closing.length);
    return body.replace(/[013457@$!]/g, (c) => SUBSTITUTIONS[c] ?? c) + closing;
  });
}

/** Is this reply (or an LLM's draft) fit to send? The score, threshold and model@version say why. */
export async function checkToxicity(reply: string, model: ToxicityModel): Promise<ToxicityFinding> {
  const plain = reply.normalize("NFKC");
  const variant = deobfuscated(plain);
  const scores = await model.score(variant === plain ? [plain] : [plain, variant]);
  const worst = scores.reduce((a, b) => (b.score > a.score ? b : a));
  const held = worst.score >= worst.threshold;
  return {
    ...worst,
    held,
    reason: `toxicity ${worst.score.toFixed(3)} ${held ? ">=" : "<"} threshold ${worst.threshold.toFixed(3)} (${worst.model})`,
  };
}

/** The version's threshold; a version without one (or without the label) is not a toxicity model. */
export function toxicityThreshold(version: Answer["version"]): number {
  const threshold = version.manifest.operating_point?.threshold;
  if (threshold === undefined || !version.manifest.labels.includes(OFFENSIVE_LABEL)) {
    throw new Error(
      `${version.name}@${version.version} is not a toxicity classifier: it needs the label ${OFFENSIVE_LABEL} and an operating point (its threshold)`,
    );
  }
  return threshold;
}

function scoreOf(answer: Answer): ToxicityScore {
  const score = answer.prediction.ranked.find((entry) => entry.label === OFFENSIVE_LABEL)?.score;
  if (score === undefined) throw new Error(`${answer.prediction.model} gave no ${OFFENSIVE_LABEL} probability`);
  return { score, threshold: toxicityThreshold(answer.version), model: answer.prediction.model };
}

/** The registry's production toxicity model (whatever version it serves at the time of the call). */
export function servedToxicity(served: Pick<ServedModel, "slot">): ToxicityModel {
  return {
    async score(texts) {
      return (await served.slot.answer(texts)).map(scoreOf);
    },
  };
}

/** A loaded version as a ToxicityModel (eval and tests: one fixed version). */
export function versionToxicity(version: Answer["version"]): ToxicityModel {
  const threshold = toxicityThreshold(version);
  return {
    async score(texts) {
      return (await version.predict(texts)).map((prediction) => {
        const score = prediction.ranked.find((entry) => entry.label === OFFENSIVE_LABEL)!.score;
        return { score, threshold, model: prediction.model };
      });
    },
  };
}
