// The README's start command, as a newcomer would use it: the start script
// brings the system up, the identity demo (register → device → login → list
// devices → refresh → revoke) passes against it, Ctrl-C stops it cleanly, the
// data survives a restart, and a missing server is named with how to start it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createTestEnv, type TestEnv } from '@bil/testkit';

const root = join(import.meta.dirname, '..', '..', '..');
let env: TestEnv;
let ports: Record<string, string>;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(args: string[], extraEnv: Record<string, string>): Run {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function startSystem(): Promise<Run> {
  const r = run(['scripts/start.mjs'], { ...systemEnv(), LOG_LEVEL: 'warn' });
  const deadline = Date.now() + 120_000;
  while (!r.output().includes('bil-message is up')) {
    if (r.child.exitCode !== null || Date.now() > deadline) throw new Error(`start failed:\n${r.output()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return r;
}

function systemEnv(): Record<string, string> {
  return {
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    REDIS_PREFIX: env.redisPrefix,
    NATS_URL: env.natsUrl,
    NATS_SUBJECT_PREFIX: env.natsPrefix,
    ...ports,
  };
}

beforeAll(async () => {
  env = await createTestEnv('system');
  ports = {
    BIL_GATEWAY_PORT: String(await freePort()),
    GATEWAY_METRICS_PORT: String(await freePort()),
    IDENTITY_GRPC_PORT: String(await freePort()),
    IDENTITY_METRICS_PORT: String(await freePort()),
    CHAT_GRPC_PORT: String(await freePort()),
    CHAT_METRICS_PORT: String(await freePort()),
    DIGEST_GRPC_PORT: String(await freePort()),
    DIGEST_METRICS_PORT: String(await freePort()),
    DIGEST_WORKER_METRICS_PORT: String(await freePort()),
    DELIVERY_WS_PORT: String(await freePort()),
    DELIVERY_METRICS_PORT: String(await freePort()),
  };
});

afterAll(async () => {
  await env?.cleanup();
});

describe('npm start', () => {
  it('runs the system; the identity demo passes; Ctrl-C stops it; data survives a restart', async () => {
    const url = `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`;
    let system = await startSystem();
    try {
      expect(system.output()).toContain(`Gateway: http://localhost:${ports.BIL_GATEWAY_PORT}`);
      const demo = run(['scripts/demo-identity.mjs', 'readme_user'], { BIL_URL: url });
      expect(await demo.exited, demo.output()).toBe(0);
      expect(demo.output()).toContain('demo: OK');
      const openapi = await fetch(`${url}/v1/openapi.json`);
      expect(openapi.status).toBe(200);
    } finally {
      system.child.kill('SIGINT');
    }
    expect(await system.exited).toBe(0);
    expect(system.output()).toContain('bil: stopped');

    system = await startSystem();
    try {
      const again = await fetch(`${url}/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'README_USER', password: 'another long password' }),
      });
      expect(again.status).toBe(409);
      expect((await again.json()).error.code).toBe('username_taken');
    } finally {
      system.child.kill('SIGINT');
      await system.exited;
    }
  }, 300_000);

  it('names a missing server and how to start it', async () => {
    const dead = await freePort();
    const r = run(['scripts/start.mjs'], { ...systemEnv(), REDIS_URL: `redis://127.0.0.1:${dead}/0` });
    expect(await r.exited).toBe(1);
    expect(r.output()).toContain(`Redis is not reachable at redis://127.0.0.1:${dead}/0`);
    expect(r.output()).toContain('start it with: redis-server');
    expect(r.output()).not.toContain('PostgreSQL is not reachable');
  }, 60_000);
});
