import { beforeAll, describe, expect, it } from "vitest";
import {
  SUPPORTED_LANGUAGES,
  UNDETERMINED_LANGUAGE,
  isSupportedLanguage,
  loadLanguageDetector,
  type LanguageDetector,
} from "../../text/language.js";

describe("language detection", () => {
  let detector: LanguageDetector;
  beforeAll(async () => {
    detector = await loadLanguageDetector();
  });

  it("identifies the supported languages with confidence", () => {
    const samples: Record<string, string> = {
      en: "My order has not arrived yet and the tracking page has not changed since Monday.",
      de: "Meine Bestellung ist noch nicht angekommen und die Sendungsverfolgung zeigt nichts Neues.",
      fr: "Ma commande n'est toujours pas arrivée et le suivi n'a pas bougé depuis lundi.",
      es: "Mi pedido todavía no ha llegado y el seguimiento no ha cambiado desde el lunes.",
      pt: "A minha encomenda ainda não chegou e o rastreamento não muda desde segunda-feira.",
    };
    for (const [language, text] of Object.entries(samples)) {
      const detected = detector.detect(text);
      expect(detected.language, text).toBe(language);
      expect(detected.confidence, text).toBeGreaterThanOrEqual(0.5);
    }
  });

  it("identifies languages the models do not support, for the language queue", () => {
    const detected = detector.detect(
      "Il mio ordine non è ancora arrivato e il tracciamento non si aggiorna da lunedì.",
    );
    expect(detected.language).toBe("it");
    expect(isSupportedLanguage(detected.language)).toBe(false);
    expect(detector.detect("Mijn bestelling is nog steeds niet aangekomen, kunt u mij helpen?").language).toBe("nl");
  });

  it("says 'und' with low confidence for text too short or ambiguous to tell", () => {
    for (const text of ["ok", "merci", "thx!!", "", "12345 678", "[EMAIL] [PHONE]", "{{Order Number}}"]) {
      const detected = detector.detect(text);
      expect(detected.language, text).toBe(UNDETERMINED_LANGUAGE);
      expect(detected.confidence, text).toBeLessThanOrEqual(0.3);
    }
  });

  it("is not swayed by placeholders, numbers and links in short text", () => {
    const detected = detector.detect(
      "Bitte rufen Sie mich an unter [PHONE], es geht um Bestellung 4711 https://shop.example/orders/4711",
    );
    expect(detected.language).toBe("de");
  });

  it("exposes the supported languages", () => {
    expect([...SUPPORTED_LANGUAGES].sort()).toEqual(["de", "en", "es", "fr", "pt"]);
    expect(isSupportedLanguage("de")).toBe(true);
    expect(isSupportedLanguage(UNDETERMINED_LANGUAGE)).toBe(false);
  });

  it("loads the detector once per process", async () => {
    expect(await loadLanguageDetector()).toBe(detector);
  });
});
