// Test support (excluded from the build): docs/testvectors/content.json, the
// message content format (docs/protocol.md "Message content"). Encoding
// vectors (content → plaintext bytes) and decoding vectors (plaintext bytes
// → what a reader makes of them, including legacy, unsupported and invalid).
import { CONTENT_TYPE, encodeContent, type MessageContent } from '../content.js';
import { toBase64Url, utf8 } from '../encoding.js';
import { CHECK_TIME } from './vectors.js';

const MESSAGE_ID = '0193c2a5-0000-7000-8000-000000000001';
const key = toBase64Url(new Uint8Array(32).map((_, i) => i));
const digest = toBase64Url(new Uint8Array(32).map((_, i) => 255 - i));

const encoding: { what: string; content: MessageContent }[] = [
  { what: 'plain text', content: { kind: 'text', text: 'hello 👋' } },
  { what: 'a reply with a quote', content: { kind: 'text', text: 'yes!', reply_to: { message_id: MESSAGE_ID, quote: 'lunch at noon?' } } },
  {
    what: 'text with an attachment and its thumbnail',
    content: {
      kind: 'text',
      text: 'the plan',
      attachments: [
        {
          blob_id: '0193c2a5-0000-7000-8000-0000000000b1',
          key,
          digest,
          size: 123456,
          chunk_size: 65536,
          mime: 'image/png',
          name: 'plan.png',
          thumbnail: { mime: 'image/webp', data: toBase64Url(utf8('not really an image')), width: 64, height: 48 },
        },
      ],
    },
  },
  { what: 'a reaction', content: { kind: 'reaction', target: MESSAGE_ID, emoji: '👍🏽' } },
  { what: 'a reaction taken back', content: { kind: 'reaction', target: MESSAGE_ID, emoji: '👍🏽', remove: true } },
  { what: 'an edit', content: { kind: 'edit', target: MESSAGE_ID, text: 'lunch at one?' } },
];

const marked = (json: string): string => toBase64Url(new Uint8Array([0xff, ...utf8(json)]));

const decoding: { what: string; plaintext: string; decoded: Record<string, unknown> }[] = [
  { what: 'legacy plain text (no 0xFF marker): kind text', plaintext: toBase64Url(utf8('hi from an old client')), decoded: { kind: 'text', text: 'hi from an old client' } },
  { what: 'unknown kind: unsupported', plaintext: marked(`{"kind":"poll","question":"?","type":"${CONTENT_TYPE}"}`), decoded: { kind: 'unsupported' } },
  { what: 'unknown type: unsupported', plaintext: marked('{"kind":"text","text":"hi","type":"bil.content.v2"}'), decoded: { kind: 'unsupported' } },
  { what: 'unknown fields of a known kind are dropped', plaintext: marked(`{"kind":"text","mood":"sunny","text":"hi","type":"${CONTENT_TYPE}"}`), decoded: { kind: 'text', text: 'hi' } },
  { what: 'malformed JSON: invalid', plaintext: marked('{"kind":"text",'), decoded: { kind: 'invalid' } },
  { what: 'a reaction of two grapheme clusters: invalid', plaintext: marked(`{"emoji":"👍👍","kind":"reaction","target":"${MESSAGE_ID}","type":"${CONTENT_TYPE}"}`), decoded: { kind: 'invalid' } },
  { what: 'an edit whose target is not a message id: invalid', plaintext: marked(`{"kind":"edit","target":"x","text":"t","type":"${CONTENT_TYPE}"}`), decoded: { kind: 'invalid' } },
  { what: 'not UTF-8 after the marker: invalid', plaintext: toBase64Url(new Uint8Array([0xff, 0xc3, 0x28])), decoded: { kind: 'invalid' } },
];

/** The content of content.json, keyed by file name. */
export function buildContentVectors(): Record<string, unknown> {
  return {
    'content.json': {
      description:
        'Message content (docs/protocol.md, "Message content"): the envelope plaintext (before padding) is byte 0xFF followed by the canonical JSON of the content with "type": "bil.content.v1". encoding: content encodes to exactly plaintext (base64url). decoding: what a reader makes of a plaintext; never an error. check_time is unused here (kept for the common file shape).',
      check_time: CHECK_TIME,
      type: CONTENT_TYPE,
      encoding: encoding.map((v) => ({ what: v.what, content: v.content, plaintext: toBase64Url(encodeContent(v.content)) })),
      decoding,
    },
  };
}
