// The message content format (docs/protocol.md "Message content"): what an
// envelope's plaintext holds. Byte 0xFF, then the canonical JSON of
// `{ "type": "bil.content.v1", "kind": ..., ... }`. Valid UTF-8 never holds
// 0xFF, so plaintext without the marker is an old client's plain text.
// Decoding never throws: an unknown type or kind is `unsupported`, anything
// malformed is `invalid`. Edits and reactions are authenticated by the
// envelope's signature; who may edit what is the reader's rule (the SDK's).
import { canonicalBytes, type CanonicalObject } from './canonical-json.js';
import { fromBase64Url, fromUtf8, isUuid, type Bytes } from './encoding.js';

export const CONTENT_TYPE = 'bil.content.v1';
/** First byte of an encoded content document. */
export const CONTENT_MARKER = 0xff;
/**
 * Largest encoded content (marker included), in bytes: padded to at most
 * 128 KiB, its ciphertext fits the chat service's envelope limit
 * (MAX_CIPHERTEXT_CHARS, 192 KiB of bytes).
 */
export const MAX_CONTENT_BYTES = 128 * 1024 - 1;
/** Longest quote in a reply, in characters (Unicode code points). */
export const MAX_QUOTE_LENGTH = 256;
/** Largest reaction emoji (one grapheme cluster), in UTF-8 bytes. */
export const MAX_EMOJI_BYTES = 32;
/** Largest attachment thumbnail, in bytes (before base64url). */
export const MAX_THUMBNAIL_BYTES = 32 * 1024;
/** Most attachments on one message. */
export const MAX_ATTACHMENTS = 32;
/** Longest attachment name, MIME type or blob id, in characters. */
export const MAX_ATTACHMENT_FIELD_LENGTH = 255;

/** A thumbnail the sender's client made (the server never sees the image). */
export interface AttachmentThumbnail {
  readonly mime: string;
  /** The image bytes, base64url (≤ MAX_THUMBNAIL_BYTES bytes). */
  readonly data: string;
  readonly width: number;
  readonly height: number;
}

/** What a member needs to fetch and open an encrypted blob (built by the attachment code). */
export interface AttachmentRef {
  readonly blob_id: string;
  /** The blob's content key, base64url of 32 bytes. */
  readonly key: string;
  /** SHA-256 over the blob's ciphertext, base64url. */
  readonly digest: string;
  /** Plaintext size in bytes. */
  readonly size: number;
  readonly chunk_size: number;
  readonly mime: string;
  readonly name: string;
  readonly thumbnail?: AttachmentThumbnail;
}

export interface ReplyTo {
  readonly message_id: string;
  /** A short excerpt of the message replied to (≤ MAX_QUOTE_LENGTH characters). */
  readonly quote?: string;
}

export interface TextContent {
  readonly kind: 'text';
  readonly text: string;
  readonly reply_to?: ReplyTo;
  readonly attachments?: readonly AttachmentRef[];
}

export interface ReactionContent {
  readonly kind: 'reaction';
  /** The message id reacted to. */
  readonly target: string;
  readonly emoji: string;
  /** Takes back this user's reaction with this emoji. */
  readonly remove?: true;
}

export interface EditContent {
  readonly kind: 'edit';
  /** The message id edited (the editor's own message: readers check). */
  readonly target: string;
  readonly text: string;
}

export type MessageContent = TextContent | ReactionContent | EditContent;
/** A content type or kind this client does not know (a newer client's). */
export interface UnsupportedContent {
  readonly kind: 'unsupported';
}
/** Marked as content but malformed (bad JSON, a field of the wrong shape, too large). */
export interface InvalidContent {
  readonly kind: 'invalid';
}
export type DecodedContent = MessageContent | UnsupportedContent | InvalidContent;

class Malformed extends Error {}

function bad(what: string): never {
  throw new Malformed(what);
}

function str(v: unknown, what: string, max?: number): string {
  if (typeof v !== 'string') bad(`${what}: expected a string`);
  if (max !== undefined && v.length > max) bad(`${what}: longer than ${max} characters`);
  return v;
}

function int(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) bad(`${what}: expected an integer ≥ ${min}`);
  return v;
}

function uuid(v: unknown, what: string): string {
  if (!isUuid(v)) bad(`${what}: expected a message id (lowercase UUID)`);
  return v;
}

