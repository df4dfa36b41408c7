// Group metadata's `digests: 'off'` (step 9): signed in the epoch record by an
// admin, absent when digests are allowed so that records and vectors written
// before keep their exact bytes.
import { beforeAll, describe, expect, it } from 'vitest';
import { aeadDecrypt, aeadEncrypt } from './aead.js';
import { canonicalBytes, canonicalize } from './canonical-json.js';
import { concatBytes, fromBase64Url, fromUtf8, toBase64Url, utf8 } from './encoding.js';
import { createGroup, openGroupMetadata, rotateEpoch, unwrapEpochKey, type EpochUpdate, type GroupMemberInput } from './group.js';
import { openSealedMetadata, sealGroupMetadata } from './group-metadata.js';
import { hkdfSha256 } from './kdf.js';
import { pad, unpad } from './padding.js';
import { systemEntropy } from './random.js';
import { keyPool, makeUser, uuid, type TestUser } from './testing/fixtures.js';

const chatId = uuid(910);
const T0 = 1_764_100_000_000;
const epochKey = new Uint8Array(32).fill(7);

const metadataKey = (epoch: number) =>
  hkdfSha256(epochKey, new Uint8Array(), canonicalBytes({ purpose: 'bil.group-metadata-key.v1', chat_id: chatId, epoch }), 32);
const ad = (epoch: number) => canonicalBytes({ purpose: 'bil.group-metadata.v1', chat_id: chatId, epoch });

/** The plaintext a sealed metadata carries, as the protocol describes it (not through the module under test). */
async function plaintextOf(sealed: string, epoch: number): Promise<string> {
  const bytes = fromBase64Url(sealed);
  const padded = await aeadDecrypt('aes-256-gcm', await metadataKey(epoch), bytes.subarray(0, 12), bytes.subarray(12), ad(epoch));
  return fromUtf8(unpad(padded));
}

/** Seals any object, as a later (or hostile) writer could. */
async function sealRaw(value: unknown, epoch: number): Promise<string> {
  const nonce = systemEntropy.randomBytes(12);
  const ct = await aeadEncrypt('aes-256-gcm', await metadataKey(epoch), nonce, pad(utf8(canonicalize(value as never))), ad(epoch));
  return toBase64Url(concatBytes(nonce, ct));
}

describe('group metadata: digests', () => {
  it('absent (allowed) seals exactly {"title"}, as version 2 always wrote', async () => {
    const sealed = await sealGroupMetadata(epochKey, chatId, 3, { title: 'Trip' }, systemEntropy);
    expect(await plaintextOf(sealed, 3)).toBe('{"title":"Trip"}');
    expect(await openSealedMetadata(epochKey, chatId, 3, sealed)).toStrictEqual({ title: 'Trip' });
    // An explicit undefined is the same as absent.
    const same = await sealGroupMetadata(epochKey, chatId, 3, { title: 'Trip', digests: undefined }, systemEntropy);
    expect(await plaintextOf(same, 3)).toBe('{"title":"Trip"}');
  });

  it("'off' is sealed in canonical form and read back", async () => {
    const sealed = await sealGroupMetadata(epochKey, chatId, 4, { title: 'Trip', digests: 'off' }, systemEntropy);
    expect(await plaintextOf(sealed, 4)).toBe('{"digests":"off","title":"Trip"}');
    expect(await openSealedMetadata(epochKey, chatId, 4, sealed)).toStrictEqual({ title: 'Trip', digests: 'off' });
  });

  it('writing refuses any other value or member', async () => {
    await expect(sealGroupMetadata(epochKey, chatId, 1, { title: 't', digests: 'on' } as never, systemEntropy)).rejects.toThrow(TypeError);
    await expect(sealGroupMetadata(epochKey, chatId, 1, { title: 't', colour: 'red' } as never, systemEntropy)).rejects.toThrow(TypeError);
  });

  it('reading: an unknown value of digests is off (never less private); unknown members are ignored', async () => {
    expect(await openSealedMetadata(epochKey, chatId, 5, await sealRaw({ title: 't', digests: 'device-only' }, 5))).toStrictEqual({ title: 't', digests: 'off' });
    expect(await openSealedMetadata(epochKey, chatId, 5, await sealRaw({ title: 't', digests: false }, 5))).toStrictEqual({ title: 't', digests: 'off' });
    expect(await openSealedMetadata(epochKey, chatId, 5, await sealRaw({ title: 't', colour: 'red' }, 5))).toStrictEqual({ title: 't' });
  });
});

