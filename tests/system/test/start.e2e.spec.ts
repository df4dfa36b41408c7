// The README's start command, as a newcomer would use it: the start script
// brings the system up (on its own private environment, not the shared one of
// the other files), Ctrl-C stops it cleanly, the data survives a restart, and
// a missing server is named with how to start it. (`npm ci` and `npm test`
// are what CI runs; `npm start` is `turbo run build` and then this script.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, freePort, freePorts, run, startSystem, stopSystem, systemEnv, type Ports, type TestEnv } from '@bil/testkit';

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

describe('npm start', () => {
  it('runs the system; Ctrl-C stops it; data survives a restart', async () => {
    const url = `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`;
    let system = await startSystem(systemEnv(env, ports));
    try {
      expect(system.output()).toContain(`Gateway: http://localhost:${ports.BIL_GATEWAY_PORT}`);
      expect((await register(url, 'readme_user')).status).toBe(201);
      const openapi = await fetch(`${url}/v1/openapi.json`);
      expect(openapi.status).toBe(200);
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

  it('names a missing server and how to start it', async () => {
    const dead = await freePort();
    const r = run(['scripts/start.mjs'], { ...systemEnv(env, ports), REDIS_URL: `redis://127.0.0.1:${dead}/0` }, { input: '' });
    expect(await r.exited).toBe(1);
    expect(r.output()).toContain(`Redis is not reachable at redis://127.0.0.1:${dead}/0`);
    expect(r.output()).toContain('start it with: redis-server');
    expect(r.output()).not.toContain('PostgreSQL is not reachable');
  }, 60_000);
});
