import { describe, expect, it } from 'vitest';
import { generateKeyPairSync, sign } from 'node:crypto';
import {
  certificatePayload,
  normalizePassword,
  validateEd25519Key,
  validateEncryptionKey,
  validateName,
  validateUsername,
  verifyCertificate,
} from './validation.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'no error';
};

const rsaSpki = (bits: number, publicExponent = 65537) =>
  generateKeyPairSync('rsa', { modulusLength: bits, publicExponent }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64url');
const edRaw = () => {
  const kp = generateKeyPairSync('ed25519');
  return { kp, raw: kp.publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url') };
};

describe('usernames', () => {
  it.each(['alice', 'Bob_99', 'a.b-c', '123'])('accepts %s', (u) => expect(validateUsername(u)).toBe(u));
  it.each(['ab', 'a'.repeat(33), '.alice', 'аlice' /* Cyrillic а */, 'ali\u0000ce', 'ali ce', 'alice\u200b', 'ａlice', 42, null])(
    'refuses %j',
    (u) => expect(code(() => validateUsername(u))).toBe('invalid_username'),
  );
});

describe('passwords and names', () => {
  it('enforces password length in characters after NFKC', () => {
    expect(code(() => normalizePassword('short'))).toBe('invalid_password');
    expect(code(() => normalizePassword('x'.repeat(257)))).toBe('invalid_password');
    expect(normalizePassword('ﬁﬁﬁﬁﬁcorrect')).toBe('fifififificorrect');
  });
  it('refuses control and invisible characters in names', () => {
    expect(code(() => validateName('pho\u0007ne', 'device_name', 1, 64))).toBe('invalid_name');
    expect(code(() => validateName('\u202eenohp', 'device_name', 1, 64))).toBe('invalid_name');
    expect(validateName('  My phone  ', 'device_name', 1, 64)).toBe('My phone');
  });

  it('refuses the invisible characters of issue 14 item 10 and keeps emoji whole', () => {
    for (const c of ['\u00ad', '\u180e', '\u3164', '\u115f', '\u1160', '\uffa0', '\u034f', '\u{e0041}', '\u{e007f}', '\u2800', '\u200b', '\u2066', '\ufffd', '\ud800']) {
      expect(code(() => validateName(`Ann${c}a`, 'display_name', 1, 64)), `U+${c.codePointAt(0)!.toString(16)}`).toBe('invalid_name');
    }
    expect(code(() => validateName('\u3164', 'display_name', 1, 64))).toBe('invalid_name');
    expect(code(() => validateName('a\u200db', 'display_name', 1, 64))).toBe('invalid_name');
    expect(code(() => validateName('\ufe0f', 'display_name', 1, 64))).toBe('invalid_name');
    for (const ok of ['Zoë 👩‍💻', '❤️ Ann', '👍🏽', '👨‍👩‍👧', 'Иван', '李小龍', 'محمد']) expect(validateName(ok, 'display_name', 1, 64)).toBe(ok);
  });
});

describe('device keys', () => {
  it('accepts RSA 3072 with e = 65537 and refuses small or odd keys', () => {
    expect(validateEncryptionKey(rsaSpki(3072))).toBeTruthy();
    expect(code(() => validateEncryptionKey(rsaSpki(2048)))).toBe('invalid_key');
    expect(code(() => validateEncryptionKey(rsaSpki(3072, 3)))).toBe('invalid_key');
    expect(code(() => validateEncryptionKey(edRaw().raw))).toBe('invalid_key');
    expect(code(() => validateEncryptionKey('not base64!'))).toBe('invalid_encoding');
  });
  it('accepts a valid Ed25519 key and refuses bad points', () => {
    expect(validateEd25519Key(edRaw().raw, 'signing_key')).toBeTruthy();
    expect(code(() => validateEd25519Key(Buffer.alloc(31).toString('base64url'), 'signing_key'))).toBe('invalid_key');
    // The identity point (small order) and a non-canonical y.
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    expect(code(() => validateEd25519Key(identity.toString('base64url'), 'signing_key'))).toBe('invalid_key');
    expect(code(() => validateEd25519Key(Buffer.alloc(32, 0xff).toString('base64url'), 'signing_key'))).toBe('invalid_key');
  });
  it('verifies a certificate and refuses any change to what it covers', () => {
    const id = edRaw();
    const f = { userId: '0193b2c4-0000-7000-8000-000000000001', identityKey: id.raw, encryptionKey: 'E', signingKey: 'S', issuedAt: 1764100000000 };
    const cert = sign(null, certificatePayload(f), id.kp.privateKey).toString('base64url');
    expect(verifyCertificate(f, cert)).toBe(cert);
    expect(code(() => verifyCertificate({ ...f, signingKey: 'T' }, cert))).toBe('invalid_certificate');
    expect(code(() => verifyCertificate({ ...f, userId: '0193b2c4-0000-7000-8000-000000000002' }, cert))).toBe('invalid_certificate');
    expect(code(() => verifyCertificate(f, cert.slice(0, -4)))).toBe('invalid_certificate');
  });
  it('signs the canonical JSON of docs/protocol.md', () => {
    const payload = certificatePayload({ userId: 'u', identityKey: 'i', encryptionKey: 'e', signingKey: 's', issuedAt: 5 }).toString();
    expect(payload).toBe('{"encryption_key":"e","identity_key":"i","issued_at":5,"signing_key":"s","type":"bil.device-certificate.v1","user_id":"u"}');
  });
});
