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

  it('opens messaging state written before step 8 (no hashes, forks, acked, peers) and checks the new members when present', () => {
    const chat = '0190a0b0-0000-7000-8000-000000000001';
    const before = { counters: { [chat]: 3 }, replay: { version: 1, chats: {} }, seen: { [chat]: {} }, heads: { [chat]: { epoch: 2, hash: 'AAAA' } } };
    expect(parseProfile({ ...profile, chats: before }).chats).toEqual(before);
    const now = { ...before, hashes: { [chat]: ['AAAA', 'BBBB'] }, forks: { [chat]: { epoch: 2, userId: '', source: 'chain', seenAt: 5 } }, acked: { [chat]: { counter: 3, seq: 9 } }, peers: { [chat]: chat } };
    expect(parseProfile({ ...profile, chats: now }).chats).toEqual(now);
    for (const bad of [{ hashes: { [chat]: 'AAAA' } }, { forks: { [chat]: { epoch: 'x' } } }, { acked: { [chat]: 3 } }, { peers: { [chat]: 'bob' } }]) {
      expect(() => parseProfile({ ...profile, chats: { ...before, ...bad } })).toThrow(KeyStoreFormatError);
    }
  });

  it('checks the content members (hidden, updates) when present', () => {
    const chat = '0190a0b0-0000-7000-8000-000000000001';
    const id = '0190a0b0-0000-7000-8000-000000000002';
    const before = { counters: {}, replay: { version: 1, chats: {} }, seen: {}, heads: {} };
    const reaction = { messageId: id, seq: 3, senderUserId: id, at: 5, target: chat, emoji: '👍' };
    const edit = { messageId: id, seq: 4, senderUserId: id, at: 6, target: chat, text: 'new' };
    const now = { ...before, hidden: { [chat]: [id] }, updates: { [chat]: [reaction, { ...reaction, remove: true }, edit] } };
    expect(parseProfile({ ...profile, chats: now }).chats).toEqual(now);
    for (const bad of [
      { hidden: { [chat]: ['x'] } },
      { updates: { [chat]: [{ ...reaction, text: 'both' }] } },
      { updates: { [chat]: [{ ...edit, text: undefined }] } },
      { updates: { [chat]: [{ ...reaction, remove: false }] } },
      { updates: { [chat]: [{ ...reaction, target: 'x' }] } },
      { updates: { [chat]: [{ ...reaction, seq: -1 }] } },
    ]) {
      expect(() => parseProfile({ ...profile, chats: { ...before, ...bad } })).toThrow(KeyStoreFormatError);
    }
  });
});
