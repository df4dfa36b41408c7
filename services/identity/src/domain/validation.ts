// Input rules of the identity context. Pure functions: each returns the
// normalised value or throws an AppError naming the field and the reason.
import { PASSWORD_MAX, PASSWORD_MIN } from '@bil/proto/limits';
import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { deviceCertificatePayload } from '@bil/crypto';
import { invalidArgument } from '@bil/runtime/domain';

/**
 * Usernames are ASCII letters, digits, '_', '.', '-', 3 to 32 characters,
 * starting with a letter or digit. ASCII only on purpose: no homoglyphs
 * (Cyrillic 'а' for Latin 'a'), no invisible or control characters. Unique
 * without regard to case; the registered case is kept for display.
 */
export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$/;

export function validateUsername(raw: unknown): string {
  if (typeof raw !== 'string' || !USERNAME_PATTERN.test(raw)) {
    throw invalidArgument(
      'invalid_username',
      'username must be 3 to 32 characters: ASCII letters, digits, ".", "_" or "-", starting with a letter or digit',
      { field: 'username' },
    );
  }
  return raw;
}

/** The case-insensitive key that makes usernames unique. */
export function usernameKey(username: string): string {
  return username.toLowerCase();
}

export { PASSWORD_MAX, PASSWORD_MIN } from '@bil/proto/limits';

/**
 * Passwords are any Unicode text of 10 to 256 characters (code points) after
 * NFKC normalisation, so the same password typed on two keyboards hashes the
 * same (NIST SP 800-63B §5.1.1.2).
 */
export function normalizePassword(raw: unknown, field = 'password'): string {
  if (typeof raw !== 'string') throw invalidArgument('invalid_password', `${field} must be a string`, { field });
  const pw = raw.normalize('NFKC');
  const length = [...pw].length;
  if (length < PASSWORD_MIN || length > PASSWORD_MAX) {
    throw invalidArgument('invalid_password', `${field} must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`, { field });
  }
  return pw;
}

// Characters a name may not contain: controls, format characters (bidi
// overrides, zero-width spaces, soft hyphen, Mongolian vowel separator, tag
// characters …), every default-ignorable code point (Hangul fillers, combining
// grapheme joiner …), line/paragraph separators, surrogates, the blank Braille
// pattern and U+FFFD (what a lone surrogate becomes on the way here).
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u2800\ufffd]/u;
const PICTOGRAPH = /\p{Extended_Pictographic}/u;
// Emoji modifiers (skin tones) and variation selectors that may sit between a pictograph and a ZWJ.
// eslint-disable-next-line no-misleading-character-class -- ranges of modifiers and selectors, not a combined character
const EMOJI_TAIL = /[\u{1f3fb}-\u{1f3ff}\ufe0e\ufe0f]/u;
const VARIATION_SELECTOR = /[\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/u;

/**
 * The first invisible code point of `name`, or null. Two allowances keep
 * emoji whole: a zero-width joiner between two pictographs (👩‍💻), and a
 * variation selector right after a visible character (❤️).
 */
export function invisibleCharacter(name: string): string | null {
  const cps = [...name];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (!INVISIBLE.test(c)) continue;
    if (c === '\u200d') {
      let j = i - 1;
      while (j >= 0 && EMOJI_TAIL.test(cps[j]!)) j--;
      if (j >= 0 && PICTOGRAPH.test(cps[j]!) && i + 1 < cps.length && PICTOGRAPH.test(cps[i + 1]!)) continue;
    } else if (VARIATION_SELECTOR.test(c) && i > 0 && !INVISIBLE.test(cps[i - 1]!)) {
      continue;
    }
    return c;
  }
  return null;
}