describe('group metadata: disappearing_ms', () => {
  it('absent (off) keeps the version 2 bytes; on is sealed in canonical form and read back', async () => {
    const off = await sealGroupMetadata(epochKey, chatId, 6, { title: 'Trip', disappearing_ms: undefined }, systemEntropy);
    expect(await plaintextOf(off, 6)).toBe('{"title":"Trip"}');
    const on = await sealGroupMetadata(epochKey, chatId, 6, { title: 'Trip', digests: 'off', disappearing_ms: 86_400_000 }, systemEntropy);
    expect(await plaintextOf(on, 6)).toBe('{"digests":"off","disappearing_ms":86400000,"title":"Trip"}');
    expect(await openSealedMetadata(epochKey, chatId, 6, on)).toStrictEqual({ title: 'Trip', digests: 'off', disappearing_ms: 86_400_000 });
  });

  it('writing refuses 0 (off is absence) and values out of range', async () => {
    for (const ms of [0, 29_999, 365 * 86_400_000 + 1, 1.5]) {
      await expect(sealGroupMetadata(epochKey, chatId, 1, { title: 't', disappearing_ms: ms }, systemEntropy)).rejects.toThrow(RangeError);
    }
  });

  it('reading: a timer that is not a valid one fails the metadata (never read as off)', async () => {
    for (const ms of [0, 5, '86400000', -30_000]) {
      await expect(openSealedMetadata(epochKey, chatId, 7, await sealRaw({ title: 't', disappearing_ms: ms }, 7))).rejects.toThrow();
    }
  });
});

describe('group metadata in epoch records', () => {
  let admin: TestUser;
  let bob: TestUser;
  beforeAll(async () => {
    const pool = await keyPool();
    admin = await makeUser(40, pool.slice(0, 1));
    bob = await makeUser(41, pool.slice(1, 2));
  });
  const member = (u: TestUser, role: 'admin' | 'member' = 'member'): GroupMemberInput => ({ role, devices: u.devices.map((d) => d.verified) });
  const bobKey = (u: EpochUpdate) =>
    unwrapEpochKey({ chain: u.chain, epoch: u.record.payload.epoch, wrappedKey: u.wrappedKeys.find((w) => w.device_id === bob.devices[0]!.local.deviceId)!, recipient: bob.devices[0]!.local });

  it('an admin switches digests off and on again with the next epochs; members read it', async () => {
    const g = await createGroup({ chatId, admin: admin.devices[0]!.local, createdAt: T0, members: [member(admin, 'admin'), member(bob)], metadata: { title: 'Launch' } });
    expect(await openGroupMetadata({ chain: g.chain, epochKey: await bobKey(g) })).toStrictEqual({ title: 'Launch' });
    const off = await rotateEpoch({ chain: g.chain, signer: admin.devices[0]!.local, createdAt: T0 + 1, members: [member(admin, 'admin'), member(bob)], metadata: { title: 'Launch', digests: 'off' } });
    expect(JSON.stringify(off.record)).not.toContain('digests');
    expect(await openGroupMetadata({ chain: off.chain, epochKey: await bobKey(off) })).toStrictEqual({ title: 'Launch', digests: 'off' });
    const on = await rotateEpoch({ chain: off.chain, signer: admin.devices[0]!.local, createdAt: T0 + 2, members: [member(admin, 'admin'), member(bob)], metadata: { title: 'Launch' } });
    expect(await openGroupMetadata({ chain: on.chain, epochKey: await bobKey(on) })).toStrictEqual({ title: 'Launch' });
  });
});
