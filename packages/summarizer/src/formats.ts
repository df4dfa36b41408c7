// The plaintexts inside the digest's sealed boxes (docs/digest.md, "Formats";
// docs/protocol.md, "Sealed payloads (digest)"): the transcript a client seals
// to the digest service, and the summary the worker seals back. Both are bound
// to one request: the request id, chat and requesting device are inside the
// plaintext AND are the sealed box's `context` (digestContext), and the summary
// echoes the SHA-256 of the exact transcript bytes and the seq range, so that
// neither an old transcript nor an old summary passes for a new one.
//
// Parsing never echoes the input in an error (JSON.parse's own messages quote
// it, and so would a mismatched value): these errors may be logged or stored
// as a job's failure reason.
import { isUuid, toBase64Url } from '@bil/crypto';
import type { ActionItem, Summary } from './summarizer.js';

export const TRANSCRIPT_TYPE = 'bil.digest-transcript.v2';
export const SUMMARY_TYPE = 'bil.digest-summary.v2';

/** The sealed-box kinds of docs/protocol.md, "Sealed payloads (digest)". */
export const REQUEST_KIND = 'digest-request';
export const RESULT_KIND = 'digest-result';

/**
 * The sealed-box `context` of both the request box and the result box of one
 * chat in one digest request: `<request_id>:<chat_id>:<device_id>` (lowercase UUIDs).
 * @example digestContext(requestId, chatId, deviceId) // "0190…:0190…:0190…"
 */
export function digestContext(requestId: string, chatId: string, deviceId: string): string {
  for (const id of [requestId, chatId, deviceId]) if (!isUuid(id)) throw new TypeError('digestContext: ids must be lowercase UUIDs');
  return `${requestId}:${chatId}:${deviceId}`;
}

export interface TranscriptMessage {
  seq: number;
  /** The sender's display name as the client shows it (summaries name people by it). */
  sender: string;
  /** The sender's account: what consent applies to. */
  senderUserId: string;
  /** Milliseconds since the Unix epoch. */
  sentAt: number;
  text: string;
}

export interface Transcript {
  requestId: string;
  chatId: string;
  /** The requesting device. */
  deviceId: string;
  title: string;
  /** The unread range the client read (it may hold messages left out by consent): fromSeq ≤ every seq ≤ toSeq. */
  fromSeq: number;
  toSeq: number;
  /** In seq order. */
  messages: TranscriptMessage[];
}

/** What a transcript or summary must belong to. */
export interface DigestBinding {
  requestId: string;
  chatId: string;
  deviceId: string;
}

/** The summary plaintext: what it covers, and the summary itself. */
export interface DigestSummaryPlain extends DigestBinding, Summary {
  /** base64url SHA-256 of the exact transcript plaintext bytes (transcriptSha256). */
  transcriptSha256: string;
  fromSeq: number;
  toSeq: number;
  /** Messages summarised. */
  messageCount: number;
  /** Messages of the transcript the worker left out (consent). */
  excludedCount: number;
}

export type ExpectedSummary = DigestBinding & Pick<DigestSummaryPlain, 'transcriptSha256' | 'fromSeq' | 'toSeq'>;

export class InvalidTranscriptError extends Error {
  constructor(readonly why: string) {
    super(`invalid transcript: ${why}`);
    this.name = 'InvalidTranscriptError';
  }
}

/** A summary plaintext that is malformed or not the one asked for. `field` names what did not match (never its value). */
export class InvalidSummaryError extends Error {
  constructor(
    readonly why: 'malformed' | 'mismatch',
    readonly field?: string,
  ) {
    super(`invalid summary: ${why}${field ? ` (${field})` : ''}`);
    this.name = 'InvalidSummaryError';
  }
}

export const MAX_MESSAGES = 5000;
export const MAX_TEXT = 16_384;
export const MAX_NAME = 128;
export const MAX_TITLE = 256;

const seqOk = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function decodeJsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
}

/** The transcript plaintext v2: UTF-8 JSON, fields in the documented order. Hash these exact bytes (transcriptSha256). */
export function encodeTranscript(t: Transcript): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      type: TRANSCRIPT_TYPE,
      request_id: t.requestId,
      chat_id: t.chatId,
      device_id: t.deviceId,
      title: t.title,
      from_seq: t.fromSeq,
      to_seq: t.toSeq,
      messages: t.messages.map((m) => ({ seq: m.seq, sender: m.sender, sender_user_id: m.senderUserId, sent_at: m.sentAt, text: m.text })),
    }),
  );
}

/**
 * Parses and checks a transcript plaintext v2 (v1 is refused): it must be for
 * `expected`'s request, chat and device; every message's seq within
 * [from_seq, to_seq], seqs distinct. Messages come back in seq order; a blank
 * sender is "someone". Throws InvalidTranscriptError.
 */
