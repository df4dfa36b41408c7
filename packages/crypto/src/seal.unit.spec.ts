import { beforeAll, describe, expect, it } from 'vitest';
import { SUITES } from './aead.js';
import { fromUtf8, toBase64Url, utf8 } from './encoding.js';
import { CannotDecryptError } from './errors.js';
import type { DeviceKeyPair } from './keys.js';
import { openSealedPayload, sealKeyId, serviceKeyFingerprint, sealPayload, sealRecipientForDevice, signServiceKey, verifyServiceKey, type SealedBox, type SignedServiceKey } from './seal.js';
import { generateEd25519KeyPair } from './signature.js';
import { BACKENDS, useBackend } from './testing/backends.js';
import { flipBit, keyPool, makeUser, seed, uuid, type TestUser } from './testing/fixtures.js';

const serviceIdentity = generateEd25519KeyPair(seed('digest-identity'));
let service: DeviceKeyPair;
let published: SignedServiceKey;
let keyId: string;
let alice: TestUser;
const jobId = uuid(4242);
const now = 1764100000000;

beforeAll(async () => {
  const pool = await keyPool();
  service = pool[10]!;
  alice = await makeUser(1, pool.slice(0, 1));
  published = await signServiceKey({ identity: serviceIdentity, service: 'digest', encryptionKey: service.encryption.spki, issuedAt: now - 1000, expiresAt: now + 86400000 });
  keyId = await sealKeyId(service.encryption.spki);
});

const expectDigest = () => ({ identityKey: serviceIdentity.publicKey, service: 'digest', now });

async function sealRequest(text = 'transcript: alice: lunch at 1?', suite: (typeof SUITES)[number] = 'aes-256-gcm'): Promise<SealedBox> {
  const to = await verifyServiceKey(published, expectDigest());
  return sealPayload({ to, kind: 'digest-request', context: jobId, createdAt: now, plaintext: utf8(text), signer: alice.devices[0]!.local.keys.signing, suite });
}

const openRequest = (box: unknown, extra: Partial<{ kind: string; context: string; signerKey: string | Uint8Array }> = {}) =>
  openSealedPayload(box, { privateKey: service.encryption.privateKey, keyId, kind: 'digest-request', context: jobId, ...extra });

// Every test below runs on both crypto backends (portable WebCrypto/noble, and node:crypto).
describe.each(BACKENDS)('$name backend', ({ backend }) => {
  useBackend(backend);

  describe('sealing to a service key (digest)', () => {
    it.each(SUITES)('%s: a request sealed to the verified digest key opens in the worker', async (suite) => {
      const box = await sealRequest('hello digest', suite);
      const opened = await openRequest(JSON.parse(JSON.stringify(box)), { signerKey: alice.devices[0]!.record.signing_key });
      expect(fromUtf8(opened.plaintext)).toBe('hello digest');
      expect(JSON.stringify(box)).not.toContain('hello digest');
    });

    it('the result is sealed to the requesting device and signed by the service identity', async () => {
      const to = await sealRecipientForDevice(alice.devices[0]!.verified);
      const box = await sealPayload({ to, kind: 'digest-result', context: jobId, createdAt: now, plaintext: utf8('summary'), signer: serviceIdentity });
      const opened = await openSealedPayload(box, {
        privateKey: alice.devices[0]!.local.keys.encryption.privateKey,
        keyId: to.keyId,
        kind: 'digest-result',
        context: jobId,
        signerKey: serviceIdentity.publicKey,
      });
      expect(fromUtf8(opened.plaintext)).toBe('summary');
    });

    it('refuses a service key not signed by the pinned identity, for another service, expired, or altered', async () => {
      const other = generateEd25519KeyPair(seed('other'));
      await expect(verifyServiceKey(published, { ...expectDigest(), identityKey: other.publicKey })).rejects.toThrow(CannotDecryptError);
      await expect(verifyServiceKey(published, { ...expectDigest(), service: 'chat' })).rejects.toThrow(CannotDecryptError);
      await expect(verifyServiceKey(published, { ...expectDigest(), now: now + 86400001 })).rejects.toThrow(CannotDecryptError);
      const swapped = { ...published, payload: { ...published.payload, encryption_key: toBase64Url((await keyPool())[11]!.encryption.spki) } };
      await expect(verifyServiceKey(swapped, expectDigest())).rejects.toThrow(CannotDecryptError);
    });

    it('rejects tampering, wrong kind/context, wrong signer, and missing signature uniformly', async () => {
      const box = await sealRequest();
      const bad: unknown[] = [
        { ...box, ciphertext: flipBit(box.ciphertext, 10) },
        { ...box, wrapped_key: flipBit(box.wrapped_key, 10) },
        { ...box, signature: flipBit(box.signature, 10) },
        { ...box, header: { ...box.header, context: uuid(1) } },
        { ...box, header: { ...box.header, created_at: box.header.created_at + 1 } },
        { ...box, header: { ...box.header, nonce: flipBit(box.header.nonce, 0) } },
        { ...box, header: { ...box.header, commitment: flipBit(box.header.commitment, 0) } },
        { ...box, header: { ...box.header, signer_key: '' }, signature: '' },
        { ...box, extra: 1 },
        null,
      ];
      for (const b of bad) await expect(openRequest(b)).rejects.toThrow(CannotDecryptError);
      await expect(openRequest(box, { kind: 'digest-result' })).rejects.toThrow(CannotDecryptError);
      await expect(openRequest(box, { context: uuid(1) })).rejects.toThrow(CannotDecryptError);
      await expect(openRequest(box, { signerKey: serviceIdentity.publicKey })).rejects.toThrow(CannotDecryptError);
      const unsigned = await sealPayload({ to: await verifyServiceKey(published, expectDigest()), kind: 'digest-request', context: jobId, createdAt: now, plaintext: utf8('x') });
      expect(fromUtf8((await openRequest(unsigned)).plaintext)).toBe('x');
      await expect(openRequest(unsigned, { signerKey: alice.devices[0]!.record.signing_key })).rejects.toThrow(CannotDecryptError);
    });

    it('only verified recipients can be sealed to', async () => {
      await expect(sealPayload({ to: { keyId }, kind: 'k', context: '', createdAt: 0, plaintext: new Uint8Array() })).rejects.toThrow(TypeError);
    });
  });
});

describe('serviceKeyFingerprint', () => {
  it('is the first 16 bytes of SHA-256 of the key, hex in groups of 4', () => {
    // The development digest key (services/digest/src/config.ts); sha256 checked with `openssl dgst -sha256`.
    expect(serviceKeyFingerprint('b706pwa4mYfc-hYL3fn40eoly63i2bRvIocW8B2QpSU')).toBe('d30f 1ee9 6d8e ff43 a18b a584 c25c 4ef4');
    expect(() => serviceKeyFingerprint('short')).toThrow(TypeError);
  });
});
