import type { Customer, Entity } from "../../schemas/types.generated.js";

/**
 * Explicit urgency signals. From the text: `outage`, `asap`, `deadline`, `legal` (a lawyer, a court,
 * a chargeback or bank dispute), `safety` (fire, injury, a hazard), `fraud` (money taken without
 * authorisation, an account taken over), `repeat_contact` (the customer says they wrote before),
 * `no_rush` (the customer says it can wait). From the context: `repeat_contact` (the same customer
 * writing again within the window) and `vip` (a premium or VIP customer).
 * The combination (./combination.ts) weighs each one; a signal is evidence, not a level.
 */
export const URGENCY_SIGNALS = [
  "outage",
  "asap",
  "deadline",
  "legal",
  "safety",
  "fraud",
  "repeat_contact",
  "no_rush",
  "vip",
] as const;
export type UrgencySignal = (typeof URGENCY_SIGNALS)[number];

// Phrases in the languages the ticket model covers (en, de, es, fr, pt). Written from the
// labelling rules and the languages, not from the realistic set's rows (which calibrates the weights).
const ASAP =
  /\b(asap|urgent(ly)?|immediately|right away|as soon as possible|emergency|dringend|sofort|umgehend|schnellstm[öo]glich|urgente|inmediatamente|lo antes posible|urgence|imm[ée]diatement|d[èe]s que possible|o mais r[áa]pido poss[íi]vel|imediatamente)\b/iu;
