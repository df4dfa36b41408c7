import { describe, expect, it } from 'vitest';
import { ConfigError } from '@bil/runtime';
import { loadDigestConfig } from './config.js';

const seed = Buffer.alloc(32, 7).toString('base64url');

describe('digest configuration', () => {
  it('uses the extractive summariser and development keys by default', () => {
    const c = loadDigestConfig({});
    expect(c.OPENAI_API_KEY).toBeUndefined();
    expect(c.DIGEST_SERVICE_IDENTITY_SEED).toBeUndefined();
    expect(c.DIGEST_MIN_UNREAD).toBe(20);
  });

  it('requires the key secrets in production', () => {
    expect(() => loadDigestConfig({ NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(loadDigestConfig({ NODE_ENV: 'production', DIGEST_SERVICE_IDENTITY_SEED: seed, DIGEST_KEY_ENCRYPTION_KEY: seed }).NODE_ENV).toBe('production');
  });

  it('never echoes a bad secret', () => {
    try {
      loadDigestConfig({ DIGEST_KEY_ENCRYPTION_KEY: 'not-a-key-SECRET' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/DIGEST_KEY_ENCRYPTION_KEY/);
      expect((err as Error).message).not.toContain('SECRET');
    }
  });

});
