import type { InquiryCleaned, InquiryUrgency } from "../../schemas/types.generated.js";
import { errorMessage } from "../../streams/errors.js";
import type { ProcessorDeclaration } from "../../streams/topology.js";
import { modelInput } from "../feedback.js";
import { servedFeedback } from "../served-feedback.js";
import { outputOf, reading } from "../../streams/ports.js";
import type { ProcessorDependencies, ProcessorImplementation } from "../../streams/processor.js";
import { combineUrgency } from "./level.js";
import { createContactHistory } from "./repeat-contact.js";
import { textSignals, type UrgencySignal } from "./signals.js";

/**
 * Urgency of each cleaned inquiry: the production `urgency` model's level, raised by explicit
 * signals (outage, ASAP, a near deadline, the same customer writing again within the window).
 * The record says which signals fired; the feedback record keeps the model's own prediction (and a
 * shadow version's, with the same signals, in a record of its own).
 */
export async function urgency(
  declaration: ProcessorDeclaration,
  deps: ProcessorDependencies,
): Promise<ProcessorImplementation> {
  const urgencyOut = outputOf(deps.topology, declaration, "inquiries.urgency");
  const feedbackOut = outputOf(deps.topology, declaration, "predictions.feedback");
  const { config, log } = deps;
  const model = await deps.resources.productionModel("urgency");
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
      const signals: UrgencySignal[] = textSignals(input, inquiry.entities, inquiry.envelope.received_at);
      if (await repeatContact(inquiry)) signals.push("repeat_contact");
      const scored: InquiryUrgency = {
        inquiry_id: inquiry.inquiry_id,
        level: combineUrgency(prediction.label, signals),
        score: prediction.confidence,
        signals,
        model: prediction.model,
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