/** Display and device names: trimmed, no control or invisible characters (see docs/identity.md). */
export function validateName(raw: unknown, field: string, min: number, max: number): string {
  if (typeof raw !== 'string') throw invalidArgument('invalid_name', `${field} must be a string`, { field });
  const name = raw.normalize('NFC').trim();
  const length = [...name].length;
  const invisible = invisibleCharacter(name);
  if (length < min || length > max || invisible !== null) {
    const details: Record<string, unknown> = { field };
    if (invisible !== null) details.code_point = `U+${invisible.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    throw invalidArgument('invalid_name', `${field} must be ${min} to ${max} characters without control or invisible characters`, details);
  }
  return name;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export function decodeBase64url(raw: unknown, field: string, maxChars: number): Buffer {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > maxChars || !B64URL.test(raw) || raw.length % 4 === 1) {
    throw invalidArgument('invalid_encoding', `${field} must be base64url without padding`, { field });
  }
  return Buffer.from(raw, 'base64url');
}

export const RSA_MIN_BITS = 3072;
export const RSA_MAX_BITS = 4096;

/** RSA-OAEP encryption key: DER SPKI of rsaEncryption, 3072 to 4096 bits, e = 65537. */
export function validateEncryptionKey(raw: unknown): string {
  const der = decodeBase64url(raw, 'encryption_key', 1200);
  const bad = (reason: string) => invalidArgument('invalid_key', `encryption_key: ${reason}`, { field: 'encryption_key', reason });
  let details: { modulusLength?: number; publicExponent?: bigint } | undefined;
  let type: string | undefined;
  try {
    const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    type = key.asymmetricKeyType;
    details = key.asymmetricKeyDetails;
  } catch {
    throw bad('not a DER SubjectPublicKeyInfo');
  }
  if (type !== 'rsa') throw bad('not an rsaEncryption public key');
  if ((details?.modulusLength ?? 0) < RSA_MIN_BITS) throw bad(`modulus shorter than ${RSA_MIN_BITS} bits`);
  if ((details?.modulusLength ?? 0) > RSA_MAX_BITS) throw bad(`modulus longer than ${RSA_MAX_BITS} bits`);
  if (details?.publicExponent !== 65537n) throw bad('public exponent is not 65537');
  return raw as string;
}

/** Ed25519 public key: 32 bytes, a valid point that is not of small order. */
export function validateEd25519Key(raw: unknown, field: string): string {
  const bytes = decodeBase64url(raw, field, 43);
  const bad = (reason: string) => invalidArgument('invalid_key', `${field}: ${reason}`, { field, reason });
  if (bytes.length !== 32) throw bad('must be 32 bytes');
  let point;
  try {
    point = ed25519.Point.fromBytes(bytes);
  } catch {
    throw bad('not a valid Ed25519 point');
  }
  if (point.isSmallOrder()) throw bad('a small-order point');
  return raw as string;
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface CertificateFields {
  userId: string;
  identityKey: string;
  encryptionKey: string;
  signingKey: string;
  issuedAt: number;
}

/**
 * The exact bytes a device certificate signs (docs/protocol.md): the
 * clients' own definition (`@bil/crypto` deviceCertificatePayload, canonical
 * JSON of the fields in signed-fields.ts). Fields it can't encode (a lone
 * surrogate, an issued_at that is not a safe integer) no client can have
 * signed: `invalid_certificate`.
 */
export function certificatePayload(f: CertificateFields): Buffer {
  try {
    const bytes = deviceCertificatePayload({
      user_id: f.userId,
      identity_key: f.identityKey,
      encryption_key: f.encryptionKey,
      signing_key: f.signingKey,
      issued_at: f.issuedAt,
    });
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (err) {
    const reason = err instanceof TypeError ? err.message.replace(/^canonical json: /, '') : 'not canonical';
    throw invalidArgument('invalid_certificate', `the certificate's fields have no canonical JSON (${reason}): no client can have signed them`, {
      field: 'certificate',
      reason,
    });
  }
}

/** Checks a device certificate's Ed25519 signature under the identity key. */
export function verifyCertificate(f: CertificateFields, certificate: unknown): string {
  const sig = decodeBase64url(certificate, 'certificate', 86);
  const bad = () =>
    invalidArgument('invalid_certificate', 'certificate does not verify under the account identity key', { field: 'certificate' });
  if (sig.length !== 64) throw bad();
  const key = createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(f.identityKey, 'base64url')]),
    format: 'der',
    type: 'spki',
  });
  if (!verifySignature(null, certificatePayload(f), key, sig)) throw bad();
  return certificate as string;
}

const DAY_MS = 24 * 3600 * 1000;

/** issued_at: an integer time in ms, not in the future by more than a day. */
export function validateIssuedAt(raw: unknown, now: number): number {
  const n = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0 || n > now + DAY_MS) {
    throw invalidArgument('invalid_certificate', 'certificate_issued_at must be a time in milliseconds, not in the future', {
      field: 'certificate_issued_at',
    });
  }
  return n;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function validateUuid(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || !UUID.test(raw.toLowerCase())) {
    throw invalidArgument('invalid_id', `${field} must be a UUID`, { field });
  }
  return raw.toLowerCase();
}
