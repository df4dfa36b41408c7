import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromBase64Url, toBase64Url } from './encoding.js';
import { CannotDecryptError } from './errors.js';
import {
  exportDevicePrivateKeys,
  exportDevicePublicKeys,
  generateDeviceKeys,
  importDevicePrivateKeys,
  importEncryptionPrivateKey,
  importEncryptionPublicKey,
  parseSigningKey,
} from './keys.js';
import { ed25519Sign, ed25519Verify } from './signature.js';
import { keyPool } from './testing/fixtures.js';

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (b) => parseInt(b, 16));

describe('device keys', () => {
  it('generates RSA-OAEP-3072 + Ed25519 and exports the protocol encodings', async () => {
    const keys = await generateDeviceKeys();
    const pub = exportDevicePublicKeys(keys);
    const spki = fromBase64Url(pub.encryption_key);
    // rsaEncryption OID 1.2.840.113549.1.1.1 in the SPKI AlgorithmIdentifier (RFC 3279 §2.3.1)
    expect(toBase64Url(spki).length).toBeGreaterThan(500);
    expect(Buffer.from(spki).includes(Buffer.from('2a864886f70d010101', 'hex'))).toBe(true);
    expect(fromBase64Url(pub.signing_key)).toHaveLength(32);
    const key = await importEncryptionPublicKey(pub.encryption_key);
    expect((key.algorithm as RsaHashedKeyAlgorithm).modulusLength).toBe(3072);
    expect(keys.encryption.privateKey.extractable).toBe(true);
  });

  it('private keys round-trip through the key-store format', async () => {
    const [keys] = await keyPool();
    const stored = await exportDevicePrivateKeys(keys!);
    const again = await importDevicePrivateKeys(stored, { extractable: false });
    expect(again.encryption.privateKey.extractable).toBe(false);
    expect(exportDevicePublicKeys(again)).toEqual(exportDevicePublicKeys(keys!));
    const msg = new Uint8Array([1, 2, 3]);
    expect(ed25519Verify(keys!.signing.publicKey, msg, ed25519Sign(again.signing.secretKey, msg))).toBe(true);
    const ct = await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, keys!.encryption.publicKey, msg);
    expect(new Uint8Array(await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, again.encryption.privateKey, ct))).toEqual(msg);
  });

  it('refuses a 2048-bit RSA key (small RSA key), with the uniform error', async () => {
    const small = await crypto.subtle.generateKey({ name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['encrypt', 'decrypt']);
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', small.publicKey));
    await expect(importEncryptionPublicKey(spki)).rejects.toThrow(CannotDecryptError);
    await expect(importEncryptionPrivateKey(new Uint8Array(await crypto.subtle.exportKey('pkcs8', small.privateKey)))).rejects.toThrow(CannotDecryptError);
    await expect(generateDeviceKeys({ modulusBits: 2048 as 3072 })).rejects.toThrow(RangeError);
  });

  it('accepts 4096-bit keys', async () => {
    const w = JSON.parse(readFileSync(new URL('../test/vectors/wycheproof/rsa_oaep_4096_sha256_mgf1sha256_test.json', import.meta.url), 'utf8')) as {
      testGroups: { privateKeyPkcs8: string }[];
    };
    const priv = await importEncryptionPrivateKey(hex(w.testGroups[0]!.privateKeyPkcs8));
    const jwk = await crypto.subtle.exportKey('jwk', priv);
    const pub = await crypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e }, { name: 'RSA-OAEP', hash: 'SHA-256' }, true, ['encrypt']);
    const key = await importEncryptionPublicKey(new Uint8Array(await crypto.subtle.exportKey('spki', pub)));
    expect((key.algorithm as RsaHashedKeyAlgorithm).modulusLength).toBe(4096);
  });

  it('refuses non-canonical DER, garbage, and a wrong exponent', async () => {
    const [keys] = await keyPool();
    const spki = keys!.encryption.spki;
    await expect(importEncryptionPublicKey(new Uint8Array([...spki, 0]))).rejects.toThrow(CannotDecryptError);
    await expect(importEncryptionPublicKey(spki.subarray(0, spki.length - 1))).rejects.toThrow(CannotDecryptError);
    await expect(importEncryptionPublicKey('not base64!')).rejects.toThrow(CannotDecryptError);
    const jwk = await crypto.subtle.exportKey('jwk', keys!.encryption.publicKey);
    const e3 = await crypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: 'Aw' }, { name: 'RSA-OAEP', hash: 'SHA-256' }, true, ['encrypt']);
    await expect(importEncryptionPublicKey(new Uint8Array(await crypto.subtle.exportKey('spki', e3)))).rejects.toThrow(CannotDecryptError);
  });

  it('refuses invalid Ed25519 public keys', () => {
    expect(() => parseSigningKey(new Uint8Array(31))).toThrow(CannotDecryptError);
    expect(() => parseSigningKey(new Uint8Array(32))).toThrow(CannotDecryptError); // small order (y = 0 → order 4)
    expect(() => parseSigningKey(new Uint8Array(32).fill(0xff))).toThrow(CannotDecryptError); // not canonical
  });
});
