import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  InvalidSummaryError,
  InvalidTranscriptError,
  SUMMARY_TYPE,
  TRANSCRIPT_TYPE,
  digestContext,
  encodeSummary,
  encodeTranscript,
  parseSummary,
  parseTranscript,
  transcriptSha256,
  type DigestSummaryPlain,
  type Transcript,
} from './formats.js';

const requestId = '0190b0a4-2222-7000-8000-000000000001';
const chatId = '0190b0a4-1111-7000-8000-000000000001';
const deviceId = '0190b0a4-3333-7000-8000-000000000001';
const otherId = '0190b0a4-9999-7000-8000-000000000009';
const ann = '0190b0a4-4444-7000-8000-000000000001';
const ids = { requestId, chatId, deviceId };
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;

const valid = {
  type: TRANSCRIPT_TYPE,
  request_id: requestId,
  chat_id: chatId,
  device_id: deviceId,
  title: 'T',
  from_seq: 1,
  to_seq: 5,
  messages: [
    { seq: 4, sender: 'B', sender_user_id: ann, sent_at: 2, text: 'b' },
    { seq: 1, sender: ' ', sender_user_id: ann, sent_at: 1, text: 'a' },
  ],
};

/** The message of what `f` throws (it must throw). */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

describe('transcript plaintext v2', () => {
  it('round-trips: encode → parse gives the transcript back, in seq order', () => {
    const t: Transcript = { ...ids, title: 'Launch', fromSeq: 10, toSeq: 20, messages: [{ seq: 11, sender: 'Ann', senderUserId: ann, sentAt: 5, text: 'hi' }] };
    const encoded = encodeTranscript(t);
    expect(Object.keys(json(encoded))).toEqual(['type', 'request_id', 'chat_id', 'device_id', 'title', 'from_seq', 'to_seq', 'messages']);
    expect(parseTranscript(encoded, ids)).toEqual(t);
  });

  it('parses, orders by seq and names a blank sender', () => {
    const t = parseTranscript(bytes(valid), ids);
    expect(t.messages.map((m) => [m.seq, m.sender])).toEqual([[1, 'someone'], [4, 'B']]);
    expect([t.fromSeq, t.toSeq]).toEqual([1, 5]);
  });

  it('refuses a transcript for another request, chat or device (a resubmitted transcript)', () => {
    expect(thrown(() => parseTranscript(bytes(valid), { ...ids, requestId: otherId })).message).toMatch(/request_id/);
    expect(thrown(() => parseTranscript(bytes(valid), { ...ids, chatId: otherId })).message).toMatch(/chat_id/);
    expect(thrown(() => parseTranscript(bytes(valid), { ...ids, deviceId: otherId })).message).toMatch(/device_id/);
  });

  it('refuses v1 and other types', () => {
    const v1 = { type: 'bil.digest-transcript.v1', chat_id: chatId, title: 'T', messages: [{ seq: 1, sender: 'A', sent_at: 1, text: 'a' }] };
    expect(thrown(() => parseTranscript(bytes(v1), ids))).toBeInstanceOf(InvalidTranscriptError);
    expect(thrown(() => parseTranscript(bytes({ ...valid, type: 'bil.digest-transcript.v1' }), ids)).message).toMatch(/type/);
  });

  it('refuses a bad range, a seq outside it, a repeated seq, a message without sender_user_id', () => {
    expect(thrown(() => parseTranscript(bytes({ ...valid, from_seq: 6 }), ids)).message).toMatch(/from_seq/);
    expect(thrown(() => parseTranscript(bytes({ ...valid, to_seq: 3 }), ids)).message).toMatch(/bad seq/);
    expect(thrown(() => parseTranscript(bytes({ ...valid, from_seq: 2 }), ids)).message).toMatch(/bad seq/);
    expect(thrown(() => parseTranscript(bytes({ ...valid, messages: [valid.messages[0], valid.messages[0]] }), ids)).message).toMatch(/duplicate seq/);
    expect(thrown(() => parseTranscript(bytes({ ...valid, messages: [{ ...valid.messages[0], sender_user_id: 'ann' }] }), ids)).message).toMatch(/sender_user_id/);
  });

  it('accepts an empty message list (every message in the range left out)', () => {
    expect(parseTranscript(bytes({ ...valid, messages: [] }), ids).messages).toEqual([]);
  });

  it('never quotes the plaintext in an error (it may be logged or stored as a job failure)', () => {
    const secret = 'SECRET PHRASE';
    for (const bad of [`{"${secret}`, secret, JSON.stringify({ ...valid, messages: [{ seq: secret }] }), JSON.stringify({ ...valid, request_id: secret })]) {
      const err = thrown(() => parseTranscript(bytes(bad), ids));
      expect(err.message).toMatch(/^invalid transcript/);
      expect(err.message).not.toContain('SECRET');
    }
  });

  it('hashes the exact bytes: base64url SHA-256 without padding', async () => {
    const b = bytes(valid);
    expect(await transcriptSha256(b)).toBe(createHash('sha256').update(b).digest('base64url'));
    expect(await transcriptSha256(new Uint8Array())).toBe('47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU');
  });
});

