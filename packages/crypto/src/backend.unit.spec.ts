// The crypto backends are interchangeable: the same inputs give the same
// bytes, what one seals the other opens (raw AEAD and whole envelopes, both
// suites), the library really routes through the installed backend, and the
// node backend fails exactly like the portable one (uniform error, no
// truncated tags).
import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { aeadDecrypt, aeadEncrypt, SUITES, type Suite } from './aead.js';
import { backend, portableBackend, setCryptoBackend, type CryptoBackend } from './backend.js';
import { decryptAttachment, encryptAttachment } from './attachment.js';
import { concatBytes, fromUtf8, toBase64Url, utf8, type Bytes } from './encoding.js';
import { decryptDirectMessage, encryptDirectMessage } from './direct.js';
import { CannotDecryptError } from './errors.js';
import { createGroup, unwrapEpochKey } from './group.js';
import { decryptGroupMessage, encryptGroupMessage } from './group-message.js';
import { hkdfSha256, hmacSha256, sha256 } from './kdf.js';
import { nodeCryptoBackend, useNodeCrypto } from './node.js';
import { openSealedPayload, sealPayload, sealRecipientForDevice } from './seal.js';
import { withBackend } from './testing/backends.js';
import { flipBit, keyPool, makeUser, uuid, type TestUser } from './testing/fixtures.js';

const portable = portableBackend;
const node = nodeCryptoBackend;
const PAIRS: [string, CryptoBackend, CryptoBackend][] = [
  ['portable → node', portable, node],
  ['node → portable', node, portable],
];
const rnd = (n: number): Bytes => crypto.getRandomValues(new Uint8Array(n));
const bytes = (n: number): Bytes => {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65536)));
  return out;
};

async function uniformFailure(p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CannotDecryptError);
  expect((err as Error).message).toBe('cannot decrypt');
  expect((err as Error).cause).toBeUndefined();
}

afterEach(() => {
  setCryptoBackend(portable);
});

describe('installing a backend', () => {
  it('portable is the default; useNodeCrypto installs node and returns the previous one', () => {
    expect(backend()).toBe(portable);
    expect(useNodeCrypto()).toBe(portable);
    expect(backend()).toBe(node);
    expect(setCryptoBackend(portable)).toBe(node);
  });

  it('refuses something that is not a backend', () => {
    for (const bad of [null, {}, { ...portable, aeadOpen: undefined }, { ...portable, name: 1 }]) {
      expect(() => setCryptoBackend(bad as unknown as CryptoBackend)).toThrow(TypeError);
    }
    expect(backend()).toBe(portable);
  });

  it('every per-message primitive of an envelope goes through the installed backend', async () => {
    const [a, b] = (await keyPool()).slice(0, 2);
    const alice = await makeUser(1, [a!]);
    const bob = await makeUser(2, [b!]);
    const calls: string[] = [];
    const counting = Object.fromEntries(
      Object.entries(node).map(([k, v]) => [k, typeof v === 'function' ? (...args: unknown[]) => (calls.push(k), (v as (...a: unknown[]) => unknown)(...args)) : v]),
    ) as unknown as CryptoBackend;
    const chatId = uuid(7);
    await withBackend(counting, async () => {
      const msg = await encryptDirectMessage({
        sender: alice.devices[0]!.local, chatId, messageId: uuid(8), counter: 1, timestamp: 1, plaintext: utf8('hi'), recipients: [bob.devices[0]!.verified], recipientUserId: bob.userId,
      });
      await decryptDirectMessage({ envelope: msg.envelope, wrappedKey: msg.wrapped_keys[0]!, recipient: bob.devices[0]!.local, chatId, sender: alice.devices[0]!.verified });
    });
    // Ed25519 too, when the backend has it (the node one does).
    expect(new Set(calls)).toEqual(new Set(['aeadSeal', 'aeadOpen', 'hkdfSha256', 'hmacSha256', 'sha256', 'ed25519Sign', 'ed25519Verify']));
  });
});

