import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  CONTENT_MARKER,
  decodeContent,
  encodeContent,
  isReactionEmoji,
  MAX_ATTACHMENTS,
  MAX_CONTENT_BYTES,
  MAX_QUOTE_LENGTH,
  MAX_THUMBNAIL_BYTES,
  type AttachmentRef,
  type MessageContent,
} from './content.js';
import { fromUtf8, toBase64Url, utf8 } from './encoding.js';

const ID = '0193c2a5-0000-7000-8000-000000000001';
const attachment: AttachmentRef = {
  blob_id: 'b1',
  key: toBase64Url(new Uint8Array(32)),
  digest: toBase64Url(new Uint8Array(32).fill(1)),
  size: 10,
  chunk_size: 65536,
  mime: 'text/plain',
  name: 'a.txt',
};
const marked = (value: unknown): Uint8Array => new Uint8Array([CONTENT_MARKER, ...utf8(JSON.stringify(value))]);

describe('message content', () => {
  it('round-trips every kind, canonically (keys sorted, type first by sort order)', () => {
    const all: MessageContent[] = [
      { kind: 'text', text: 'hi' },
      { kind: 'text', text: 're', reply_to: { message_id: ID, quote: 'q' } },
      { kind: 'text', text: '', attachments: [{ ...attachment, thumbnail: { mime: 'image/png', data: toBase64Url(new Uint8Array(10)), width: 1, height: 2 } }] },
      { kind: 'reaction', target: ID, emoji: '❤️' },
      { kind: 'reaction', target: ID, emoji: '👨‍👩‍👧‍👦', remove: true },
      { kind: 'edit', target: ID, text: 'fixed' },
    ];
    for (const c of all) {
      const bytes = encodeContent(c);
      expect(bytes[0]).toBe(0xff);
      expect(decodeContent(bytes)).toEqual(c);
    }
    expect(fromUtf8(encodeContent({ kind: 'edit', text: 'x', target: ID }).subarray(1))).toBe(`{"kind":"edit","target":"${ID}","text":"x","type":"bil.content.v1"}`);
  });

  it('reads plaintext without the marker as legacy text, any UTF-8 string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        expect(decodeContent(utf8(s))).toEqual({ kind: 'text', text: s });
      }),
    );
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const d = decodeContent(b);
        expect(['text', 'reaction', 'edit', 'unsupported', 'invalid']).toContain(d.kind);
      }),
    );
    expect(decodeContent(new Uint8Array([0xff]))).toEqual({ kind: 'invalid' });
    expect(decodeContent(marked(null))).toEqual({ kind: 'invalid' });
    expect(decodeContent(marked([1]))).toEqual({ kind: 'invalid' });
    expect(decodeContent('x' as never)).toEqual({ kind: 'invalid' });
  });

  it('unknown type or kind is unsupported; a known kind with bad fields is invalid', () => {
    expect(decodeContent(marked({ type: 'bil.content.v9', kind: 'text', text: 'x' }))).toEqual({ kind: 'unsupported' });
    expect(decodeContent(marked({ type: 'bil.content.v1', kind: 'sticker' }))).toEqual({ kind: 'unsupported' });
    expect(decodeContent(marked({ kind: 'text', text: 'x' }))).toEqual({ kind: 'unsupported' });
    const bad: unknown[] = [
      { kind: 'text', text: 1 },
      { kind: 'text', text: '' },
      { kind: 'text', text: 'x', reply_to: { message_id: 'nope' } },
      { kind: 'text', text: 'x', reply_to: { message_id: ID, quote: 'q'.repeat(MAX_QUOTE_LENGTH + 1) } },
      { kind: 'text', text: 'x', attachments: {} },
      { kind: 'text', text: 'x', attachments: Array.from({ length: MAX_ATTACHMENTS + 1 }, () => attachment) },
      { kind: 'text', text: 'x', attachments: [{ ...attachment, key: toBase64Url(new Uint8Array(31)) }] },
      { kind: 'text', text: 'x', attachments: [{ ...attachment, digest: 'not base64!' }] },
      { kind: 'text', text: 'x', attachments: [{ ...attachment, size: -1 }] },
      { kind: 'text', text: 'x', attachments: [{ ...attachment, size: 1.5 }] },
      { kind: 'text', text: 'x', attachments: [{ ...attachment, chunk_size: 0 }] },
      { kind: 'text', text: 'x', attachments: [{ ...attachment, blob_id: '' }] },
      { kind: 'text', text: 'x', attachments: [{ ...attachment, name: 'n'.repeat(256) }] },
      { kind: 'text', text: 'x', attachments: [{ ...attachment, thumbnail: { mime: 'image/png', data: toBase64Url(new Uint8Array(MAX_THUMBNAIL_BYTES + 1)), width: 1, height: 1 } }] },
      { kind: 'text', text: 'x', attachments: [{ ...attachment, thumbnail: { mime: 'image/png', data: '', width: 0, height: 1 } }] },
      { kind: 'reaction', target: ID, emoji: '👍👍' },
      { kind: 'reaction', target: ID, emoji: '' },
      { kind: 'reaction', target: ID, emoji: ' ' },
      { kind: 'reaction', target: ID, emoji: '👍', remove: false },
      { kind: 'reaction', target: 'x', emoji: '👍' },
      { kind: 'edit', target: ID, text: '' },
      { kind: 'edit', target: ID.toUpperCase(), text: 'x' },
    ];
    for (const b of bad) {
      expect(decodeContent(marked({ type: 'bil.content.v1', ...(b as object) })), JSON.stringify(b).slice(0, 80)).toEqual({ kind: 'invalid' });
      expect(() => encodeContent(b as MessageContent)).toThrow(TypeError);
    }
  });

  it('keeps within MAX_CONTENT_BYTES', () => {
    const big = 'x'.repeat(MAX_CONTENT_BYTES);
    expect(() => encodeContent({ kind: 'text', text: big })).toThrow(RangeError);
    const fits = 'x'.repeat(MAX_CONTENT_BYTES - 60);
    expect(encodeContent({ kind: 'text', text: fits }).length).toBeLessThanOrEqual(MAX_CONTENT_BYTES);
    expect(decodeContent(new Uint8Array(MAX_CONTENT_BYTES + 1).fill(0x61))).toEqual({ kind: 'invalid' });
  });

  it('a reaction is one grapheme cluster of at most 32 bytes', () => {
    for (const e of ['👍', '👍🏽', '🏳️‍🌈', 'a', '+1'.slice(0, 1)]) expect(isReactionEmoji(e), e).toBe(true);
    for (const e of ['', '👍👍', 'ab', '\n', 1, '👨‍👩‍👧‍👦'.repeat(2)]) expect(isReactionEmoji(e), String(e)).toBe(false);
  });
});
