// What a summariser is, and the failures a caller tells apart: retryable ones
// (the model endpoint is busy, down or slow) are worth another attempt later;
// the others are final. Error messages are fixed strings: they end up in logs
// and job failure reasons, so they never carry transcript text or a model's answer.

export interface ActionItem {
  /** Who is expected to act ("" when nobody is named). */
  owner: string;
  action: string;
}

export interface Summary {
  topic: string;
  keyPoints: string[];
  actions: ActionItem[];
  /** BCP 47 primary language tag, e.g. "en", "fr"; "und" when unknown. */
  language: string;
  method: 'llm' | 'extractive';
}

/** What a summariser reads: the chat title and the messages in order, each with its speaker's display name. */
export interface SummarizerInput {
  title: string;
  messages: ReadonlyArray<{ sender: string; text: string }>;
}

export interface Summarizer {
  /** 'llm' or 'extractive': what `summarize` normally produces. */
  readonly method: Summary['method'];
  summarize(input: SummarizerInput, signal?: AbortSignal): Promise<Summary>;
}

export type SummarizerFailure = 'summarizer_unavailable' | 'timeout' | 'summarizer_rejected';

export class SummarizerError extends Error {
  constructor(
    readonly reason: SummarizerFailure,
    readonly retryable: boolean,
    /** HTTP status from the model endpoint, when there was one. */
    readonly status?: number,
  ) {
    super(`summarizer failed: ${reason}${status ? ` (HTTP ${status})` : ''}`);
    this.name = 'SummarizerError';
  }
}

/** A transcript as plain lines for a model: `Name: text`, whitespace collapsed. */
export function transcriptLines(messages: SummarizerInput['messages']): string[] {
  return messages.map((m) => `${m.sender}: ${m.text.replace(/\s+/g, ' ').trim()}`);
}
