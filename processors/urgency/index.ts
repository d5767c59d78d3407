import type { InquiryCleaned, InquiryUrgency } from "../../schemas/types.generated.js";
import { errorMessage } from "../../streams/errors.js";
import type { ProcessorDeclaration } from "../../streams/topology.js";
import { modelInput } from "../feedback.js";
import { servedFeedback } from "../served-feedback.js";
import { outputOf, reading } from "../../streams/ports.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../../streams/processor.js";
import { decideUrgency, loadCombination } from "./combination.js";
import { createContactHistory } from "./repeat-contact.js";
import { allSignals, textSignals } from "./signals.js";

/**
 * Urgency of each cleaned inquiry: the production `urgency` model's distribution and the explicit
 * signals (./signals.ts: text and context) through the fitted combination (./combination.ts).
 * This processor runs beside classify and sentiment, so its level leaves intent and sentiment out;
 * route, which joins all three, combines again with them and routes on that level. The record
 * carries the model's distribution, the signals and the drivers; the feedback record keeps the
 * model's own prediction (and a shadow version's, with the same signals, in a record of its own).
 */
export async function urgency(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
): Promise<ProcessorImplementation> {
  const urgencyOut = outputOf(deps.topology, declaration, "inquiries.urgency");
  const feedbackOut = outputOf(deps.topology, declaration, "predictions.feedback");
  const { config, log } = deps;
  const model = await deps.resources.productionModel("urgency");
  const combination = loadCombination();
  // Redis fails fast while away: the repeat-contact signal is then skipped, not the inquiry.
  const history = createContactHistory(await deps.resources.redis(), config.repeatContactWindowMs);

  const repeatContact = async (inquiry: InquiryCleaned): Promise<boolean> => {
    try {
      return await history.isRepeatContact(inquiry.envelope.customer, inquiry.inquiry_id, inquiry.envelope.received_at);
    } catch (error) {
      log.warn(
        { inquiryId: inquiry.inquiry_id, error: errorMessage(error) },
        "repeat-contact signal skipped: contact history unavailable",
      );
      return false;
    }
  };

  return {
    process: reading(deps.topology, declaration, "inquiries.cleaned", async ({ value: inquiry }) => {
      const input = modelInput(inquiry);
      const answer = await model.predict(input);
      const { prediction } = answer.production;
      const signals = allSignals(textSignals(input, inquiry.entities, inquiry.envelope.received_at), {
        repeatContact: await repeatContact(inquiry),
        customer: inquiry.envelope.customer,
      });
      const distribution = prediction.ranked.map(({ label, score }) => ({ label, probability: score }));
      const decision = decideUrgency({ model: distribution, signals }, combination);
      const scored: InquiryUrgency = {
        inquiry_id: inquiry.inquiry_id,
        level: decision.level,
        score: decision.confidence,
        signals,
        model: prediction.model,
        probabilities: distribution,
        drivers: decision.drivers,
        scored_at: Date.now(),
      };
      const signalValues = Object.fromEntries(signals.map((s) => [`signal_${s}`, 1]));
      return [
        urgencyOut(scored),
        ...servedFeedback(inquiry, "urgency", answer, input, signalValues).map((record) => feedbackOut(record)),
      ];
    }),
  };
}
