import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode } from './errors.js';
import { checkDigestKey, digestKeyFingerprint, readServers, resolveDigestKey, serverEntry, serversPath, updateServers } from './servers.js';

// The public key of services/digest's development seed (npm start prints it).
const DEV_KEY = 'b706pwa4mYfc-hYL3fn40eoly63i2bRvIocW8B2QpSU';
const OTHER = Buffer.alloc(32, 7).toString('base64url');

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'bil-servers-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the digest service key', () => {
  it('is an Ed25519 public key in base64url, checked wherever it comes from', () => {
    expect(checkDigestKey(` ${DEV_KEY}\n`)).toBe(DEV_KEY);
    for (const bad of ['', 'abc', `${DEV_KEY}=`, `${DEV_KEY.slice(0, 42)}+`, DEV_KEY.slice(1), 'x'.repeat(44)]) {
      expect(() => checkDigestKey(bad), bad).toThrow(expect.objectContaining({ exitCode: ExitCode.usage }));
    }
  });

  it('has a fingerprint: the first 16 bytes of its SHA-256 in hex, 8 groups of 4', () => {
    expect(digestKeyFingerprint(DEV_KEY)).toBe('d30f 1ee9 6d8e ff43 a18b a584 c25c 4ef4');
    expect(digestKeyFingerprint(OTHER)).toMatch(/^([0-9a-f]{4} ){7}[0-9a-f]{4}$/);
    expect(digestKeyFingerprint(OTHER)).not.toBe(digestKeyFingerprint(DEV_KEY));
  });

  it('comes from --digest-key, then BIL_DIGEST_SERVICE_KEY, then servers.json for the server', () => {
    const servers = { 'http://localhost:8080': { digest_service_key: DEV_KEY }, 'https://chat.example': { digest_service_key: OTHER } };
    const url = 'http://localhost:8080';
    expect(resolveDigestKey(OTHER, { BIL_DIGEST_SERVICE_KEY: DEV_KEY }, servers, url)).toEqual({ key: OTHER, source: 'flag', from: '--digest-key' });
    expect(resolveDigestKey(undefined, { BIL_DIGEST_SERVICE_KEY: OTHER }, servers, url)).toMatchObject({ key: OTHER, source: 'env' });
    expect(resolveDigestKey('', { BIL_DIGEST_SERVICE_KEY: '' }, servers, url)).toMatchObject({ key: DEV_KEY, source: 'servers', from: 'servers.json' });
    expect(resolveDigestKey(undefined, {}, servers, 'https://chat.example/')).toMatchObject({ key: OTHER, source: 'servers' });
    expect(resolveDigestKey(undefined, {}, servers, 'HTTP://LOCALHOST:8080')).toMatchObject({ key: DEV_KEY });
    // Another server's key is never used.
    expect(resolveDigestKey(undefined, {}, servers, 'http://localhost:9090')).toBeNull();
    expect(resolveDigestKey(undefined, {}, {}, url)).toBeNull();
    expect(() => resolveDigestKey('nope', {}, servers, url)).toThrow(/--digest-key is not an Ed25519 public key/);
    expect(() => resolveDigestKey(undefined, { BIL_DIGEST_SERVICE_KEY: 'nope' }, servers, url)).toThrow(/BIL_DIGEST_SERVICE_KEY is not/);
    expect(() => resolveDigestKey(undefined, {}, { [url]: { digest_service_key: 'nope' } }, url)).toThrow(/for http:\/\/localhost:8080 in servers.json/);
  });
});

describe('servers.json', () => {
  it('is written atomically, mode 0600, merged with what is there', async () => {
    expect(await readServers(root)).toEqual({});
    await writeFile(serversPath(root), JSON.stringify({ 'https://chat.example/': { digest_service_key: OTHER, note: 'kept' } }));
    await updateServers(root, ['http://localhost:8080', 'http://127.0.0.1:8080'], { digest_service_key: DEV_KEY });
    await updateServers(root, ['https://chat.example'], { digest_service_key: DEV_KEY });
    const servers = await readServers(root);
    expect(servers).toEqual({
      'http://localhost:8080': { digest_service_key: DEV_KEY },
      'http://127.0.0.1:8080': { digest_service_key: DEV_KEY },
      'https://chat.example': { digest_service_key: DEV_KEY, note: 'kept' },
    });
    expect(serverEntry(servers, 'https://chat.example/')?.note).toBe('kept');
    expect((await stat(serversPath(root))).mode & 0o777).toBe(0o600);
    expect((await readFile(serversPath(root), 'utf8')).endsWith('}\n')).toBe(true);
  });

  it('creates the config directory (0700) if there is none', async () => {
    const dir = join(root, 'new', 'bil');
    await updateServers(dir, ['http://localhost:8080'], { digest_service_key: DEV_KEY });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await readServers(dir)).toEqual({ 'http://localhost:8080': { digest_service_key: DEV_KEY } });
  });

  it('is never silently ignored when it is not a JSON object', async () => {
    for (const text of ['not json', '[]', '"x"', 'null']) {
      await writeFile(serversPath(root), text);
      await expect(readServers(root), text).rejects.toMatchObject({ code: 'config_unreadable' });
      await expect(updateServers(root, ['http://localhost:8080'], { digest_service_key: DEV_KEY })).rejects.toMatchObject({ code: 'config_unreadable' });
    }
  });
});
