// Issue #14 item 3 through the public API: the password-hashing queue of the
// real identity service (a child process, one hash at a time, a queue of 4). A full queue answers 503 at once with
// Retry-After; a registration whose caller gave up (504) is not saved; one
// account's flood gets 429 for its surplus while other accounts go through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { ServiceAuth } from '@bil/runtime';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { createIdentityClient, type IdentityApi } from '../src/identity-client.js';
import { identityMain, randomUsername, startIdentity, type HttpResult, type IdentityProcess } from './fixtures.js';
import { startTestGateway, type TestGateway } from './gateway.js';

const PASSWORD = 'correct horse battery staple';
/** The gateway's deadline for identity calls; the caller that gives up uses its own, far shorter one. */
const IDENTITY_DEADLINE_MS = 30_000;

describe.skipIf(!existsSync(identityMain))('password hashing queue (e2e)', () => {
  let env: TestEnv;
  let identity: IdentityProcess;
  let idClient: IdentityApi;
  let gw: TestGateway;
  let http: TestGateway['http'];

  const register = (username: string) => http('POST', '/v1/auth/register', { body: { username, password: PASSWORD } });
  const idle = async () => {
    // Wait until identity has drained its queue: a registration goes through at once again.
    let last = '';
    for (let i = 0; i < 60; i++) {
      const r = await register(randomUsername('probe'));
      if (r.status === 201) return;
      last = `${r.status} ${r.text.slice(0, 200)}`;
      await new Promise((res) => setTimeout(res, 250));
    }
    throw new Error(`identity never drained its hashing queue: ${last}\n${identity.output().slice(-1500)}`);
  };

  beforeAll(async () => {
    env = await createTestEnv('gwhash');
    identity = await startIdentity({
      ...env.serviceEnv,
      LOG_LEVEL: 'info',
      IDENTITY_SCRYPT_LOG2N: '14',
      IDENTITY_HASH_CONCURRENCY: '1',
      IDENTITY_HASH_QUEUE: '4',
      IDENTITY_HASH_PER_ACCOUNT: '2',
    });
    idClient = createIdentityClient(identity.grpcUrl, IDENTITY_DEADLINE_MS, ServiceAuth.fromEnv('gateway', env.serviceEnv));
    gw = await startTestGateway(env, { name: 'gateway-hash-e2e', identity: idClient, overrides: { limits: { perIp: 10_000, perUsername: 10_000 } } });
    http = gw.http;
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    idClient?.close();
    await identity?.stop();
    await env?.cleanup();
  });

  it('a full queue answers 503 service_unavailable with Retry-After at once, not a timeout', async () => {
    await idle();
    const results: Array<HttpResult & { ms: number }> = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const t = Date.now();
        const r = await register(randomUsername('burst'));
        return { ...r, ms: Date.now() - t };
      }),
    );
    const refused = results.filter((r) => r.status === 503);
    // One hash runs and four wait; requests trickle in as hashes finish: at least half of 20 are refused.
    expect(refused.length, results.map((r) => `${r.status} ${r.text.slice(0, 80)}`).join('\n')).toBeGreaterThanOrEqual(10);
    // Refused at once: each 503 came before the last registration that waited its turn.
    const slowest = Math.max(...results.filter((r) => r.status === 201).map((r) => r.ms));
    for (const r of refused) {
      expect(r.body.error).toMatchObject({ code: 'service_unavailable', details: { retry_after_seconds: 1 } });
      expect(r.headers.get('retry-after')).toBe('1');
      expect(r.ms).toBeLessThanOrEqual(slowest);
    }
    expect(results.every((r) => [201, 503].includes(r.status))).toBe(true);
  }, 60_000);

  it('a registration whose caller gave up (deadline passed while its hash waited: a gateway 504) is not saved', async () => {
    await idle();
    const blockers = Array.from({ length: 4 }, () => register(randomUsername('block')));
    await new Promise((r) => setTimeout(r, 20));
    const victim = randomUsername('late');
    // Four hashes ahead of it take far longer than this caller's 40 ms deadline.
    const impatient = createIdentityClient(identity.grpcUrl, 40, ServiceAuth.fromEnv('gateway', env.serviceEnv));
    try {
      await expect(impatient.registerUser({ username: victim, password: PASSWORD, displayName: '' })).rejects.toMatchObject({ kind: 'deadline_exceeded' });
    } finally {
      impatient.close();
    }
    await Promise.all(blockers);
    await idle();
    // Before the fix the hash ran anyway and the user was saved: 409 username_taken here.
    const again = await register(victim);
    expect(again.status, again.text).toBe(201);
  }, 60_000);

  it("one account's flood: its surplus gets 429 with Retry-After, another account signs in meanwhile", async () => {
    await idle();
    const target = randomUsername('target');
    expect((await register(target)).status).toBe(201);
    const flood = Array.from({ length: 3 }, () =>
      http('POST', '/v1/auth/login', { body: { username: target, password: 'wrong password!', device_id: randomUUID() } }),
    );
    const other = randomUsername('other');
    const results = await Promise.all(flood);
    const limited = results.filter((r) => r.status === 429);
    expect(limited.length, results.map((r) => `${r.status} ${r.text.slice(0, 80)}`).join('\n')).toBeGreaterThanOrEqual(1);
    expect(limited[0]!.body.error.code).toBe('rate_limited');
    expect(limited[0]!.headers.get('retry-after')).toBe('1');
    expect((await register(other)).status).toBe(201);
    // Not locked out: once the flood is over the account answers normally again.
    const after = await http('POST', '/v1/auth/login', { body: { username: target, password: 'wrong password!', device_id: randomUUID() } });
    expect(after.status, after.text).toBe(401);
  }, 60_000);
});
