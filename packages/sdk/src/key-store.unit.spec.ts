import { describe, expect, it } from 'vitest';
import { KeyStoreFormatError } from './errors.js';
import { MemoryKeyStore, parseProfile } from './key-store.js';
import { fakeProfile } from './testing/fake-gateway.js';

const profile = fakeProfile({ access: 'at', refresh: 'rt', accessExpiresAt: 2_000 }, 1_000);

describe('MemoryKeyStore', () => {
  it('keeps a copy, loads it back, and forgets it on clear', async () => {
    const store = new MemoryKeyStore();
    expect(await store.load()).toBeNull();
    const mutable = structuredClone(profile) as { username: string };
    await store.save(mutable as typeof profile);
    mutable.username = 'mallory';
    expect(await store.load()).toEqual(profile);
    await store.clear();
    expect(await store.load()).toBeNull();
  });
});

describe('parseProfile', () => {
  it('accepts a profile and refuses broken ones', () => {
    expect(parseProfile(profile)).toBe(profile);
    for (const broken of [
      null,
      { ...profile, version: 2 },
      { ...profile, userId: 'x' },
      { ...profile, identitySeed: 'not base64url!' },
      { ...profile, deviceKeys: { version: 1 } },
      { ...profile, tokens: { accessToken: 'a' } },
      { ...profile, pins: { version: 1, pins: { 'not-a-uuid': { identity_key: 'AA', verified: false } } } },
    ]) {
      expect(() => parseProfile(broken)).toThrow(KeyStoreFormatError);
    }
  });
});