describe('digest context', () => {
  it('is <request_id>:<chat_id>:<device_id>, UUIDs only', () => {
    expect(digestContext(requestId, chatId, deviceId)).toBe(`${requestId}:${chatId}:${deviceId}`);
    expect(() => digestContext('a:b', chatId, deviceId)).toThrow(TypeError);
  });
});

describe('summary plaintext v2', () => {
  const plain: DigestSummaryPlain = {
    ...ids,
    transcriptSha256: 'hash',
    fromSeq: 1,
    toSeq: 5,
    messageCount: 2,
    excludedCount: 1,
    topic: 't',
    keyPoints: ['k'],
    actions: [{ owner: 'B', action: 'b' }],
    language: 'en',
    method: 'extractive',
  };
  const expected = { ...ids, transcriptSha256: 'hash', fromSeq: 1, toSeq: 5 };

  it('has the documented fields and parses back when everything echoed matches', () => {
    const b = encodeSummary(plain);
    expect(json(b)).toEqual({
      type: SUMMARY_TYPE,
      request_id: requestId,
      chat_id: chatId,
      device_id: deviceId,
      transcript_sha256: 'hash',
      from_seq: 1,
      to_seq: 5,
      message_count: 2,
      excluded_count: 1,
      topic: 't',
      key_points: ['k'],
      actions: [{ owner: 'B', action: 'b' }],
      language: 'en',
      method: 'extractive',
    });
    expect(parseSummary(b, expected)).toEqual(plain);
  });

  it('refuses a summary whose request, chat, device, transcript hash or range is not the one asked for', () => {
    const b = encodeSummary(plain);
    const cases: Array<[Partial<typeof expected>, string]> = [
      [{ requestId: otherId }, 'request_id'],
      [{ chatId: otherId }, 'chat_id'],
      [{ deviceId: otherId }, 'device_id'],
      [{ transcriptSha256: 'other' }, 'transcript_sha256'],
      [{ fromSeq: 2 }, 'from_seq'],
      [{ toSeq: 6 }, 'to_seq'],
    ];
    for (const [change, field] of cases) {
      const err = thrown(() => parseSummary(b, { ...expected, ...change }));
      expect(err).toBeInstanceOf(InvalidSummaryError);
      expect(err).toMatchObject({ why: 'mismatch', field });
    }
  });

  it('refuses v1, malformed fields and counts beyond the range, without quoting the plaintext', () => {
    const v1 = { ...json(encodeSummary(plain)), type: 'bil.digest-summary.v1' };
    expect(thrown(() => parseSummary(bytes(v1), expected))).toMatchObject({ why: 'malformed', field: 'type' });
    expect(thrown(() => parseSummary(encodeSummary({ ...plain, messageCount: 5 }), expected))).toMatchObject({ field: 'message_count' });
    expect(thrown(() => parseSummary(encodeSummary({ ...plain, method: 'SECRET' as 'llm' }), expected))).toMatchObject({ field: 'method' });
    for (const bad of ['SECRET', JSON.stringify({ ...v1, type: SUMMARY_TYPE, topic: 7, key_points: ['SECRET'] }), JSON.stringify({ ...v1, type: SUMMARY_TYPE, request_id: 'SECRET' })]) {
      const err = thrown(() => parseSummary(bytes(bad), expected));
      expect(err.message).toMatch(/^invalid summary/);
      expect(err.message).not.toContain('SECRET');
    }
  });
});
