// The browser-safe sealed key store: FileKeyStore's format on any text
// storage. Files written by one open with the other (same format, same
// crypto), nothing secret in the text, a wrong passphrase or an edit is a
// typed error.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyStoreFormatError, WrongPassphraseError } from './errors.js';
import { FileKeyStore } from './file-key-store.js';
import { KEY_STORE_FORMAT } from './key-store-format.js';
import { MemorySealedStorage, SealedJsonStore, SealedKeyStore } from './sealed-key-store.js';
import { fakeProfile } from './testing/fake-gateway.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const profile = {
  ...fakeProfile({ access: 'eyJhbGciOiJFZERTQSJ9.access-secret', refresh: 'bil_rt.session.1.refresh-secret', accessExpiresAt: 2_000 }, 1_000),
  identitySeed: 'c2VlZC1zZWNyZXQtaWRlbnRpdHkta2V5LTMyLWJ5dGVz',
  deviceKeys: { version: 1 as const, encryption_key_pkcs8: 'cGtjczgtcHJpdmF0ZS1rZXktbWF0ZXJpYWw', signing_key_seed: 'c2lnbmluZy1zZWVkLXNlY3JldC0zMi1ieXRlcy14eA' },
};
const PASS = 'correct horse battery staple';

describe('SealedKeyStore', () => {
  it('round-trips a profile; empty storage loads as null; clear empties it', async () => {
    const storage = new MemorySealedStorage();
    const store = new SealedKeyStore(storage, PASS);
    expect(await store.load()).toBeNull();
    await store.save(profile);
    expect(await new SealedKeyStore(storage, PASS).load()).toEqual(profile);
    await store.clear();
    expect(storage.text).toBeNull();
  });

  it('writes nothing secret in the clear, with a fresh nonce per save', async () => {
    const storage = new MemorySealedStorage();
    const store = new SealedKeyStore(storage, PASS);
    await store.save(profile);
    const first = storage.text!;
    for (const secret of [profile.deviceKeys.encryption_key_pkcs8, profile.deviceKeys.signing_key_seed, profile.identitySeed, profile.tokens!.accessToken, profile.tokens!.refreshToken, profile.userId, profile.username]) {
      expect(first).not.toContain(secret);
    }
    const parsed = JSON.parse(first) as { format: string; kdf: { name: string; log2n: number }; cipher: { nonce: string } };
    expect(parsed.format).toBe(KEY_STORE_FORMAT);
    expect(parsed.kdf).toMatchObject({ name: 'scrypt', log2n: 15 });
    await store.save(profile);
    expect((JSON.parse(storage.text!) as typeof parsed).cipher.nonce).not.toBe(parsed.cipher.nonce);
  });

  it('opens what FileKeyStore wrote, and FileKeyStore opens what it wrote', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bil-sealed-'));
    dirs.push(dir);
    const path = join(dir, 'device.json');
    await new FileKeyStore(path, PASS).save(profile);
    const storage = new MemorySealedStorage();
    storage.text = await readFile(path, 'utf8');
    expect(await new SealedKeyStore(storage, PASS).load()).toEqual(profile);

    const other = { ...profile, username: 'someone-else' };
    await new SealedKeyStore(storage, PASS).save(other);
    await writeFile(path, storage.text!);
    expect(await new FileKeyStore(path, PASS).load()).toEqual(other);
  });

  it('a wrong passphrase or an edited header or ciphertext is WrongPassphraseError; garbage is KeyStoreFormatError', async () => {
    const storage = new MemorySealedStorage();
    await new SealedKeyStore(storage, PASS).save(profile);
    await expect(new SealedKeyStore(storage, 'not the passphrase').load()).rejects.toBeInstanceOf(WrongPassphraseError);
    const good = storage.text!;
    const file = JSON.parse(good) as { kdf: { r: number }; ciphertext: string };
    storage.text = JSON.stringify({ ...file, kdf: { ...file.kdf, r: 9 } });
    await expect(new SealedKeyStore(storage, PASS).load()).rejects.toBeInstanceOf(WrongPassphraseError);
    const flipped = (file.ciphertext[0] === 'A' ? 'B' : 'A') + file.ciphertext.slice(1);
    storage.text = JSON.stringify({ ...file, ciphertext: flipped });
    await expect(new SealedKeyStore(storage, PASS).load()).rejects.toBeInstanceOf(WrongPassphraseError);
    storage.text = 'not json';
    await expect(new SealedKeyStore(storage, PASS).load()).rejects.toBeInstanceOf(KeyStoreFormatError);
    storage.text = JSON.stringify({ ...file, kdf: { ...file.kdf, log2n: 10 } });
    await expect(new SealedKeyStore(storage, PASS).load()).rejects.toBeInstanceOf(KeyStoreFormatError);
  });

  it('refuses an empty passphrase and weak scrypt parameters', () => {
    expect(() => new SealedKeyStore(new MemorySealedStorage(), '')).toThrow(TypeError);
    expect(() => new SealedKeyStore(new MemorySealedStorage(), PASS, { scryptLog2N: 10 })).toThrow(RangeError);
  });

  it('SealedJsonStore keeps any JSON the app checks, in the same format', async () => {
    const storage = new MemorySealedStorage();
    const parse = (v: unknown): Record<string, string> => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError('expected an object');
      return v as Record<string, string>;
    };
    await new SealedJsonStore(storage, PASS, { parse }).save({ 'user-1': 'alice' });
    expect(storage.text).not.toContain('alice');
    expect(await new SealedJsonStore(storage, PASS, { parse }).load()).toEqual({ 'user-1': 'alice' });
    await expect(new SealedJsonStore(storage, 'wrong', { parse }).load()).rejects.toBeInstanceOf(WrongPassphraseError);
    await expect(new SealedKeyStore(storage, PASS).load()).rejects.toBeInstanceOf(KeyStoreFormatError);
  });
});
