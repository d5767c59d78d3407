import type { Entity } from "../../schemas/types.generated.js";

/** Explicit urgency signals found in the text; `repeat_contact` comes from the customer's history. */
export type UrgencySignal = "outage" | "asap" | "deadline" | "repeat_contact";

// Phrases in the languages the ticket model covers (en, de, es, fr, pt).
const ASAP =
  /\b(asap|urgent(ly)?|immediately|right away|as soon as possible|emergency|dringend|sofort|umgehend|schnellstm[öo]glich|urgente|inmediatamente|lo antes posible|urgence|imm[ée]diatement|d[èe]s que possible|o mais r[áa]pido poss[íi]vel|imediatamente)\b/iu;
const OUTAGE =
  /\b(outage|(is|are|went|has been|have been|goes|keeps going) down|down since|not working|(doesn'?t|does not|won'?t|will not) (work|load|start|open)|stopped working|can(no|')?t (log ?in|sign ?in|access|connect)|unable to (log ?in|access|connect)|unavailable|crash(ed|es|ing)|offline|data (loss|breach)|security (incident|breach)|ausfall|funktioniert nicht|nicht erreichbar|ca[íi]da del servicio|no funciona|panne|ne fonctionne (plus|pas)|hors service|fora do ar|n[ãa]o funciona)\b/iu;
const DEADLINE_PHRASE =
  /\b(deadline|by (tomorrow|today|tonight|end of (the )?(day|week)|eod|monday|tuesday|wednesday|thursday|friday)|within \d+ (hours?|days?)|before (tomorrow|the weekend|monday|tuesday|wednesday|thursday|friday)|bis morgen|bis heute|frist|plazo|fecha l[íi]mite|para mañana|avant demain|date limite|d'ici demain|prazo|até amanhã)\b/iu;

/** A date the customer mentions counts as a deadline when it falls this soon after the inquiry arrived. */
const DEADLINE_HORIZON_MS = 3 * 24 * 60 * 60 * 1000;

/** The text signals of an inquiry, in a fixed order; dates come from the entities `clean` extracted. */
export function textSignals(text: string, entities: readonly Entity[], receivedAt: number): UrgencySignal[] {
  const signals: UrgencySignal[] = [];
  if (OUTAGE.test(text)) signals.push("outage");
  if (ASAP.test(text)) signals.push("asap");
  if (DEADLINE_PHRASE.test(text) || entities.some((e) => e.type === "date" && isSoon(e.value, receivedAt))) signals.push("deadline");
  return signals;
}

function isSoon(isoDate: string, receivedAt: number): boolean {
  const at = Date.parse(isoDate);
  return Number.isFinite(at) && at >= receivedAt - 24 * 60 * 60 * 1000 && at - receivedAt <= DEADLINE_HORIZON_MS;
}
