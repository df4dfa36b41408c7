// Real Redis: the Lua script counts atomically under the connection's key prefix.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, type Redis } from '@bil/runtime';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { RateLimiter, enforceAuthLimit } from './rate-limit.js';

describe('RateLimiter (Redis)', () => {
  let env: TestEnv;
  let redis: Redis;
  beforeAll(async () => {
    env = await createTestEnv('gwrl');
    redis = connectRedis(env.redisUrl, env.redisPrefix);
  });
  afterAll(async () => {
    redis.disconnect();
    await env.cleanup();
  });

  it('counts concurrent attempts exactly and expires the window', async () => {
    const limiter = new RateLimiter(redis, 2);
    const rules = [{ key: 'gw:rl:test:a', limit: 5 }];
    const results = await Promise.all(Array.from({ length: 8 }, () => limiter.hit(rules)));
    expect(results.filter((r) => r.allowed)).toHaveLength(5);
    expect(results.find((r) => !r.allowed)?.retryAfterSeconds).toBe(2);
    // The key lives under the prefix, with a TTL.
    const raw = connectRedis(env.redisUrl, '');
    try {
      expect(await raw.pttl(`${env.redisPrefix}gw:rl:test:a`)).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
    }
    await new Promise((r) => setTimeout(r, 2100));
    expect((await limiter.hit(rules)).allowed).toBe(true);
  });

  it('throws 429 rate_limited with retry_after_seconds', async () => {
    const limiter = new RateLimiter(redis, 60);
    const limits = { perIp: 100, perUsername: 2 };
    await enforceAuthLimit(limiter, limits, '10.1.1.1', 'Carol');
    await enforceAuthLimit(limiter, limits, '10.1.1.1', 'carol');
    await expect(enforceAuthLimit(limiter, limits, '10.1.1.1', 'CAROL')).rejects.toMatchObject({
      code: 'rate_limited',
      httpStatus: 429,
      details: { retry_after_seconds: 60 },
    });
  });

  it("an outsider guessing at an account holds back their own address, not the owner's", async () => {
    const limiter = new RateLimiter(redis, 60);
    const limits = { perIp: 100, perUsername: 2 };
    for (let i = 0; i < 2; i++) await enforceAuthLimit(limiter, limits, '10.2.2.66', 'Dora');
    await expect(enforceAuthLimit(limiter, limits, '10.2.2.66', 'dora')).rejects.toMatchObject({ code: 'rate_limited' });
    // The owner, from their own address, is not held back by the outsider's attempts.
    await enforceAuthLimit(limiter, limits, '10.2.2.1', 'Dora');
    // All addresses together: ten times perUsername (20 here, 4 counted so far) before the account itself is held back.
    for (let i = 0; i < 16; i++) await enforceAuthLimit(limiter, limits, `10.2.3.${i}`, 'dora');
    await expect(enforceAuthLimit(limiter, limits, '10.2.4.1', 'dora')).rejects.toMatchObject({ code: 'rate_limited' });
  });
});
