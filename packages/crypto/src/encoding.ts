/**
 * Byte encodings used on the wire: base64url without padding (RFC 4648 §5),
 * UTF-8, and the UUID form of ids. No Buffer, so it runs in browsers.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A Uint8Array whose buffer is a plain ArrayBuffer, as WebCrypto's `BufferSource` requires. */
export type Bytes = Uint8Array<ArrayBuffer>;

/**
 * Encodes bytes as base64url without padding (RFC 4648 §5, §3.2).
 * @example
 * toBase64Url(new Uint8Array([0xfb, 0xff])); // '-_8'
 */
export function toBase64Url(bytes: Uint8Array): string {
  abytes(bytes);
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]!;
  }
  return out;
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
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? DECODE[c]! : -1;
    if (v < 0) throw new TypeError('invalid base64url');
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new TypeError('invalid base64url');
  if (length !== undefined && o !== length) throw new TypeError('invalid length');
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

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
