import { describe, expect, it } from 'vitest';
import { useNodeCrypto } from '@bil/crypto/node';
import { ConfigError } from '@bil/runtime';
import { checkPublishedKey, serviceKey, serviceKeyText } from './service-key.js';

useNodeCrypto();

describe('service-key', () => {
  it('prints the development key and its fingerprint outside production', () => {
    const k = serviceKey({ NODE_ENV: 'development' });
    expect(k).toMatchObject({ key: 'b706pwa4mYfc-hYL3fn40eoly63i2bRvIocW8B2QpSU', fingerprint: 'd30f 1ee9 6d8e ff43 a18b a584 c25c 4ef4', development: true });
    expect(k.sha256).toMatch(/^d30f1ee96d8eff43a18ba584c25c4ef4[0-9a-f]{32}$/);
    expect(serviceKeyText(k).split('\n')[0]).toBe(k.key);
  });

  it('uses DIGEST_SERVICE_IDENTITY_SEED, and requires it in production', () => {
    const seed = Buffer.alloc(32, 7).toString('base64url');
    const k = serviceKey({ NODE_ENV: 'production', DIGEST_SERVICE_IDENTITY_SEED: seed });
    expect(k.development).toBe(false);
    expect(k.key).not.toBe('b706pwa4mYfc-hYL3fn40eoly63i2bRvIocW8B2QpSU');
    expect(serviceKeyText(k)).not.toContain(seed);
    expect(() => serviceKey({ NODE_ENV: 'production' })).toThrow(ConfigError);
  });

  it('refuses a seed that does not match the published key, when one is configured', () => {
    const dev = serviceKey({ NODE_ENV: 'development' }).key;
    expect(() => checkPublishedKey({}, dev)).not.toThrow();
    expect(() => checkPublishedKey({ DIGEST_SERVICE_IDENTITY_KEY: dev }, dev)).not.toThrow();
    expect(() => checkPublishedKey({ DIGEST_SERVICE_IDENTITY_KEY: 'A'.repeat(43) }, dev)).toThrow(/does not belong/);
  });
});
