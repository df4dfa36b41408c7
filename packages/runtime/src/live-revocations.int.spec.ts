// The in-memory revocation mirror against the real Redis: complete after it
// syncs (keys already there, keys written since), answering without a round
// trip, and back to asking Redis whenever its subscription is lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createTestEnv, eventually, startRedisServer, type TestEnv } from '@bil/testkit';
import { LiveRevocations, RevocationList, connectRedis, type Redis } from './index.js';

let env: TestEnv;
let issuer: Redis;
let revocations: RevocationList;

beforeAll(async () => {
  env = await createTestEnv('liverevocations');
  issuer = connectRedis(env.redisUrl, env.redisPrefix);
  revocations = new RevocationList(issuer, 60);
});

afterAll(async () => {
  await issuer?.quit();
  await env?.cleanup();
});

const claims = () => ({ sub: randomUUID(), did: randomUUID(), sid: randomUUID() });

describe('LiveRevocations', () => {
  it('knows what was revoked before it started and what is revoked after, without asking Redis', async () => {
    const before = claims();
    await revocations.revoke('device', [before.did]);
    const redis = connectRedis(env.redisUrl, env.redisPrefix);
    const mirror = new LiveRevocations(redis);
    try {
      await eventually(() => mirror.live);
      expect(await mirror.isRevoked(before)).toBe(true);
      const after = claims();
      const untouched = claims();
      expect(await mirror.isRevoked(after)).toBe(false);
      await revocations.revoke('session', [after.sid]);
      // Heard on the channel as it was written: by the time a client could send its next request.
      await new Promise((r) => setTimeout(r, 20));
      const user = claims();
      await revocations.revoke('user', [user.sub]);
      await new Promise((r) => setTimeout(r, 20));
      // From memory: the mirror's own command connection is gone, its answers are not.
      await redis.quit();
      expect(await mirror.isRevoked(after)).toBe(true);
      expect(await mirror.isRevoked({ ...untouched, sub: user.sub })).toBe(true);
      expect(await mirror.isRevoked(untouched)).toBe(false);
    } finally {
      await mirror.close();
      redis.disconnect();
    }
  });

  it('asks Redis while its subscription is down, and syncs again (what was written meanwhile included)', async () => {
    const redis = connectRedis(env.redisUrl, env.redisPrefix);
    const mirror = new LiveRevocations(redis);
    try {
      await eventually(() => mirror.live);
      const sub = (mirror as unknown as { sub: Redis }).sub;
      const meanwhile = claims();
      // The subscriber drops (as in a Redis restart); a revocation lands without its announcement.
      sub.disconnect();
      await eventually(() => !mirror.live);
      await issuer.set(`revoked:device:${meanwhile.did}`, '1', 'EX', 60);
      expect(await mirror.isRevoked(meanwhile)).toBe(true); // asked Redis
      await sub.connect();
      await eventually(() => mirror.live);
      await issuer.del(`revoked:device:${meanwhile.did}`);
      expect(await mirror.isRevoked(meanwhile)).toBe(true); // found by the resync's scan, answered from memory
    } finally {
      await mirror.close();
      await redis.quit();
    }
  });

  it('through a Redis outage (its own Redis, stopped): answers from what it held, at once; back to live after', async () => {
    const server = await startRedisServer();
    const redis = connectRedis(server.url, 'outage:');
    const writer = new RevocationList(redis, 60);
    const mirror = new LiveRevocations(redis);
    try {
      await eventually(() => mirror.live);
      const revoked = claims();
      await writer.revoke('device', [revoked.did]);
      await eventually(() => mirror.isRevoked(revoked));
      await server.stop();
      await eventually(() => !mirror.live);
      const t0 = Date.now();
      expect(await mirror.isRevoked(revoked)).toBe(true);
      expect(await mirror.isRevoked(claims())).toBe(false);
      expect(Date.now() - t0).toBeLessThan(100); // no wait on a dead connection
      await server.start();
      await eventually(() => mirror.live, 10_000);
      const later = claims();
      await writer.revoke('session', [later.sid]);
      await eventually(() => mirror.isRevoked(later));
    } finally {
      await mirror.close();
      redis.disconnect();
      await server.stop();
    }
  }, 30_000);

  it('while nothing is synced, a Redis failure is an error (503 upstream), never a silent "not revoked"', async () => {
    const redis = connectRedis('redis://127.0.0.1:1', '');
    const mirror = new LiveRevocations(redis);
    try {
      await expect(mirror.isRevoked(claims())).rejects.toThrow();
    } finally {
      await mirror.close();
      redis.disconnect();
    }
  });
});
