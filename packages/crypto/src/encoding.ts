/**
 * Byte encodings used on the wire: base64url without padding (RFC 4648 §5),
 * UTF-8, and the UUID form of ids. No Buffer, so it runs in browsers.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Character code of each 6-bit value. */
const ENCODE = new Uint8Array(64);
/** 6-bit value of each byte (character code); -1 for anything outside the alphabet. */
const DECODE = new Int16Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) {
  ENCODE[i] = ALPHABET.charCodeAt(i);
  DECODE[ALPHABET.charCodeAt(i)] = i;
}
// Two characters per 12 bits, packed in the platform's byte order so that one
// Uint16Array store writes them in text order.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const ENCODE_PAIR = new Uint16Array(4096);
for (let i = 0; i < 4096; i++) {
  const first = ENCODE[i >>> 6]!;
  const second = ENCODE[i & 63]!;
  ENCODE_PAIR[i] = LITTLE_ENDIAN ? first | (second << 8) : (first << 8) | second;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** For base64url text built as ASCII bytes (always valid UTF-8). */
const asciiDecoder = new TextDecoder('utf-8');

/** A Uint8Array whose buffer is a plain ArrayBuffer, as WebCrypto's `BufferSource` requires. */
export type Bytes = Uint8Array<ArrayBuffer>;

/**
 * Encodes bytes as base64url without padding (RFC 4648 §5, §3.2).
 * Envelopes carry ciphertexts of up to 64 MiB in this encoding, so it writes
 * ASCII into a byte buffer (two characters per table lookup) and turns that
 * into a string once, instead of concatenating strings.
 * @example
 * toBase64Url(new Uint8Array([0xfb, 0xff])); // '-_8'
 */
export function toBase64Url(bytes: Uint8Array): string {
  abytes(bytes);
  const n = bytes.length;
  const full = n - (n % 3);
  // One spare byte so the Uint16Array view below covers every full group.
  const out = new Uint8Array(Math.ceil((n * 4) / 3) + 1);
  const pairs = new Uint16Array(out.buffer, 0, out.length >>> 1);
  let p = 0;
  let i = 0;
  for (; i < full; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    pairs[p] = ENCODE_PAIR[v >>> 12]!;
    pairs[p + 1] = ENCODE_PAIR[v & 4095]!;
    p += 2;
  }
  let o = p * 2;
  if (n - full === 1) {
    const v = bytes[i]! << 16;
    out[o++] = ENCODE[v >>> 18]!;
    out[o++] = ENCODE[(v >>> 12) & 63]!;
  } else if (n - full === 2) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out[o++] = ENCODE[v >>> 18]!;
    out[o++] = ENCODE[(v >>> 12) & 63]!;
    out[o++] = ENCODE[(v >>> 6) & 63]!;
  }
  const text = asciiDecoder.decode(out.subarray(0, o));
  out.fill(0); // the encoding of a secret is as secret as the secret
  return text;
}

/**
 * Decodes strict base64url: no padding, no whitespace, no other alphabet, and
 * the unused low bits of the last character must be zero (RFC 4648 §3.5), so
 * every byte string has exactly one encoding and signed text can't be varied.
 * `length`, when given, is the exact number of bytes expected.
 * @example
 * fromBase64Url('-_8'); // Uint8Array [0xfb, 0xff]
 */
export function fromBase64Url(text: string, length?: number): Bytes {
  if (typeof text !== 'string') throw new TypeError('expected base64url string');
  const rem = text.length % 4;
  if (rem === 1) throw new TypeError('invalid base64url');
  // Valid text is ASCII, which UTF-8 encodes one byte per character; any other
  // character becomes bytes >= 0x80, which DECODE refuses.
  const src = encoder.encode(text);
  try {
    if (src.length !== text.length) throw new TypeError('invalid base64url');
    const full = src.length - rem;
    const out = new Uint8Array(Math.floor((src.length * 3) / 4));
    let bad = 0;
    let o = 0;
    let i = 0;
    for (; i < full; i += 4) {
      const a = DECODE[src[i]!]!;
      const b = DECODE[src[i + 1]!]!;
      const c = DECODE[src[i + 2]!]!;
      const d = DECODE[src[i + 3]!]!;
      bad |= a | b | c | d;
      const v = (a << 18) | (b << 12) | (c << 6) | d;
      out[o] = v >>> 16;
      out[o + 1] = v >>> 8;
      out[o + 2] = v;
      o += 3;
    }
    if (rem === 2) {
      const a = DECODE[src[i]!]!;
      const b = DECODE[src[i + 1]!]!;
      // RFC 4648 §3.5: the 4 bits past the last byte must be zero.
      bad |= a | b | -(b & 15);
      out[o++] = (a << 2) | (b >>> 4);
    } else if (rem === 3) {
      const a = DECODE[src[i]!]!;
      const b = DECODE[src[i + 1]!]!;
      const c = DECODE[src[i + 2]!]!;
      // The 2 bits past the last byte must be zero.
      bad |= a | b | c | -(c & 3);
      out[o++] = (a << 2) | (b >>> 4);
      out[o++] = ((b & 15) << 4) | (c >>> 2);
    }
    if (bad < 0) {
      out.fill(0);
      throw new TypeError('invalid base64url');
    }
    if (length !== undefined && o !== length) {
      out.fill(0);
      throw new TypeError('invalid length');
    }
    return out;
  } finally {
    src.fill(0);
  }
}


/**
 * UTF-8 encodes a string.
 * @example
 * utf8('hé'); // Uint8Array [0x68, 0xc3, 0xa9]
 */
export function utf8(text: string): Bytes {
  return encoder.encode(text);
}

/**
 * Decodes UTF-8, refusing malformed input.
 * @example
 * fromUtf8(opened.plaintext); // 'hello'
 */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/**
 * True for a lowercase hyphenated UUID (the only id form on the wire).
 * @example
 * isUuid('0193c2a0-0000-7000-8000-00000000a11c'); // true
 */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** Throws unless `value` is a lowercase hyphenated UUID. */
export function assertUuid(value: unknown, what: string): asserts value is string {
  if (!isUuid(value)) throw new TypeError(`${what}: expected lowercase UUID`);
}

/** Throws unless `value` is a Uint8Array, optionally of an exact length. */
export function abytes(value: unknown, length?: number, what = 'bytes'): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what}: expected Uint8Array`);
  if (length !== undefined && value.length !== length) throw new TypeError(`${what}: expected ${length} bytes`);
}

/** Throws unless `value` is a safe non-negative integer. */
export function assertUint(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${what}: expected non-negative safe integer`);
  }
}

/**
 * Compares two byte strings in time that depends only on their lengths.
 * @example
 * equalBytes(new Uint8Array([1]), new Uint8Array([1])); // true
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Compares two strings in time that depends only on their lengths. */
export function equalStrings(a: string, b: string): boolean {
  return equalBytes(utf8(a), utf8(b));
}

/** Concatenates byte strings. */
export function concatBytes(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Returns `bytes` typed for WebCrypto, copying only if it views a SharedArrayBuffer. */
export function asBytes(bytes: Uint8Array): Bytes {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Bytes) : new Uint8Array(bytes);
}

/** Overwrites secret bytes; JavaScript gives no stronger guarantee than this. */
export function wipe(...secrets: (Uint8Array | undefined)[]): void {
  for (const s of secrets) s?.fill(0);
}
