// The plaintexts inside the sealed boxes (docs/digest.md): the transcript a
// client sends, and the summary the worker sends back. Parsing never echoes
// the input in an error (JSON.parse's own messages quote it), since these
// errors may be logged or stored as a job's failure reason.
import { isUuid } from '@bil/crypto';

export const TRANSCRIPT_TYPE = 'bil.digest-transcript.v1';
export const SUMMARY_TYPE = 'bil.digest-summary.v1';

/** The seal kinds and contexts of docs/protocol.md, "Sealed payloads". */
export const REQUEST_KIND = 'digest-request';
export const RESULT_KIND = 'digest-result';
export const requestContext = (chatId: string, deviceId: string) => `${chatId}:${deviceId}`;
export const resultContext = (requestId: string, chatId: string) => `${requestId}:${chatId}`;

export interface TranscriptMessage {
  seq: number;
  /** The sender's display name as the client shows it. */
  sender: string;
  /** Milliseconds since the Unix epoch. */
  sentAt: number;
  text: string;
}

export interface Transcript {
  chatId: string;
  title: string;
  messages: TranscriptMessage[];
}

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

export class InvalidTranscriptError extends Error {
  constructor(readonly why: string) {
    super(`invalid transcript: ${why}`);
    this.name = 'InvalidTranscriptError';
  }
}

const MAX_MESSAGES = 5000;
const MAX_TEXT = 16_384;
const MAX_NAME = 128;

/** Parses and checks a transcript's UTF-8 JSON; it must belong to `chatId`. */
export function parseTranscript(bytes: Uint8Array, chatId: string): Transcript {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new InvalidTranscriptError('not UTF-8 JSON');
  }
  const t = raw as Record<string, unknown>;
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new InvalidTranscriptError('not an object');
  if (t.type !== TRANSCRIPT_TYPE) throw new InvalidTranscriptError('wrong type');
  if (t.chat_id !== chatId || !isUuid(chatId)) throw new InvalidTranscriptError('chat_id does not match');
  const title = t.title === undefined ? '' : t.title;
  if (typeof title !== 'string' || title.length > 256) throw new InvalidTranscriptError('bad title');
  if (!Array.isArray(t.messages) || t.messages.length === 0 || t.messages.length > MAX_MESSAGES) throw new InvalidTranscriptError('messages must be a non-empty list');
  const messages = t.messages.map((m: unknown, i: number): TranscriptMessage => {
    const r = m as Record<string, unknown>;
    if (typeof r !== 'object' || r === null) throw new InvalidTranscriptError(`message ${i} is not an object`);
    if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 0) throw new InvalidTranscriptError(`message ${i}: bad seq`);
    if (typeof r.sender !== 'string' || r.sender.length > MAX_NAME) throw new InvalidTranscriptError(`message ${i}: bad sender`);
    if (!Number.isSafeInteger(r.sent_at) || (r.sent_at as number) < 0) throw new InvalidTranscriptError(`message ${i}: bad sent_at`);
    if (typeof r.text !== 'string' || r.text.length > MAX_TEXT) throw new InvalidTranscriptError(`message ${i}: bad text`);
    return { seq: r.seq as number, sender: r.sender.trim() || 'someone', sentAt: r.sent_at as number, text: r.text };
  });
  messages.sort((a, b) => a.seq - b.seq);
  return { chatId, title, messages };
}

/** The summary plaintext sealed to the device (docs/digest.md). */
export function summaryPlaintext(requestId: string, transcript: Transcript, summary: Summary): Uint8Array {
  const first = transcript.messages[0]!;
  const last = transcript.messages[transcript.messages.length - 1]!;
  return new TextEncoder().encode(
    JSON.stringify({
      type: SUMMARY_TYPE,
      request_id: requestId,
      chat_id: transcript.chatId,
      topic: summary.topic,
      key_points: summary.keyPoints,
      actions: summary.actions.map((a) => ({ owner: a.owner, action: a.action })),
      language: summary.language,
      method: summary.method,
      message_count: transcript.messages.length,
      first_seq: first.seq,
      last_seq: last.seq,
    }),
  );
}

/** A transcript as plain lines for a model or the extractive summariser: `Name: text`. */
export function transcriptLines(messages: TranscriptMessage[]): string[] {
  return messages.map((m) => `${m.sender}: ${m.text.replace(/\s+/g, ' ').trim()}`);
}
