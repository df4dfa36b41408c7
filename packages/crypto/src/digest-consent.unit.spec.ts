import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalBytes } from './canonical-json.js';
import { parseDigestConsent, signDigestConsent, verifyDigestConsent, type SignedDigestConsent } from './digest-consent.js';
import { toBase64Url } from './encoding.js';
import { CannotDecryptError } from './errors.js';
import { ed25519Sign } from './signature.js';
import { keyPool, makeUser, type TestUser } from './testing/fixtures.js';

const CHAT = '0193f9a8-0000-7000-8000-00000000c0de';
let alice: TestUser;
let bob: TestUser;
beforeAll(async () => {
  const pool = await keyPool();
  alice = await makeUser(1, pool.slice(0, 1));
  bob = await makeUser(2, pool.slice(1, 2));
});

const sign = (include = false, version = 5) => signDigestConsent({ chatId: CHAT, device: alice.devices[0]!.local, include, version, createdAt: 1764100000000 });
const aliceKey = () => toBase64Url(alice.devices[0]!.local.keys.signing.publicKey);

describe('digest consent', () => {
  it('verifies under the signing device key and returns the payload', async () => {
    const p = await verifyDigestConsent({ consent: sign(), chatId: CHAT, userId: alice.userId, signingKey: aliceKey() });
    expect(p).toMatchObject({ type: 'bil.digest-consent.v1', chat_id: CHAT, user_id: alice.userId, include: false, version: 5 });
    expect(parseDigestConsent(sign(true)).include).toBe(true);
  });

  it('refuses another chat, another member, another key, and any edit', async () => {
    const c = sign();
    await expect(verifyDigestConsent({ consent: c, chatId: '0193f9a8-0000-7000-8000-00000000beef', signingKey: aliceKey() })).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(verifyDigestConsent({ consent: c, chatId: CHAT, userId: bob.userId, signingKey: aliceKey() })).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(verifyDigestConsent({ consent: c, chatId: CHAT, signingKey: bob.devices[0]!.local.keys.signing.publicKey })).rejects.toBeInstanceOf(CannotDecryptError);
    const flipped = { ...c, payload: { ...c.payload, include: true } };
    await expect(verifyDigestConsent({ consent: flipped, chatId: CHAT, signingKey: aliceKey() })).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses extra or missing fields even when re-signed', async () => {
    const extra = { ...sign().payload, note: 'x' };
    const resigned = { payload: extra, signature: toBase64Url(ed25519Sign(alice.devices[0]!.local.keys.signing.secretKey, canonicalBytes(extra as never))) } as unknown as SignedDigestConsent;
    expect(() => parseDigestConsent(resigned)).toThrow(CannotDecryptError);
    const { version: _v, ...missing } = sign().payload;
    expect(() => parseDigestConsent({ payload: missing, signature: sign().signature })).toThrow(CannotDecryptError);
    expect(() => parseDigestConsent(null)).toThrow(CannotDecryptError);
    expect(() => parseDigestConsent({ ...sign(), signature: 'AA' })).toThrow(CannotDecryptError);
  });

  it('refuses bad input when signing', () => {
    expect(() => signDigestConsent({ chatId: 'nope', device: alice.devices[0]!.local, include: false, version: 1, createdAt: 1 })).toThrow(TypeError);
    expect(() => signDigestConsent({ chatId: CHAT, device: alice.devices[0]!.local, include: false, version: -1, createdAt: 1 })).toThrow();
  });
});
