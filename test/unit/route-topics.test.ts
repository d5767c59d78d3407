import { describe, expect, it } from "vitest";
import { routeTopicsOf } from "../../processors/route/index.js";
import { TRIAGE, findProcessor } from "../../streams/topology.js";

describe("route's topics from its declaration", () => {
  const { processor } = findProcessor("route");

  it("finds every part and the routed output in the triage topology", () => {
    expect(routeTopicsOf(processor, TRIAGE)).toEqual({
      parts: {
        cleaned: "inquiries.cleaned",
        classified: "inquiries.classified",
        sentiment: "inquiries.sentiment",
        urgency: "inquiries.urgency",
        timeout: "route.timeouts",
      },
      routed: "inquiries.routed",
    });
  });

  it("refuses a declaration without a part, with a part twice, or with a foreign input or output", () => {
    const without = { ...processor, inputs: processor.inputs.filter((t) => t !== "route.timeouts") };
    expect(() => routeTopicsOf(without, TRIAGE)).toThrow(/no input carries the timeout part/);
    expect(() => routeTopicsOf({ ...processor, inputs: [...processor.inputs, "inquiries.cleaned"] }, TRIAGE)).toThrow(
      /both carry the cleaned part/,
    );
    expect(() => routeTopicsOf({ ...processor, inputs: [...processor.inputs, "inquiries.received"] }, TRIAGE)).toThrow(
      /inquiries\.received .* is not a part route can join/,
    );
    expect(() => routeTopicsOf({ ...processor, outputs: ["inquiries.responses"] }, TRIAGE)).toThrow(
      /exactly one output, of inquiries\.routed records/,
    );
  });
});