function b64(v: unknown, what: string, length?: number, max?: number): string {
  const s = str(v, what);
  let bytes: Bytes;
  try {
    bytes = fromBase64Url(s);
  } catch {
    bad(`${what}: expected base64url`);
  }
  if (length !== undefined && bytes.length !== length) bad(`${what}: expected ${length} bytes`);
  if (max !== undefined && bytes.length > max) bad(`${what}: larger than ${max} bytes`);
  return s;
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${what}: expected an object`);
  return v as Record<string, unknown>;
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * True for exactly one grapheme cluster of at most MAX_EMOJI_BYTES UTF-8
 * bytes, not white space: what a reaction may carry.
 * @example
 * isReactionEmoji('👍🏽'); // true
 * isReactionEmoji('👍👍'); // false
 */
export function isReactionEmoji(v: unknown): v is string {
  if (typeof v !== 'string' || v.length === 0 || new TextEncoder().encode(v).length > MAX_EMOJI_BYTES) return false;
  let n = 0;
  for (const _ of segmenter.segment(v)) if (++n > 1) return false;
  return n === 1 && !/^\s$/u.test(v);
}

function thumbnail(v: unknown): AttachmentThumbnail {
  const t = obj(v, 'thumbnail');
  return {
    mime: str(t.mime, 'thumbnail.mime', MAX_ATTACHMENT_FIELD_LENGTH),
    data: b64(t.data, 'thumbnail.data', undefined, MAX_THUMBNAIL_BYTES),
    width: int(t.width, 'thumbnail.width', 1),
    height: int(t.height, 'thumbnail.height', 1),
  };
}

function attachment(v: unknown, i: number): AttachmentRef {
  const a = obj(v, `attachments[${i}]`);
  const blobId = str(a.blob_id, 'blob_id', MAX_ATTACHMENT_FIELD_LENGTH);
  if (blobId.length === 0) bad('blob_id: empty');
  return {
    blob_id: blobId,
    key: b64(a.key, 'key', 32),
    digest: b64(a.digest, 'digest', 32),
    size: int(a.size, 'size', 0),
    chunk_size: int(a.chunk_size, 'chunk_size', 1),
    mime: str(a.mime, 'mime', MAX_ATTACHMENT_FIELD_LENGTH),
    name: str(a.name, 'name', MAX_ATTACHMENT_FIELD_LENGTH),
    ...(a.thumbnail !== undefined ? { thumbnail: thumbnail(a.thumbnail) } : {}),
  };
}

/** Checks one known kind's fields and returns only them (unknown fields are dropped); throws Malformed. */
function known(c: Record<string, unknown>): MessageContent | undefined {
  switch (c.kind) {
    case 'text': {
      const text = str(c.text, 'text');
      let replyTo: ReplyTo | undefined;
      if (c.reply_to !== undefined) {
        const r = obj(c.reply_to, 'reply_to');
        const quote = r.quote === undefined ? undefined : str(r.quote, 'reply_to.quote');
        if (quote !== undefined && [...quote].length > MAX_QUOTE_LENGTH) bad(`reply_to.quote: longer than ${MAX_QUOTE_LENGTH} characters`);
        replyTo = { message_id: uuid(r.message_id, 'reply_to.message_id'), ...(quote !== undefined ? { quote } : {}) };
      }
      let attachments: AttachmentRef[] | undefined;
      if (c.attachments !== undefined) {
        if (!Array.isArray(c.attachments)) bad('attachments: expected an array');
        if (c.attachments.length > MAX_ATTACHMENTS) bad(`attachments: more than ${MAX_ATTACHMENTS}`);
        attachments = c.attachments.map(attachment);
      }
      if (text.length === 0 && !attachments?.length) bad('text: empty message');
      return { kind: 'text', text, ...(replyTo ? { reply_to: replyTo } : {}), ...(attachments ? { attachments } : {}) };
    }
    case 'reaction': {
      if (!isReactionEmoji(c.emoji)) bad(`emoji: expected one grapheme cluster of at most ${MAX_EMOJI_BYTES} bytes`);
      if (c.remove !== undefined && c.remove !== true) bad('remove: expected true or absent');
      return { kind: 'reaction', target: uuid(c.target, 'target'), emoji: c.emoji, ...(c.remove === true ? { remove: true as const } : {}) };
    }
    case 'edit': {
      const text = str(c.text, 'text');
      if (text.length === 0) bad('text: empty edit');
      return { kind: 'edit', target: uuid(c.target, 'target'), text };
    }
    default:
      return undefined;
  }
}

/**
 * Encodes content as envelope plaintext: 0xFF ‖ canonical JSON. Throws a
 * TypeError naming the field for content that breaks the format's rules, and
 * a RangeError past MAX_CONTENT_BYTES.
 * @example
 * const plaintext = encodeContent({ kind: 'text', text: 'hi', reply_to: { message_id: id } });
 */
export function encodeContent(content: MessageContent): Bytes {
  let checked: MessageContent | undefined;
  try {
    checked = known(obj(content, 'content') as Record<string, unknown>);
  } catch (err) {
    if (err instanceof Malformed) throw new TypeError(`content: ${err.message}`);
    throw err;
  }
  if (!checked) throw new TypeError('content: unknown kind');
  const json = canonicalBytes({ type: CONTENT_TYPE, ...checked } as unknown as CanonicalObject);
  if (json.length + 1 > MAX_CONTENT_BYTES) throw new RangeError(`content: larger than ${MAX_CONTENT_BYTES} bytes`);
  const out = new Uint8Array(json.length + 1);
  out[0] = CONTENT_MARKER;
  out.set(json, 1);
  return out;
}

/**
 * Decodes envelope plaintext; never throws. Plaintext without the 0xFF
 * marker is a legacy plain-text message (kind `text`); an unknown type or
 * kind is `unsupported`; malformed or oversized content is `invalid`.
 * @example
 * const c = decodeContent(opened.plaintext);
 * if (c.kind === 'text') show(c.text);
 */
export function decodeContent(plaintext: Uint8Array): DecodedContent {
  if (!(plaintext instanceof Uint8Array) || plaintext.length > MAX_CONTENT_BYTES) return { kind: 'invalid' };
  try {
    if (plaintext[0] !== CONTENT_MARKER) return { kind: 'text', text: fromUtf8(plaintext) };
    const c = obj(JSON.parse(fromUtf8(plaintext.subarray(1))), 'content');
    if (c.type !== CONTENT_TYPE) return { kind: 'unsupported' };
    return known(c) ?? { kind: 'unsupported' };
  } catch {
    return { kind: 'invalid' };
  }
}

