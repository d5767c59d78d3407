import { describe, expect, it } from "vitest";
import { combineUrgency } from "../../processors/urgency/level.js";
import { textSignals } from "../../processors/urgency/signals.js";

const received = Date.parse("2026-11-20T09:00:00Z");

describe("urgency signals", () => {
  it.each([
    ["Our checkout page is down since this morning, customers cannot pay", ["outage"]],
    ["Ich kann mich nicht anmelden, das Portal funktioniert nicht. Bitte dringend helfen!", ["outage", "asap"]],
    ["Please send the invoice by Friday, it is for our year-end deadline", ["deadline"]],
    ["Necesito el reembolso lo antes posible", ["asap"]],
    ["La plateforme est hors service depuis hier", ["outage"]],
    ["I would like to know your opening hours", []],
    ["We turned down the offer and want a down payment refund", []],
  ])("%s", (text, expected) => {
    expect(textSignals(text, [], received)).toEqual(expected);
  });

  it("a date entity within three days is a deadline; a date months away is not", () => {
    expect(textSignals("Delivery needed on that date", [{ type: "date", value: "2026-11-22" }], received)).toEqual(["deadline"]);
    expect(textSignals("Delivery needed on that date", [{ type: "date", value: "2027-03-01" }], received)).toEqual([]);
    expect(textSignals("Delivery needed on that date", [{ type: "date", value: "not a date" }], received)).toEqual([]);
  });
});

describe("urgency level", () => {
  it("keeps the model's level without signals", () => {
    expect(combineUrgency("low", [])).toBe("low");
    expect(combineUrgency("high", [])).toBe("high");
  });
  it("raises one step per signal, up to critical", () => {
    expect(combineUrgency("low", ["asap"])).toBe("medium");
    expect(combineUrgency("medium", ["asap", "deadline"])).toBe("critical");
    expect(combineUrgency("high", ["asap", "deadline", "repeat_contact"])).toBe("critical");
  });
  it("an outage is at least high, and critical with any other signal", () => {
    expect(combineUrgency("low", ["outage"])).toBe("high");
    expect(combineUrgency("low", ["outage", "asap"])).toBe("critical");
  });
  it("refuses a label that is not an urgency level", () => {
    expect(() => combineUrgency("urgent-ish", [])).toThrow(/not one of low, medium, high, critical/);
  });
});
