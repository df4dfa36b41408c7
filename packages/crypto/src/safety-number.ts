import { abytes, assertUuid, asBytes, concatBytes, equalStrings, fromBase64Url, utf8 } from './encoding.js';

/** Fingerprint format version, hashed in so a future format can't collide. */
const FINGERPRINT_VERSION = new Uint8Array([0, 1]);
/**
 * SHA-512 iterations, as Signal's NumericFingerprintGenerator uses: it makes
 * searching for a second identity key with the same 30 digits ~2^12 times
 * costlier per guess.
 */
const ITERATIONS = 5200;

function identityBytes(key: string | Uint8Array): Uint8Array {
  const bytes = typeof key === 'string' ? fromBase64Url(key, 32) : key;
  abytes(bytes, 32, 'identityKey');
  return bytes;
}

/**
 * A user's 30-digit fingerprint: SHA-512 iterated over version ‖ identity key ‖
 * user id, then 6 chunks of 5 bytes (big-endian) each reduced mod 100000.
 * @example
 * await fingerprint({ userId, identityKey }); // '123450987...' (30 digits)
 */
export async function fingerprint(user: { userId: string; identityKey: string | Uint8Array }): Promise<string> {
  assertUuid(user.userId, 'userId');
  const key = asBytes(identityBytes(user.identityKey));
  let digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-512', concatBytes(FINGERPRINT_VERSION, key, utf8(user.userId))));
  for (let i = 0; i < ITERATIONS; i++) {
    digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-512', concatBytes(digest, key)));
  }
  let out = '';
  for (let c = 0; c < 6; c++) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + digest[c * 5 + j]!;
    out += String(n % 100000).padStart(5, '0');
  }
  return out;
}

/**
 * The 60-digit safety number of two users: both fingerprints, the smaller
 * first, so both sides compute the same digits whatever the argument order.
 * Two people compare it out of band; it changes when either identity key does.
 * @example
 * const sn = await safetyNumber(me, contact);
 * formatSafetyNumber(sn); // '12345 67890 ...'
 */
export async function safetyNumber(
  a: { userId: string; identityKey: string | Uint8Array },
  b: { userId: string; identityKey: string | Uint8Array },
): Promise<string> {
  const [fa, fb] = await Promise.all([fingerprint(a), fingerprint(b)]);
  return fa < fb ? fa + fb : fb + fa;
}

/**
 * Groups a safety number in blocks of five digits for display.
 * @example
 * formatSafetyNumber(sn); // '12345 67890 … 24680' (12 groups)
 */
export function formatSafetyNumber(digits: string): string {
  if (!/^\d{60}$/.test(digits)) throw new TypeError('safety number: expected 60 digits');
  return digits.match(/\d{5}/g)!.join(' ');
}

/**
 * Compares a safety number with one typed or scanned in, ignoring spaces,
 * in constant time.
 * @example
 * safetyNumbersMatch(scanned, await safetyNumber(me, contact)); // true if equal
 */
export function safetyNumbersMatch(a: string, b: string): boolean {
  const x = a.replace(/\s+/g, '');
  const y = b.replace(/\s+/g, '');
  return /^\d{60}$/.test(x) && /^\d{60}$/.test(y) && equalStrings(x, y);
}