export function parseTranscript(bytes: Uint8Array, expected: DigestBinding): Transcript {
  const t = decodeJsonObject(bytes);
  if (!t) throw new InvalidTranscriptError('not a UTF-8 JSON object');
  if (t.type !== TRANSCRIPT_TYPE) throw new InvalidTranscriptError('wrong type');
  if (t.request_id !== expected.requestId || !isUuid(expected.requestId)) throw new InvalidTranscriptError('request_id does not match');
  if (t.chat_id !== expected.chatId || !isUuid(expected.chatId)) throw new InvalidTranscriptError('chat_id does not match');
  if (t.device_id !== expected.deviceId || !isUuid(expected.deviceId)) throw new InvalidTranscriptError('device_id does not match');
  const title = t.title === undefined ? '' : t.title;
  if (typeof title !== 'string' || title.length > MAX_TITLE) throw new InvalidTranscriptError('bad title');
  if (!seqOk(t.from_seq) || !seqOk(t.to_seq) || t.from_seq > t.to_seq) throw new InvalidTranscriptError('bad from_seq/to_seq');
  const [fromSeq, toSeq] = [t.from_seq, t.to_seq];
  if (!Array.isArray(t.messages) || t.messages.length > MAX_MESSAGES) throw new InvalidTranscriptError(`messages must be a list of at most ${MAX_MESSAGES}`);
  const messages = t.messages.map((m: unknown, i: number): TranscriptMessage => {
    const r = m as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new InvalidTranscriptError(`message ${i} is not an object`);
    if (!seqOk(r.seq) || r.seq < fromSeq || r.seq > toSeq) throw new InvalidTranscriptError(`message ${i}: bad seq`);
    if (typeof r.sender !== 'string' || r.sender.length > MAX_NAME) throw new InvalidTranscriptError(`message ${i}: bad sender`);
    if (!isUuid(r.sender_user_id)) throw new InvalidTranscriptError(`message ${i}: bad sender_user_id`);
    if (!seqOk(r.sent_at)) throw new InvalidTranscriptError(`message ${i}: bad sent_at`);
    if (typeof r.text !== 'string' || r.text.length > MAX_TEXT) throw new InvalidTranscriptError(`message ${i}: bad text`);
    return { seq: r.seq, sender: r.sender.trim() || 'someone', senderUserId: r.sender_user_id, sentAt: r.sent_at, text: r.text };
  });
  messages.sort((a, b) => a.seq - b.seq);
  if (messages.some((m, i) => i > 0 && messages[i - 1]!.seq === m.seq)) throw new InvalidTranscriptError('duplicate seq');
  return { requestId: expected.requestId, chatId: expected.chatId, deviceId: expected.deviceId, title, fromSeq, toSeq, messages };
}

/** base64url (no padding) SHA-256 of the exact transcript plaintext bytes, with WebCrypto (Node and browsers). */
export async function transcriptSha256(bytes: Uint8Array): Promise<string> {
  return toBase64Url(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
}

/** The summary plaintext v2 the worker seals to the requesting device. */
export function encodeSummary(s: DigestSummaryPlain): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      type: SUMMARY_TYPE,
      request_id: s.requestId,
      chat_id: s.chatId,
      device_id: s.deviceId,
      transcript_sha256: s.transcriptSha256,
      from_seq: s.fromSeq,
      to_seq: s.toSeq,
      message_count: s.messageCount,
      excluded_count: s.excludedCount,
      topic: s.topic,
      key_points: s.keyPoints,
      actions: s.actions.map((a) => ({ owner: a.owner, action: a.action })),
      language: s.language,
      method: s.method,
    }),
  );
}

const ECHOED: Array<[keyof ExpectedSummary, string]> = [
  ['requestId', 'request_id'],
  ['chatId', 'chat_id'],
  ['deviceId', 'device_id'],
  ['transcriptSha256', 'transcript_sha256'],
  ['fromSeq', 'from_seq'],
  ['toSeq', 'to_seq'],
];

/**
 * Parses a summary plaintext v2 and checks that it answers exactly the
 * transcript the client sent: request, chat, device, transcript hash and seq
 * range must all equal `expected`, and message_count + excluded_count fit in
 * the range. Throws InvalidSummaryError ('mismatch' with the field's name, or
 * 'malformed').
 */
export function parseSummary(bytes: Uint8Array, expected: ExpectedSummary): DigestSummaryPlain {
  const s = decodeJsonObject(bytes);
  if (!s || s.type !== SUMMARY_TYPE) throw new InvalidSummaryError('malformed', 'type');
  for (const [key, field] of ECHOED) if (s[field] !== expected[key]) throw new InvalidSummaryError('mismatch', field);
  const { fromSeq, toSeq } = expected;
  if (!seqOk(fromSeq) || !seqOk(toSeq) || fromSeq > toSeq) throw new InvalidSummaryError('mismatch', 'from_seq');
  if (!seqOk(s.message_count) || !seqOk(s.excluded_count) || s.message_count + s.excluded_count > toSeq - fromSeq + 1) throw new InvalidSummaryError('malformed', 'message_count');
  const str = (v: unknown): v is string => typeof v === 'string';
  if (!str(s.topic)) throw new InvalidSummaryError('malformed', 'topic');
  if (!Array.isArray(s.key_points) || !s.key_points.every(str)) throw new InvalidSummaryError('malformed', 'key_points');
  const actions = s.actions;
  if (!Array.isArray(actions) || !actions.every((a) => typeof a === 'object' && a !== null && str(a.owner) && str(a.action))) throw new InvalidSummaryError('malformed', 'actions');
  if (!str(s.language)) throw new InvalidSummaryError('malformed', 'language');
  if (s.method !== 'llm' && s.method !== 'extractive') throw new InvalidSummaryError('malformed', 'method');
  return {
    requestId: expected.requestId,
    chatId: expected.chatId,
    deviceId: expected.deviceId,
    transcriptSha256: expected.transcriptSha256,
    fromSeq,
    toSeq,
    messageCount: s.message_count,
    excludedCount: s.excluded_count,
    topic: s.topic,
    keyPoints: s.key_points,
    actions: (actions as ActionItem[]).map((a) => ({ owner: a.owner, action: a.action })),
    language: s.language,
    method: s.method,
  };
}
