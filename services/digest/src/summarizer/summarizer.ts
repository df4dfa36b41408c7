// What the worker needs from a summariser, and the failures it tells apart:
// retryable ones (the model endpoint is busy, down or slow) are retried with
// backoff; the others fail the request for good. Error messages are fixed
// strings: they end up in logs and in BullMQ's failure reason, so they must
// never carry transcript text or a model's answer.
import type { Summary, Transcript } from '../domain/transcript.js';
import type { FailureReason } from '../domain/digest/digest.js';

export interface Summarizer {
  /** 'llm' or 'extractive': what `summarize` normally produces. */
  readonly method: Summary['method'];
  summarize(transcript: Transcript, signal?: AbortSignal): Promise<Summary>;
}

export class SummarizerError extends Error {
  constructor(
    readonly reason: Extract<FailureReason, 'summarizer_unavailable' | 'timeout' | 'summarizer_rejected'>,
    readonly retryable: boolean,
    /** HTTP status from the model endpoint, when there was one. */
    readonly status?: number,
  ) {
    super(`summarizer failed: ${reason}${status ? ` (HTTP ${status})` : ''}`);
    this.name = 'SummarizerError';
  }
}
