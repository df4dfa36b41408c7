import { describe, expect, it } from 'vitest';
import { MemoryKeyStore, type StoredProfile } from '@bil/sdk';
import { CliKeyStore, parseCliData } from './cli-store.js';

const USER = '11111111-1111-4111-8111-111111111111';
const BOB = '22222222-2222-4222-8222-222222222222';
const profile: StoredProfile = {
  version: 1,
  userId: USER,
  username: 'alice',
  deviceId: '33333333-3333-4333-8333-333333333333',
  deviceName: 'laptop',
  identityKey: 'aWRlbnRpdHk',
  identitySeed: null,
  deviceKeys: { version: 1, encryption_key_pkcs8: 'ZW5j', signing_key_seed: 'c2ln' } as StoredProfile['deviceKeys'],
  tokens: null,
  pins: { version: 1, pins: {} },
};

describe('the CLI data inside the encrypted profile', () => {
  it('survives the SDK rewriting the profile, and a reload', async () => {
    const inner = new MemoryKeyStore();
    const store = new CliKeyStore(inner);
    await store.save(profile);
    await store.rememberNames({ [BOB]: 'bob' });
    // The SDK saves its own copy of the profile (without our member): the names stay.
    await store.save({ ...profile, deviceName: 'renamed' });
    const again = new CliKeyStore(inner);
    const loaded = await again.load();
    expect(loaded?.deviceName).toBe('renamed');
    expect(again.data.names).toEqual({ [BOB]: 'bob' });
  });

  it('forgets them with the profile', async () => {
    const store = new CliKeyStore(new MemoryKeyStore());
    await store.save(profile);
    await store.rememberNames({ [BOB]: 'bob' });
    await store.clear();
    expect(store.data.names).toEqual({});
    expect(await store.load()).toBeNull();
  });

  it('reads only well-formed entries', () => {
    expect(parseCliData({ names: { [BOB]: 'bob', 'not-a-uuid': 'x', [USER]: 7 } })).toEqual({ names: { [BOB]: 'bob' }, pendingDigests: {} });
    expect(parseCliData(undefined)).toEqual({ names: {}, pendingDigests: {} });
    expect(parseCliData({ pendingDigests: { [USER]: { requestId: USER }, 'bad id!': {}, x: 'not an object' } }).pendingDigests).toEqual({ [USER]: { requestId: USER } });
  });

  it('keeps a timed-out digest in the encrypted profile until it is resumed', async () => {
    const inner = new MemoryKeyStore();
    const store = new CliKeyStore(inner);
    await store.save(profile);
    const pending = { requestId: USER, chats: [{ chatId: BOB, fromSeq: 3, toSeq: 40 }] };
    await store.savePendingDigest(USER, pending);
    await store.save({ ...profile, deviceName: 'renamed' });
    const again = new CliKeyStore(inner);
    await again.load();
    expect(again.data.pendingDigests).toEqual({ [USER]: pending });
    await again.removePendingDigest(USER);
    const third = new CliKeyStore(inner);
    await third.load();
    expect(third.data.pendingDigests).toEqual({});
    await expect(store.savePendingDigest('../x', {})).rejects.toThrow(/request id/);
  });
});
