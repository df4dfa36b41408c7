import { describe, expect, it } from 'vitest';
import { parseTranscript, summaryPlaintext, TRANSCRIPT_TYPE } from './transcript.js';

const chatId = '0190b0a4-1111-7000-8000-000000000001';
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const valid = { type: TRANSCRIPT_TYPE, chat_id: chatId, title: 'T', messages: [{ seq: 2, sender: 'B', sent_at: 2, text: 'b' }, { seq: 1, sender: ' ', sent_at: 1, text: 'a' }] };

describe('transcript plaintext', () => {
  it('parses, orders by seq and names a blank sender', () => {
    const t = parseTranscript(bytes(valid), chatId);
    expect(t.messages.map((m) => [m.seq, m.sender])).toEqual([[1, 'someone'], [2, 'B']]);
  });

  it('refuses a transcript of another chat, a wrong type, or no messages', () => {
    expect(() => parseTranscript(bytes({ ...valid, chat_id: '0190b0a4-1111-7000-8000-000000000002' }), chatId)).toThrow(/chat_id/);
    expect(() => parseTranscript(bytes({ ...valid, type: 'x' }), chatId)).toThrow(/type/);
    expect(() => parseTranscript(bytes({ ...valid, messages: [] }), chatId)).toThrow(/messages/);
  });

  it('never quotes the plaintext in an error (it may be logged or stored as a job failure)', () => {
    for (const bad of ['{"SECRET PHRASE', 'SECRET PHRASE', JSON.stringify({ ...valid, messages: [{ seq: 'SECRET PHRASE' }] })]) {
      let message = '';
      try {
        parseTranscript(bytes(bad), chatId);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^invalid transcript/);
      expect(message).not.toContain('SECRET');
    }
  });

  it('the summary plaintext says which messages it covers', () => {
    const t = parseTranscript(bytes(valid), chatId);
    const out = JSON.parse(new TextDecoder().decode(summaryPlaintext('r', t, { topic: 't', keyPoints: [], actions: [{ owner: 'B', action: 'b' }], language: 'en', method: 'extractive' })));
    expect(out).toEqual({ type: 'bil.digest-summary.v1', request_id: 'r', chat_id: chatId, topic: 't', key_points: [], actions: [{ owner: 'B', action: 'b' }], language: 'en', method: 'extractive', message_count: 2, first_seq: 1, last_seq: 2 });
  });
});
