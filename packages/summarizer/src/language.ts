// A small stop-word language guesser (enough to answer in the conversation's
// language and to drop function words when scoring sentences), plus the
// per-language cues for action items.

export interface LanguageProfile {
  code: string;
  stopwords: ReadonlySet<string>;
  /** Sentence cues of an expected action (lower case, matched on word boundaries). */
  actionCues: RegExp;
  /** The speaker commits themselves ("I'll …"). */
  selfCues: RegExp;
  /** Addressed to someone else ("can you …"). */
  requestCues: RegExp;
  /** A short reply accepting a request ("sure", "on it"). */
  acceptCues: RegExp;
  /** Words that make a sentence matter more (decisions, deadlines, problems). */
  importantCues: RegExp;
}

const words = (s: string) => new Set(s.split(/\s+/).filter(Boolean));
// `\b` is ASCII-only in JavaScript ("décidé" has no boundary after its é), so
// word edges are Unicode letter/digit lookarounds.
const EDGE_BEFORE = String.raw`(?<![\p{L}\p{N}'])`;
const EDGE_AFTER = String.raw`(?![\p{L}\p{N}])`;
const cue = (alternatives: string) => new RegExp(`${EDGE_BEFORE}(?:${alternatives})${EDGE_AFTER}`, 'u');
const start = (alternatives: string) => new RegExp(`^(?:${alternatives})${EDGE_AFTER}`, 'u');

export const LANGUAGES: LanguageProfile[] = [
  {
    code: 'en',
    stopwords: words(
      `a about above after again all also am an and any are as at be because been before being below between both but by can could did do does doing done down during each few for from further had has have having he her here hers him his how i if in into is it its itself just let me more most my no nor not now of off ok okay on once only or other our ours out over own same she should so some such than that the their them then there these they this those through to too under until up very was we were what when where which while who whom why will with would you your yours yes yeah hi hey thanks thank already still really got get lol ok okay`,
    ),
    actionCues: cue(String.raw`can you|could you|would you|will you|please|i'll|i will|i'm going to|let me|i can take|need to|needs to|have to|has to|must|should|todo|to-do|action item|deadline|by (monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight|eod|end of (the )?(day|week)|next week)`),
    selfCues: cue(String.raw`i'll|i will|i'm going to|i am going to|let me|i can take|i'll take|i can do|i'll handle|i'll do`),
    requestCues: cue(String.raw`can you|could you|would you|will you|please`),
    acceptCues: start(String.raw`ok|okay|sure|yes|yep|will do|on it|done|got it|no problem|fine|i'll do it|i will`),
    importantCues: cue(String.raw`decided|decision|agreed|agree|important|urgent|asap|deadline|problem|issue|blocker|blocked|risk|cancel|cancelled|postponed|moved|final|approved|confirmed`),
  },
  {
    code: 'fr',
    stopwords: words(
      `a à au aux avec ce ces c'est dans de des du elle en et eux il ils je j'ai la le les leur lui ma mais me même mes moi mon ne nos notre nous on ou où par pas pour qu que qui sa se ses son sur ta te tes toi ton tu un une vos votre vous y est sont été être ai as avons avez ont fait faire plus très bien oui non merci salut bonjour ça cela`,
    ),
    actionCues: cue(String.raw`peux-tu|pouvez-vous|tu peux|vous pouvez|pourrais-tu|s'il te plaît|s'il vous plaît|stp|svp|je vais|je m'en occupe|je m'occupe|il faut|faut|doit|doivent|devons|devez|avant (lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|demain|ce soir)`),
    selfCues: cue(String.raw`je vais|je m'en occupe|je m'occupe|je peux le faire|je le fais|je prends`),
    requestCues: cue(String.raw`peux-tu|pouvez-vous|tu peux|vous pouvez|pourrais-tu|s'il te plaît|s'il vous plaît|stp|svp`),
    acceptCues: start(String.raw`ok|d'accord|oui|ça marche|entendu|c'est noté|je m'en occupe|pas de souci|volontiers`),
    importantCues: cue(String.raw`décidé|décision|d'accord|important|urgent|problème|annulé|reporté|validé|confirmé|échéance`),
  },
  {
    code: 'de',
    stopwords: words(
      `aber alle als also am an auch auf aus bei bin bis bist da das dass dem den der des die dir du ein eine einem einen einer es für hab habe haben hat ich ihr im in ist ja kann mit mich mir nach nicht noch nur oder sich sie sind so um und uns von vor war wir wird zu zum zur danke hallo`,
    ),
    actionCues: cue(String.raw`kannst du|könntest du|können sie|bitte|ich werde|ich mache|ich kümmere mich|muss|müssen|sollte|sollten|bis (montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|morgen|heute abend)`),
    selfCues: cue(String.raw`ich werde|ich mache|ich kümmere mich|ich übernehme`),
    requestCues: cue(String.raw`kannst du|könntest du|können sie|bitte`),
    acceptCues: start(String.raw`ok|okay|ja|klar|mache ich|erledigt|gerne|alles klar`),
    importantCues: cue(String.raw`entschieden|entscheidung|wichtig|dringend|problem|abgesagt|verschoben|bestätigt|frist`),
  },
  {
    code: 'es',
    stopwords: words(
      `a al algo como con de del el ella ellos en es esta este esto está están ha hay la las le lo los me mi mis muy más no nos o para pero por que qué se si sí su sus te tu un una uno y ya yo gracias hola`,
    ),
    actionCues: cue(String.raw`puedes|podrías|puede usted|por favor|voy a|me encargo|yo me encargo|hay que|tiene que|tienes que|tenemos que|debe|debemos|antes del? (lunes|martes|miércoles|jueves|viernes|sábado|domingo|mañana)`),
    selfCues: cue(String.raw`voy a|me encargo|yo me encargo|lo hago`),
    requestCues: cue(String.raw`puedes|podrías|puede usted|por favor`),
    acceptCues: start(String.raw`ok|vale|sí|claro|de acuerdo|hecho|perfecto`),
    importantCues: cue(String.raw`decidido|decisión|acordado|importante|urgente|problema|cancelado|aplazado|confirmado|plazo`),
  },
];

const FALLBACK: LanguageProfile = { ...LANGUAGES[0]!, code: 'und' };

/** Guesses the language from stop-word hits; 'und' (with English cues) when nothing stands out. */
export function detectLanguage(text: string): LanguageProfile {
  const tokens = tokenize(text);
  if (tokens.length === 0) return FALLBACK;
  let best: LanguageProfile = FALLBACK;
  let bestHits = 0;
  for (const lang of LANGUAGES) {
    let hits = 0;
    for (const t of tokens) if (lang.stopwords.has(t)) hits++;
    if (hits > bestHits) {
      best = lang;
      bestHits = hits;
    }
  }
  return bestHits >= Math.max(2, tokens.length * 0.05) ? best : FALLBACK;
}

/** Lower-case word tokens (letters, digits, inner apostrophes and hyphens), Unicode-aware. */
export function tokenize(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu) ?? []).map((t) => t.replace(/’/g, "'"));
}