describe('same bytes on both backends', () => {
  const sizes = [0, 1, 15, 16, 17, 255, 1024, 65536 + 3];
  it.each(SUITES)('%s: aeadEncrypt is byte-identical and each opens the other', async (suite) => {
    for (const size of sizes) {
      const [key, nonce, aad, pt] = [rnd(32), rnd(12), rnd(size % 500), bytes(size)];
      const fromPortable = await withBackend(portable, () => aeadEncrypt(suite, key, nonce, pt, aad));
      const fromNode = await withBackend(node, () => aeadEncrypt(suite, key, nonce, pt, aad));
      expect(fromNode, `size ${size}`).toEqual(fromPortable);
      expect(await withBackend(node, () => aeadDecrypt(suite, key, nonce, fromPortable, aad))).toEqual(pt);
      expect(await withBackend(portable, () => aeadDecrypt(suite, key, nonce, fromNode, aad))).toEqual(pt);
    }
  });

  it('SHA-256, HMAC-SHA256 and HKDF-SHA256 agree (fast-check), including HKDF info past node:crypto\'s 1024-byte limit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.integer({ min: 1, max: 255 * 32 }), async (data, key, length) => {
        for (const f of [() => sha256(data), () => hmacSha256(key, data), () => hkdfSha256(key, data.subarray(0, 40), data, length)]) {
          expect(await withBackend(node, f)).toEqual(await withBackend(portable, f));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('an attachment encrypts to the same ciphertext and digest on both (node hashes incrementally, portable with @noble/hashes) and each decrypts the other', async () => {
    expect(portable.sha256Stream).toBeUndefined();
    const key = rnd(32);
    const noncePrefix = rnd(7);
    const plain = bytes(3 * 65536 + 77);
    const pieces = [plain.subarray(0, 1000), plain.subarray(1000, 140000), plain.subarray(140000)];
    const seal = async () => {
      const enc = encryptAttachment(pieces, { key, noncePrefix });
      const out: Uint8Array[] = [];
      for await (const c of enc) out.push(c);
      return { ct: concatBytes(...out), sealed: enc.sealed() };
    };
    const a = await withBackend(portable, seal);
    const b = await withBackend(node, seal);
    expect(b.ct).toEqual(a.ct);
    expect(b.sealed.digest).toEqual(a.sealed.digest);
    expect(b.sealed.digest).toEqual(await withBackend(node, () => sha256(a.ct)));
    const ref = { key: toBase64Url(key), digest: toBase64Url(a.sealed.digest), size: plain.length, chunk_size: a.sealed.chunkSize };
    for (const [opener, ct] of [[node, a.ct], [portable, b.ct]] as const) {
      const got: Uint8Array[] = [];
      await withBackend(opener, async () => {
        for await (const p of decryptAttachment(ref, [ct.subarray(0, 5000), ct.subarray(5000)])) got.push(p);
      });
      expect(concatBytes(...got)).toEqual(plain);
    }
  });

  it('node backend output owns its whole buffer (never a view into Buffer\'s shared pool)', async () => {
    for (const suite of SUITES) {
      for (const size of [0, 5, 300]) {
        const [key, nonce] = [rnd(32), rnd(12)];
        const ct = await withBackend(node, () => aeadEncrypt(suite, key, nonce, rnd(size), new Uint8Array()));
        const pt = await withBackend(node, () => aeadDecrypt(suite, key, nonce, ct, new Uint8Array()));
        const stream = node.sha256Stream!();
        stream.update(ct);
        for (const out of [ct, pt, await withBackend(node, () => sha256(ct)), await withBackend(node, () => hmacSha256(key, ct)), stream.digest()]) {
          expect(out.constructor).toBe(Uint8Array);
          expect([out.byteOffset, out.buffer.byteLength]).toEqual([0, out.length]);
        }
      }
    }
  });
});

describe('node backend failures are the uniform error', () => {
  it.each(SUITES)('%s: any changed bit of key, nonce, AD, ciphertext or tag', async (suite) => {
    const [key, nonce, aad, pt] = [rnd(32), rnd(12), rnd(40), rnd(100)];
    const ct = await withBackend(node, () => aeadEncrypt(suite, key, nonce, pt, aad));
    const flip = (b: Bytes, i: number): Bytes => {
      const c = new Uint8Array(b);
      c[i >> 3]! ^= 1 << (i & 7);
      return c;
    };
    await withBackend(node, async () => {
      await uniformFailure(aeadDecrypt(suite, flip(key, 0), nonce, ct, aad));
      await uniformFailure(aeadDecrypt(suite, key, flip(nonce, 95), ct, aad));
      await uniformFailure(aeadDecrypt(suite, key, nonce, ct, flip(aad, 7)));
      await uniformFailure(aeadDecrypt(suite, key, nonce, ct, new Uint8Array()));
      for (const bit of [0, 799, 800, 927]) await uniformFailure(aeadDecrypt(suite, key, nonce, flip(ct, bit), aad));
      for (const cut of [1, 4, 15, 16, ct.length]) await uniformFailure(aeadDecrypt(suite, key, nonce, ct.subarray(0, ct.length - cut), aad));
    });
  });

  it.each(SUITES)('%s: a genuinely valid but truncated (12- or 4-byte) tag is refused by both backends', async (suite) => {
    const [key, nonce, aad, pt] = [rnd(32), rnd(12), rnd(10), rnd(64)];
    for (const tagLength of [4, 12]) {
      if (suite === 'chacha20-poly1305' && tagLength === 4) continue; // OpenSSL's ChaCha20-Poly1305 takes 1..16, checked with 12
      const c = createCipheriv(suite as 'aes-256-gcm', key, nonce, { authTagLength: tagLength });
      c.setAAD(aad);
      const short = new Uint8Array(Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]));
      // Its tag is a prefix of the full one: only the length makes it invalid.
      expect(short.length).toBe(pt.length + tagLength);
      for (const b of [portable, node]) await withBackend(b, () => uniformFailure(aeadDecrypt(suite, key, nonce, short, aad)));
      await expect(Promise.resolve().then(() => node.aeadOpen(suite, key, nonce, short, aad))).rejects.toThrow();
    }
  });
});

