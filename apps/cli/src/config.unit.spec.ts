import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkProfileName, configDir, listProfiles, profilePaths, readSettings, resolveUrl, writeSettings } from './config.js';
import { ExitCode } from './errors.js';

describe('config', () => {
  it('puts profiles in BIL_CONFIG_DIR, else the XDG config directory, else ~/.config/bil', () => {
    expect(configDir({ BIL_CONFIG_DIR: '/c' }, '/home/u')).toBe('/c');
    expect(configDir({ XDG_CONFIG_HOME: '/x' }, '/home/u')).toBe('/x/bil');
    expect(configDir({}, '/home/u')).toBe('/home/u/.config/bil');
  });

  it('takes the server from --url, BIL_URL, the profile, then the default', () => {
    expect(resolveUrl('http://a:1/', { BIL_URL: 'http://b:2' }, 'http://c:3')).toBe('http://a:1');
    expect(resolveUrl(undefined, { BIL_URL: 'http://b:2' }, 'http://c:3')).toBe('http://b:2');
    expect(resolveUrl(undefined, {}, 'https://c.example/api/')).toBe('https://c.example/api');
    expect(resolveUrl(undefined, {}, undefined)).toBe('http://localhost:8080');
    expect(() => resolveUrl('ftp://x', {}, undefined)).toThrow(expect.objectContaining({ exitCode: ExitCode.usage }));
    expect(() => resolveUrl('not a url', {}, undefined)).toThrow(/invalid server URL/);
  });

  it('accepts safe profile names only', () => {
    expect(checkProfileName('alice.work-2')).toBe('alice.work-2');
    for (const bad of ['', '../x', 'a/b', '.hidden', 'x'.repeat(65)]) expect(() => checkProfileName(bad), bad).toThrow(/invalid profile name/);
  });

  it('keeps each profile in its own directory with its server', async () => {
    const root = await mkdtemp(join(tmpdir(), 'bil-config-'));
    try {
      const p = profilePaths(root, 'alice');
      expect(p.keys).toBe(join(root, 'profiles', 'alice', 'keys.json'));
      expect(await readSettings(p)).toEqual({});
      await writeSettings(p, { url: 'http://h:1' });
      expect(await readSettings(p)).toEqual({ url: 'http://h:1' });
      await writeSettings(profilePaths(root, 'bob'), {});
      expect(await listProfiles(root)).toEqual(['alice', 'bob']);
      expect(await listProfiles(join(root, 'none'))).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
