import { describe, expect, it } from "vitest";
import { checkToxicity, deobfuscated, type ToxicityModel } from "../../processors/respond/toxicity.js";

/** The guardrail around the model (the model itself: test/integration/toxicity-model.test.ts). */

/** Scores 0.8 for a text holding "idiot" or "shit", else 0.1; records what it was asked. */
function standIn(): ToxicityModel & { readonly asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    score: async (texts) => {
      asked.push(...texts);
      return texts.map((text) => ({
        score: /idiot|shit/i.test(text) ? 0.8 : 0.1,
        threshold: 0.5,
        model: "toxicity@v1",
      }));
    },
  };
}

describe("the toxicity guardrail", () => {
  it("holds back a reply at or above the model's threshold, saying the score, the threshold and the model", async () => {
    expect(await checkToxicity("You are an idiot.", standIn())).toEqual({
      score: 0.8,
      threshold: 0.5,
      model: "toxicity@v1",
      held: true,
      reason: "toxicity 0.800 >= threshold 0.500 (toxicity@v1)",
    });
  });

  it("passes a polite reply, scoring it once when nothing is disguised", async () => {
    const model = standIn();
    const finding = await checkToxicity("Your order 48213 ships on Monday, for 49.95 EUR!", model);
    expect(finding).toMatchObject({ held: false, reason: "toxicity 0.100 < threshold 0.500 (toxicity@v1)" });
    expect(model.asked).toEqual(["Your order 48213 ships on Monday, for 49.95 EUR!"]);
  });

  it("scores disguised words as written and undone, and keeps the higher score", async () => {
    const model = standIn();
    expect((await checkToxicity("You are an 1d10t, this is sh!t.", model)).held).toBe(true);
    expect(model.asked).toEqual(["You are an 1d10t, this is sh!t.", "You are an idiot, this is shit."]);
  });

  it("undoes substitutions only inside words: numbers, prices and a closing ! stay", () => {
    expect(deobfuscated("Y0u @re a l0$er!")).toBe("You are a loser!");
    expect(deobfuscated("Order 48213 costs 15.40 EUR, thanks!")).toBe("Order 48213 costs 15.40 EUR, thanks!");
    expect(deobfuscated("ｆｕｌｌ width")).toBe("full width");
  });
});