const OUTAGE =
  /\b(outage|(is|are|went|has been|have been|goes|keeps going) down|down since|not working|(doesn'?t|does not|won'?t|will not) (work|load|start|open)|stopped working|can(no|')?t (log ?in|sign ?in|access|connect)|unable to (log ?in|access|connect)|unavailable|crash(ed|es|ing)|offline|data (loss|breach)|security (incident|breach)|ausfall|funktioniert nicht|nicht erreichbar|ca[íi]da del servicio|no funciona|panne|ne fonctionne (plus|pas)|hors service|fora do ar|n[ãa]o funciona)\b/iu;
const DEADLINE_PHRASE =
  /\b(deadline|by (tomorrow|today|tonight|end of (the )?(day|week)|eod|monday|tuesday|wednesday|thursday|friday|saturday|sunday)|within \d+ (hours?|days?)|before (tomorrow|tonight|the weekend|monday|tuesday|wednesday|thursday|friday|saturday|sunday)|(today|tonight|tomorrow) (morning|afternoon|evening|at \d)|bis morgen|bis heute|frist|plazo|fecha l[íi]mite|para mañana|antes del? (lunes|martes|mi[ée]rcoles|jueves|viernes|s[áa]bado)|avant demain|date limite|d'ici demain|avant (lundi|mardi|mercredi|jeudi|vendredi|samedi)|prazo|até amanhã|at[ée] (segunda|ter[çc]a|quarta|quinta|sexta|s[áa]bado))\b/iu;
const LEGAL =
  /\b(lawyer|solicitor|attorney|legal action|court|sue|suing|small claims|trading standards|ombudsman|chargeback|dispute (the|this|it|with my bank)|(bank|card) dispute|consumer (protection|rights)|anwalt|rechtsanwalt|gericht|verbraucherzentrale|klage|abogad[oa]|demanda judicial|denuncia|tribunal|avocat|porter plainte|mise en demeure|advogad[oa]|processo judicial|procon)\b/iu;
const SAFETY =
  /\b(fire|caught fire|on fire|flames?|smoke|smoking|burn(ed|t|ing|s)?|sparks?|electric shock|injur(y|ed|ies)|hurt|cut (my|his|her|their)|shatter(ed|s)?|explod(ed|es)|hazard(ous)?|dangerous|unsafe|toxic|poison(ed|ing)?|choking|feuer|verletzt|gefährlich|rauch|fuego|incendio|humo|herid[oa]|peligros[oa]|feu|incendie|fum[ée]e|bless[ée]e?|dangereu(x|se)|fogo|inc[êe]ndio|fuma[çc]a|ferid[oa]|perigos[oa])\b/iu;
const FRAUD =
  /\b(unauthori[sz]ed|fraud(ulent)?|hacked|compromised|taken over|someone (else )?(logged|used|changed|ordered)|didn'?t (make|authori[sz]e|place)|charged (every|again and again|twice|three times|multiple times)|double charged|charged me twice|betrug|gehackt|nicht autorisiert|doppelt (abgebucht|belastet)|fraude|hackead[oa]|no autoriz|cobrad[oa] dos veces|pirat[ée]|non autoris|d[ée]bit[ée] deux fois|invadid[ao]|n[ãa]o autoriz|cobrad[oa] duas vezes)\b/iu;
const REPEAT_PHRASE =
  /\b((second|third|fourth|3rd|2nd) time|(already|have) (written|emailed|called|contacted|asked)|wrote (to you )?(last|yesterday|twice|again)|still (no|haven'?t|not) (answer|reply|response|heard)|no one (has )?(answered|replied|got back)|nobody (has )?(answered|replied|got back)|again and again|zum (zweiten|dritten) mal|schon (mehrmals|zweimal|wieder) geschrieben|noch keine antwort|(segunda|tercera) vez|ya (he|les) (escrito|llamado)|sin respuesta|(deuxi[èe]me|troisi[èe]me) fois|d[ée]j[àa] ([ée]crit|appel[ée])|toujours pas de r[ée]ponse|(segunda|terceira) vez|j[áa] (escrevi|liguei)|sem resposta)\b/iu;
const NO_RUSH =
  /\b(no rush|no hurry|not urgent|whenever (you can|convenient)|when you (get a chance|have time)|at your convenience|no pressure|kein(e)? eile|nicht dringend|sin prisa|no es urgente|rien d'urgent|pas (press[ée]|urgent)|sem pressa|n[ãa]o [ée] urgente)\b/iu;

/** A date the customer mentions counts as a deadline when it falls this soon after the inquiry arrived. */
const DEADLINE_HORIZON_MS = 3 * 24 * 60 * 60 * 1000;

/** Tiers whose customers are `vip` (a signal the combination weighs; route's tier rules boost priority on their own). */
const VIP_TIERS = new Set(["vip", "premium"]);

/** The text signals of an inquiry, in URGENCY_SIGNALS order; dates come from the entities `clean` extracted. */
export function textSignals(text: string, entities: readonly Entity[], receivedAt: number): UrgencySignal[] {
  const fired = new Set<UrgencySignal>();
  if (OUTAGE.test(text)) fired.add("outage");
  if (ASAP.test(text)) fired.add("asap");
  if (DEADLINE_PHRASE.test(text) || entities.some((e) => e.type === "date" && isSoon(e.value, receivedAt))) fired.add("deadline");
  if (LEGAL.test(text)) fired.add("legal");
  if (SAFETY.test(text)) fired.add("safety");
  if (FRAUD.test(text)) fired.add("fraud");
  if (REPEAT_PHRASE.test(text)) fired.add("repeat_contact");
  if (NO_RUSH.test(text)) fired.add("no_rush");
  return inOrder(fired);
}

/** The text signals plus the context's: repeat contact from the history, VIP from the customer's tier. */
export function allSignals(
  text: readonly UrgencySignal[],
  context: { readonly repeatContact: boolean; readonly customer: Customer },
): UrgencySignal[] {
  const fired = new Set(text);
  if (context.repeatContact) fired.add("repeat_contact");
  if (VIP_TIERS.has(context.customer.tier?.toLowerCase() ?? "")) fired.add("vip");
  return inOrder(fired);
}

function inOrder(fired: ReadonlySet<UrgencySignal>): UrgencySignal[] {
  return URGENCY_SIGNALS.filter((s) => fired.has(s));
}

function isSoon(isoDate: string, receivedAt: number): boolean {
  const at = Date.parse(isoDate);
  return Number.isFinite(at) && at >= receivedAt - 24 * 60 * 60 * 1000 && at - receivedAt <= DEADLINE_HORIZON_MS;
}
