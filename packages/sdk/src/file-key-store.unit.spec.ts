// The file key store: encrypted at rest (no secret appears in the file),
// 0600, replaced atomically, and a wrong passphrase or any edit to the file is
// a typed error.
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyStoreFormatError, WrongPassphraseError } from './errors.js';
import { FileKeyStore, KEY_STORE_FORMAT } from './file-key-store.js';
import { fakeProfile } from './testing/fake-gateway.js';

const dirs: string[] = [];
async function tempFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bil-sdk-'));
  dirs.push(dir);
  return join(dir, 'nested', 'device.json');
}
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const profile = {
  ...fakeProfile({ access: 'eyJhbGciOiJFZERTQSJ9.access-secret', refresh: 'bil_rt.session.1.refresh-secret', accessExpiresAt: 2_000 }, 1_000),
  identitySeed: 'c2VlZC1zZWNyZXQtaWRlbnRpdHkta2V5LTMyLWJ5dGVz',
  deviceKeys: { version: 1 as const, encryption_key_pkcs8: 'cGtjczgtcHJpdmF0ZS1rZXktbWF0ZXJpYWw', signing_key_seed: 'c2lnbmluZy1zZWVkLXNlY3JldC0zMi1ieXRlcy14eA' },
};

describe('FileKeyStore', () => {
  it('round-trips a profile; a missing file loads as null', async () => {
    const path = await tempFile();
    const store = new FileKeyStore(path, 'correct horse battery staple');
    expect(await store.load()).toBeNull();
    await store.save(profile);
    expect(await new FileKeyStore(path, 'correct horse battery staple').load()).toEqual(profile);
  });

  it('never writes private keys, tokens or ids in the clear; mode 0600; no temp files left', async () => {
    const path = await tempFile();
    await new FileKeyStore(path, 'pw-pw-pw-pw').save(profile);
    const text = await readFile(path, 'utf8');
    for (const secret of [
      profile.deviceKeys.encryption_key_pkcs8,
      profile.deviceKeys.signing_key_seed,
      profile.identitySeed,
      profile.tokens!.accessToken,
      profile.tokens!.refreshToken,
      'refresh-secret',
      profile.userId,
      'alice',
    ]) {
      expect(text).not.toContain(secret);
    }
    const file = JSON.parse(text);
    expect(file).toMatchObject({
      format: KEY_STORE_FORMAT,
      version: 1,
      kdf: { name: 'scrypt', log2n: 15, r: 8, p: 1, salt: expect.stringMatching(/^[\w-]{22}$/) },
      cipher: { name: 'aes-256-gcm', nonce: expect.stringMatching(/^[\w-]{16}$/) },
    });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(path, '..'))).toEqual(['device.json']);
  });

  it('uses a fresh nonce per save', async () => {
    const path = await tempFile();
    const store = new FileKeyStore(path, 'pw-pw-pw-pw');
    await store.save(profile);
    const a = JSON.parse(await readFile(path, 'utf8'));
    await store.save(profile);
    const b = JSON.parse(await readFile(path, 'utf8'));
    expect(a.cipher.nonce).not.toBe(b.cipher.nonce);
    expect(a.kdf.salt).toBe(b.kdf.salt);
  });

  it('a wrong passphrase is WrongPassphraseError', async () => {
    const path = await tempFile();
    await new FileKeyStore(path, 'right passphrase').save(profile);
    await expect(new FileKeyStore(path, 'wrong passphrase').load()).rejects.toBeInstanceOf(WrongPassphraseError);
  });

  it('an edited header or ciphertext is refused (the header is associated data)', async () => {
    const path = await tempFile();
    await new FileKeyStore(path, 'pw-pw-pw-pw').save(profile);
    const file = JSON.parse(await readFile(path, 'utf8'));
    const edits = [
      { ...file, cipher: { ...file.cipher, nonce: 'AAAAAAAAAAAAAAAA' } },
      { ...file, ciphertext: `${file.ciphertext[0] === 'A' ? 'B' : 'A'}${file.ciphertext.slice(1)}` },
    ];
    for (const edit of edits) {
      await writeFile(path, JSON.stringify(edit));
      await expect(new FileKeyStore(path, 'pw-pw-pw-pw').load()).rejects.toBeInstanceOf(WrongPassphraseError);
    }
    await writeFile(path, JSON.stringify({ ...file, kdf: { ...file.kdf, log2n: 10 } }));
    await expect(new FileKeyStore(path, 'pw-pw-pw-pw').load()).rejects.toBeInstanceOf(KeyStoreFormatError);
    await writeFile(path, 'garbage');
    await expect(new FileKeyStore(path, 'pw-pw-pw-pw').load()).rejects.toBeInstanceOf(KeyStoreFormatError);
  });

  it('clear removes the file', async () => {
    const path = await tempFile();
    const store = new FileKeyStore(path, 'pw-pw-pw-pw');
    await store.save(profile);
    await store.clear();
    expect(await store.load()).toBeNull();
    await store.clear();
  });

  it('refuses weak scrypt parameters', () => {
    expect(() => new FileKeyStore('/tmp/x', 'pw', { scryptLog2N: 14 })).toThrow(RangeError);
    expect(() => new FileKeyStore('/tmp/x', '')).toThrow(TypeError);
  });
});