describe('envelopes cross backends (sealed with one, opened with the other)', () => {
  let alice: TestUser;
  let bob: TestUser;
  const chatId = uuid(910);
  let n = 0;
  beforeAll(async () => {
    const pool = await keyPool();
    alice = await makeUser(1, pool.slice(0, 1));
    bob = await makeUser(2, pool.slice(1, 2));
  });

  for (const [label, from, to] of PAIRS) {
    it.each(SUITES)(`${label}, %s: direct, group and sealed payload; a flipped ciphertext bit fails on the opener`, async (suite: Suite) => {
      const text = `cross ${label} ${suite} ${'x'.repeat(700)}`;
      const sender = alice.devices[0]!;
      const recipient = bob.devices[0]!;
      const msg = await withBackend(from, () =>
        encryptDirectMessage({ sender: sender.local, chatId, messageId: uuid(9000 + ++n), counter: n, timestamp: 1, plaintext: utf8(text), recipients: [recipient.verified], recipientUserId: bob.userId, suite }),
      );
      const openDirect = (envelope: unknown) =>
        decryptDirectMessage({ envelope, wrappedKey: msg.wrapped_keys[0]!, recipient: recipient.local, chatId, sender: sender.verified });
      await withBackend(to, async () => {
        expect(fromUtf8((await openDirect(msg.envelope)).plaintext)).toBe(text);
        await uniformFailure(openDirect({ ...msg.envelope, ciphertext: flipBit(msg.envelope.ciphertext, 100) }));
      });

      const g = await withBackend(from, () =>
        createGroup({ chatId: uuid(920 + n), admin: sender.local, createdAt: 1, members: [{ role: 'admin', devices: [sender.verified] }, { role: 'member', devices: [recipient.verified] }] }),
      );
      const env = await withBackend(from, () =>
        encryptGroupMessage({ sender: sender.local, chain: g.chain, epochKey: g.epochKey, messageId: uuid(9500 + n), counter: 1, timestamp: 1, plaintext: utf8(text), suite }),
      );
      await withBackend(to, async () => {
        const wrappedKey = g.wrappedKeys.find((w) => w.device_id === recipient.local.deviceId)!;
        const k = await unwrapEpochKey({ chain: g.chain, epoch: 1, wrappedKey, recipient: recipient.local });
        expect(fromUtf8((await decryptGroupMessage({ envelope: env, chain: g.chain, epochKeys: [k] })).plaintext)).toBe(text);
        await uniformFailure(decryptGroupMessage({ envelope: { ...env, ciphertext: flipBit(env.ciphertext, 9) }, chain: g.chain, epochKeys: [k] }));
      });

      const box = await withBackend(from, async () =>
        sealPayload({ to: await sealRecipientForDevice(recipient.verified), kind: 'k', context: 'c', createdAt: 1, plaintext: utf8(text), suite }),
      );
      const expected = { privateKey: recipient.local.keys.encryption.privateKey, keyId: box.header.key_id, kind: 'k', context: 'c' };
      await withBackend(to, async () => {
        expect(fromUtf8((await openSealedPayload(box, expected)).plaintext)).toBe(text);
        await uniformFailure(openSealedPayload({ ...box, ciphertext: flipBit(box.ciphertext, 3) }, expected));
      });
    });
  }
});
