// The built-in summariser: no network, no model. It picks sentences out of the
// conversation (it never writes new ones), in the conversation's language:
//   - topic: the chat title (if any) and the conversation's top keywords;
//   - key points: the highest-scoring sentences, in conversation order, with
//     their speaker. A sentence scores by the frequency of its content words
//     across the chat (a TF variant: what many messages talk about matters),
//     normalised by length, plus cues of decisions, deadlines, problems,
//     numbers and dates, and open questions; near-duplicates are dropped;
//   - actions: sentences with request or commitment cues, with an owner: the
//     speaker for "I'll …", the person addressed ("Bob, can you …", "@bob"),
//     or whoever accepted the request in the next messages ("sure, on it").
import { detectLanguage, tokenize, type LanguageProfile } from './language.js';
import type { ActionItem, Summarizer, SummarizerInput, Summary } from './summarizer.js';

export interface ExtractiveOptions {
  maxKeyPoints?: number;
  maxActions?: number;
  /** Longest sentence kept verbatim; longer ones are cut at a word boundary. */
  maxSentenceChars?: number;
}

interface Sentence {
  index: number;
  messageIndex: number;
  speaker: string;
  text: string;
  lower: string;
  tokens: string[];
  content: string[];
}

const clip = (s: string, max: number) => {
  if (s.length <= max) return s;
  const cut = s.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).trimEnd()}…`;
};

/** Splits a message into sentences at . ! ? … (and line breaks), keeping the punctuation. */
export function splitSentences(text: string): string[] {
  return text
    .split(/\n+/)
    .flatMap((line) => line.split(/(?<=[.!?…。！？])\s+(?=[\p{Lu}\p{N}"'¿¡@(])/u))
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter((s) => s.length > 0);
}

function jaccard(a: string[], b: string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  const sa = new Set(a);
  const sb = new Set(b);
  let inter = 0;
  for (const t of sa) if (sb.has(t)) inter++;
  return inter / (sa.size + sb.size - inter);
}

export class ExtractiveSummarizer implements Summarizer {
  readonly method = 'extractive' as const;
  private readonly maxKeyPoints: number;
  private readonly maxActions: number;
  private readonly maxChars: number;

  constructor(opts: ExtractiveOptions = {}) {
    this.maxKeyPoints = opts.maxKeyPoints ?? 5;
    this.maxActions = opts.maxActions ?? 8;
    this.maxChars = opts.maxSentenceChars ?? 280;
  }

  async summarize(transcript: SummarizerInput): Promise<Summary> {
    return this.summarizeSync(transcript);
  }

  summarizeSync(transcript: SummarizerInput): Summary {
    const lang = detectLanguage(transcript.messages.map((m) => m.text).join(' '));
    const speakers = [...new Set(transcript.messages.map((m) => m.sender))];
    const sentences: Sentence[] = [];
    transcript.messages.forEach((m, messageIndex) => {
      // Chat messages are short: a whole message is one unit (its sentences
      // lean on each other: "One problem: … It is a blocker."); only long
      // messages are split into sentences. Actions are always single sentences.
      const whole = m.text.replace(/\s+/g, ' ').trim();
      const units = whole.length <= this.maxChars ? [whole] : splitSentences(m.text);
      for (const text of units) {
        if (!text) continue;
        const lower = text.toLowerCase().replace(/’/g, "'");
        const tokens = tokenize(text);
        const content = tokens.filter((t) => !lang.stopwords.has(t) && t.length > 2 && !/^\d+$/.test(t));
        sentences.push({ index: sentences.length, messageIndex, speaker: m.sender, text, lower, tokens, content });
      }
    });

    // Content-word frequencies, counted once per message; speaker names are
    // not topics.
    const names = new Set(speakers.flatMap((s) => tokenize(s)));
    const freq = new Map<string, number>();
    transcript.messages.forEach((_m, i) => {
      const seen = new Set(sentences.filter((s) => s.messageIndex === i).flatMap((s) => s.content));
      for (const t of seen) if (!names.has(t)) freq.set(t, (freq.get(t) ?? 0) + 1);
    });
    const maxFreq = Math.max(1, ...freq.values());

    // Actions are single sentences; a unit holding one is not repeated as a key point.
    const actions = this.actions(this.sentencesOf(transcript, lang), transcript, speakers, lang);
    const scored = sentences
      .filter((s) => s.tokens.length >= 4 && !actions.some((a) => s.messageIndex === a.messageIndex && s.text.includes(a.action.replace(/…$/, ''))))
      .map((s) => ({ s, score: this.score(s, freq, maxFreq, lang, sentences.length) }))
      .sort((a, b) => b.score - a.score || a.s.index - b.s.index);
    const picked: Sentence[] = [];
    for (const { s } of scored) {
      if (picked.length >= this.maxKeyPoints) break;
      if (picked.some((p) => jaccard(p.content, s.content) > 0.5)) continue;
      picked.push(s);
    }
    picked.sort((a, b) => a.index - b.index);

    const keywords = [...freq.entries()]
      .filter(([, n]) => n >= 2 || freq.size < 8)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, 4)
      .map(([t]) => t);
    const title = transcript.title.trim();
    const topic = title && keywords.length ? `${title}: ${keywords.join(', ')}` : title || keywords.join(', ') || clip(sentences[0]?.text ?? '', 120);

    return {
      topic,
      keyPoints: picked.map((s) => `${s.speaker}: ${clip(s.text, this.maxChars)}`),
      actions: actions.map(({ owner, action }) => ({ owner, action })),
      language: lang.code,
      method: 'extractive',
    };
  }

  private score(s: Sentence, freq: Map<string, number>, maxFreq: number, lang: LanguageProfile, total: number): number {
    if (s.content.length === 0) return 0;
    let tf = 0;
    for (const t of new Set(s.content)) tf += (freq.get(t) ?? 0) / maxFreq;
    // Length-normalised, with a floor so that a two-word line that happens to
    // name the chat's main word does not beat a sentence that says something.
    let score = tf / Math.sqrt(Math.max(s.content.length, 6));
    if (lang.importantCues.test(s.lower)) score += 0.6;
    if (/\d/.test(s.text)) score += 0.2; // figures, dates, times
    if (s.text.endsWith('?')) score += 0.15; // open questions
    if (s.index === 0 && total > 3) score += 0.2; // the opening usually states the subject
    if (s.tokens.length > 60) score *= 0.7;
    return score;
  }

  private sentencesOf(transcript: SummarizerInput, lang: LanguageProfile): Sentence[] {
    const out: Sentence[] = [];
    transcript.messages.forEach((m, messageIndex) => {
      for (const text of splitSentences(m.text)) {
        const tokens = tokenize(text);
        out.push({ index: out.length, messageIndex, speaker: m.sender, text, lower: text.toLowerCase().replace(/’/g, "'"), tokens, content: tokens.filter((t) => !lang.stopwords.has(t)) });
      }
    });
    return out;
  }

  private actions(sentences: Sentence[], transcript: SummarizerInput, speakers: string[], lang: LanguageProfile): Array<ActionItem & { messageIndex: number }> {
    const out: Array<ActionItem & { messageIndex: number }> = [];
    const firstNames = speakers.map((s) => ({ full: s, first: (tokenize(s)[0] ?? '').toLowerCase() })).filter((n) => n.first);
    const named = (text: string): string | undefined => {
      const lower = text.toLowerCase();
      const at = /@([\p{L}\p{N}_.-]+)/u.exec(lower)?.[1];
      if (at) return firstNames.find((n) => n.first === at || at.startsWith(n.first))?.full ?? at;
      // "Bob, can you …" / "… please, Bob?"
      const lead = /^([\p{L}][\p{L}\p{N}_-]*)\s*[,:]/u.exec(lower)?.[1];
      const tail = /[,]\s*([\p{L}][\p{L}\p{N}_-]*)\s*[?.!]*$/u.exec(lower)?.[1];
      return firstNames.find((n) => n.first === lead || n.first === tail)?.full;
    };
    for (const s of sentences) {
      if (out.length >= this.maxActions) break;
      if (!lang.actionCues.test(s.lower) || s.tokens.length < 3) continue;
      // "Sure, I'll take it." accepts the request before it; it is not an action of its own.
      if (lang.acceptCues.test(s.lower) && s.content.length <= 3) continue;
      let owner = named(s.text);
      if (!owner && lang.selfCues.test(s.lower)) owner = s.speaker;
      if (!owner && lang.requestCues.test(s.lower)) owner = this.acceptedBy(transcript, s, lang) ?? this.onlyOther(speakers, s.speaker);
      const action = clip(s.text, this.maxChars);
      if (out.some((a) => a.action === action)) continue;
      out.push({ owner: owner ?? '', action, messageIndex: s.messageIndex });
    }
    return out;
  }

  /** Whoever else answered the request with an acceptance in the next three messages. */
  private acceptedBy(transcript: SummarizerInput, s: Sentence, lang: LanguageProfile): string | undefined {
    for (const m of transcript.messages.slice(s.messageIndex + 1, s.messageIndex + 4)) {
      if (m.sender !== s.speaker && lang.acceptCues.test(m.text.trim().toLowerCase().replace(/’/g, "'"))) return m.sender;
    }
    return undefined;
  }

  /** In a conversation of two, a request is for the other one. */
  private onlyOther(speakers: string[], speaker: string): string | undefined {
    return speakers.length === 2 ? speakers.find((x) => x !== speaker) : undefined;
  }
}

const builtIn = new ExtractiveSummarizer();

/**
 * The built-in summary of a conversation, with the default limits; no network.
 * An empty conversation gives the title as its topic and nothing else.
 * @example summarizeExtractive({ title: 'Launch', messages: [{ sender: 'Ann', text: 'Bob, can you ship it by Friday?' }] })
 */
export function summarizeExtractive(t: SummarizerInput): Summary {
  return builtIn.summarizeSync(t);
}
