// The README's start command, as a newcomer would use it: the start script
// brings the system up (on its own private environment, not the shared one of
// the other files), Ctrl-C stops it cleanly, the data survives a restart, and
// a missing server is started when installed (else named, with how to start it). (`npm ci` and `npm test`
// are what CI runs; `npm start` is `turbo run build` and then this script.)
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilClient, MemoryKeyStore } from '@bil/sdk/node';
import { createTestEnv, freePort, freePorts, run, startSystem, stopSystem, systemConfigDir, systemEnv, type Ports, type TestEnv } from '@bil/testkit';

let env: TestEnv;
let ports: Ports;

beforeAll(async () => {
  env = await createTestEnv('start');
  ports = await freePorts();
});

afterAll(async () => {
  await env?.cleanup();
});

const register = (url: string, username: string) =>
  fetch(`${url}/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'correct horse battery' }),
  });

/** The identity key the running digest service signs its keys with (what a client must be configured with). */
async function servedDigestIdentity(url: string): Promise<string> {
  const keyStore = new MemoryKeyStore();
  const client = new BilClient({ baseUrl: url, keyStore });
  await client.register({ username: `key_${Date.now().toString(36)}`, password: 'correct horse battery' });
  const res = await fetch(`${url}/v1/digest/key`, { headers: { authorization: `Bearer ${(await keyStore.load())!.tokens!.accessToken}` } });
  return ((await res.json()) as { service_identity_key: string }).service_identity_key;
}

describe('npm start', () => {
  it('prints the digest service key and its fingerprint, and writes it to servers.json for the CLI', async () => {
    const url = `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`;
    const dir = systemConfigDir(env);
    mkdirSync(dir, { recursive: true });
    // What is there already stays.
    writeFileSync(join(dir, 'servers.json'), JSON.stringify({ 'https://chat.example': { digest_service_key: 'kept' } }));
    const system = await startSystem(systemEnv(env, ports));
    try {
      const out = system.output();
      const printed = /digest service identity key \(the public DEVELOPMENT key[^\n]*\n.*bil: {3}([A-Za-z0-9_-]{43})\n.*bil: {3}fingerprint ((?:[0-9a-f]{4} ){7}[0-9a-f]{4})/.exec(out);
      expect(printed, out).not.toBeNull();
      const key = printed![1]!;
      // The key the digest service really signs with, not a copy that could drift.
      expect(await servedDigestIdentity(url)).toBe(key);
      const file = join(dir, 'servers.json');
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
        'https://chat.example': { digest_service_key: 'kept' },
        [`http://localhost:${ports.BIL_GATEWAY_PORT}`]: { digest_service_key: key },
        [url]: { digest_service_key: key },
      });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(out).toContain(`written to ${file} for http://localhost:${ports.BIL_GATEWAY_PORT}`);
    } finally {
      expect(await stopSystem(system)).toBe(0);
    }
  }, 300_000);

  it('refuses a malformed DIGEST_SERVICE_IDENTITY_SEED before starting anything', async () => {
    const r = run(['scripts/start.mjs'], { ...systemEnv(env, ports), DIGEST_SERVICE_IDENTITY_SEED: 'too-short' }, { input: '' });
    expect(await r.exited).toBe(1);
    expect(r.output()).toContain('DIGEST_SERVICE_IDENTITY_SEED is not 32 bytes in base64url');
    expect(r.output()).not.toContain('[identity]');
  }, 60_000);

  it('runs the system; Ctrl-C stops it; data survives a restart', async () => {
    const url = `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`;
    let system = await startSystem(systemEnv(env, ports));
    try {
      expect(system.output()).toContain(`Gateway: http://localhost:${ports.BIL_GATEWAY_PORT}`);
      expect((await register(url, 'readme_user')).status).toBe(201);
      const openapi = await fetch(`${url}/v1/openapi.json`);
      expect(openapi.status).toBe(200);
      // The web client at /, with no other command (apps/web is built by npm start's build).
      expect(system.output()).toContain(`web client: open http://localhost:${ports.BIL_GATEWAY_PORT} in a browser`);
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await page.text()).toContain('<div id="root"></div>');
    } finally {
      expect(await stopSystem(system)).toBe(0);
    }
    expect(system.output()).toContain('bil: stopped');

    system = await startSystem(systemEnv(env, ports));
    try {
      const again = await register(url, 'README_USER');
      expect(again.status).toBe(409);
      expect(((await again.json()) as { error: { code: string } }).error.code).toBe('username_taken');
    } finally {
      await stopSystem(system);
    }
  }, 400_000);

  it('refuses NODE_ENV=production without SERVICE_AUTH_SECRET before starting anything', async () => {
    const r = run(['scripts/start.mjs'], { ...systemEnv(env, ports), NODE_ENV: 'production', SERVICE_AUTH_SECRET: undefined }, { input: '' });
    expect(await r.exited).toBe(1);
    expect(r.output()).toContain('SERVICE_AUTH_SECRET is required when NODE_ENV=production');
    expect(r.output()).not.toContain('[identity]');
  }, 60_000);

  it('names a missing server it may not start, and how to start it', async () => {
    const dead = await freePort();
    const r = run(['scripts/start.mjs'], { ...systemEnv(env, ports), REDIS_URL: `redis://127.0.0.1:${dead}/0`, BIL_START_SERVERS: '0' }, { input: '' });
    expect(await r.exited).toBe(1);
    expect(r.output()).toContain(`Redis is not reachable at redis://127.0.0.1:${dead}/0`);
    expect(r.output()).toContain('start it with: redis-server');
    expect(r.output()).not.toContain('PostgreSQL is not reachable');
  }, 60_000);

  it('starts Redis and NATS itself when they are installed but not running, and the system comes up on them', async () => {
    // Private ports: the shared servers are never touched. What npm start started keeps running; the test stops it.
    const [redisPort, natsPort] = [await freePort(), await freePort()];
    const url = `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`;
    try {
      const system = await startSystem({ ...systemEnv(env, ports), REDIS_URL: `redis://127.0.0.1:${redisPort}/0`, NATS_URL: `nats://127.0.0.1:${natsPort}` });
      try {
        const out = system.output();
        expect(out).toContain(`Redis is not running on 127.0.0.1:${redisPort}; starting it`);
        expect(out).toContain(`NATS is not running on 127.0.0.1:${natsPort}; starting it`);
        expect(out).toContain('bil: Redis started');
        expect(out).toContain('bil: NATS started');
        expect(out).not.toContain('PostgreSQL is not running');
        expect((await register(url, 'autostart_user')).status).toBe(201);
      } finally {
        expect(await stopSystem(system)).toBe(0);
      }
    } finally {
      spawnSync('redis-cli', ['-p', String(redisPort), 'shutdown', 'nosave']);
      spawnSync('pkill', ['-f', `nats-server -js -a 127.0.0.1 -p ${natsPort} `]);
      for (const f of [`bil-nats-${natsPort}`, `bil-nats-${natsPort}.log`, `bil-redis-${redisPort}.log`]) rmSync(join(tmpdir(), f), { recursive: true, force: true });
    }
  }, 300_000);
});
