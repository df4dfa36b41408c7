import type { Bytes } from './encoding.js';
import { fail } from './errors.js';

/** Largest plaintext an envelope carries (before padding). */
export const MAX_PLAINTEXT_LENGTH = 64 * 1024 * 1024 - 1;

const MIN_BUCKET = 256;
const LARGE_STEP = 1024 * 1024;

/**
 * Size of the padded plaintext for `length` bytes of content: the smallest
 * power of two ≥ length + 1 from 256 B to 1 MiB, then the next multiple of 1 MiB.
 * The server sees only the bucket, not the length.
 * @example
 * paddedLength(0); // 256
 * paddedLength(300); // 512
 */
export function paddedLength(length: number): number {
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_PLAINTEXT_LENGTH) throw new RangeError('padding: bad length');
  const need = length + 1;
  if (need > LARGE_STEP) return Math.ceil(need / LARGE_STEP) * LARGE_STEP;
  let size = MIN_BUCKET;
  while (size < need) size *= 2;
  return size;
}

/**
 * Pads with one 0x80 byte then zeros (ISO/IEC 7816-4, as Signal does), which
 * is unambiguous for any content.
 * @example
 * pad(new Uint8Array([1])).length; // 256
 */
export function pad(plaintext: Uint8Array): Bytes {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('padding: expected bytes');
  const out = new Uint8Array(paddedLength(plaintext.length));
  out.set(plaintext);
  out[plaintext.length] = 0x80;
  return out;
}

/**
 * Removes {@link pad}'s padding. Runs only on authenticated plaintext, so its
 * branches are not a padding oracle; a malformed pad is still the uniform error.
 * @example
 * unpad(pad(new Uint8Array([1]))); // Uint8Array [1]
 */
export function unpad(padded: Uint8Array): Bytes {
  let i = padded.length - 1;
  while (i >= 0 && padded[i] === 0) i--;
  if (i < 0 || padded[i] !== 0x80) fail();
  if (paddedLength(i) !== padded.length) fail();
  return padded.slice(0, i);
}
