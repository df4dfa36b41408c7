// Every 503 the gateway gives says when to try again (Retry-After, and
// `retry_after_seconds` in the error's details), in the API's error shape:
// a backend outage, readiness, a gateway shutting down, the WebSocket proxy
// without a delivery node, and the internal ops server's /readyz.
import { createServer, request, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { AppError, Metrics, createLogger, startOpsServer } from '@bil/runtime';
import { buildApp, type AppDeps } from './app.js';
import type { IdentityApi } from './identity-client.js';
import { attachWsProxy } from './ws-proxy.js';
import { freePort, unavailableChat } from '../test/fixtures.js';

const logger = createLogger('gateway-test', 'silent');

function identityFailingWith(err: AppError): IdentityApi {
  const fail = () => Promise.reject(err);
  return new Proxy({} as IdentityApi, {
    get: (_t, name) => (name === 'checkHealth' ? async () => undefined : name === 'close' ? () => undefined : fail),
  });
}

function app(overrides: Partial<AppDeps> = {}): Promise<FastifyInstance> {
  return buildApp({
    logger,
    identity: identityFailingWith(new AppError('unavailable', 'service_unavailable', 'a backend service is unavailable, try again')),
    chat: unavailableChat(),
    verifier: { verify: async () => ({ userId: 'u', deviceId: 'd', sessionId: 's', expiresAt: Date.now() + 60_000 }) },
    limiter: { hit: async () => ({ allowed: true, retryAfterSeconds: 0 }) },
    limits: { perIp: 100, perUsername: 100 },
    ready: async () => ({ identity: 'down', redis: 'ok', token_keys: 'ok' }),
    bodyLimitBytes: 1024,
    trustProxyHops: 0,
    ...overrides,
  });
}

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

describe('every 503 carries Retry-After', () => {
  it('a backend outage: 503 service_unavailable, Retry-After 2, retry_after_seconds in details', async () => {
    const a = await app();
    open.push(a);
    for (const [method, url, payload] of [
      ['POST', '/v1/auth/login', { username: 'alice', password: 'pw', device_id: '0193a0c4-2222-7000-8000-000000000002' }],
      ['GET', '/v1/me', undefined],
      ['GET', '/v1/chats', undefined],
    ] as const) {
      const res = await a.inject({ method, url, headers: { authorization: 'Bearer t' }, ...(payload ? { payload } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(503);
      expect(res.headers['retry-after'], `${method} ${url}`).toBe('2');
      expect(res.json().error).toMatchObject({ code: 'service_unavailable', details: { retry_after_seconds: 2 } });
    }
  });

  it("a backend's own retry delay is passed on", async () => {
    const a = await app({ identity: identityFailingWith(new AppError('unavailable', 'hashing_busy', 'too many sign-ins at once, try again', { retry_after_seconds: 7 })) });
    open.push(a);
    const res = await a.inject({ method: 'GET', url: '/v1/me', headers: { authorization: 'Bearer t' } });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.json().error).toMatchObject({ code: 'hashing_busy', details: { retry_after_seconds: 7 } });
  });

  it('/readyz without token keys: 503 not_ready with Retry-After', async () => {
    const a = await app({ ready: async () => ({ identity: 'down', redis: 'ok', token_keys: 'down' }) });
    open.push(a);
    const res = await a.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.json().error).toMatchObject({ code: 'not_ready', details: { identity: 'down', token_keys: 'down' } });
  });

  it('a gateway shutting down: the API error shape with Retry-After 1 and Connection: close (not Fastify\'s own body)', async () => {
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const a = await app({ ready: async () => (await slow, { token_keys: 'ok' }) });
    await a.listen({ host: '127.0.0.1', port: 0 });
    const port = (a.server.address() as { port: number }).port;
    // A keep-alive connection with a request in flight: close() waits for it, and the next request on that connection arrives while closing.
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) =>
      new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const first = get('/readyz');
    await new Promise((r) => setTimeout(r, 100));
    const closed = a.close();
    await new Promise((r) => setTimeout(r, 100));
    const second = get('/healthz');
    release();
    expect((await first).status).toBe(200);
    const res = await second;
    await closed;
    agent.destroy();
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'service_unavailable', message: expect.any(String), details: { retry_after_seconds: 1 } } });
  });

  it('the WebSocket proxy without a reachable delivery node: 503 with Retry-After', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    open.push({ close: () => new Promise((r) => server.close(r)) });
    const detach = attachWsProxy(server, { targets: `ws://127.0.0.1:${await freePort()}`, logger });
    open.push({ close: detach });
    const port = (server.address() as { port: number }).port;
    const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/v1/ws', headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
      req.on('response', (r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'service_unavailable', details: { retry_after_seconds: 2 } });
  });

  it("the ops server's /readyz (the Kubernetes probe): 503 with Retry-After", async () => {
    const ops = await startOpsServer({ port: 0, host: '127.0.0.1', metrics: new Metrics('gateway-test'), ready: async () => Promise.reject(new Error('token_keys unavailable')) });
    open.push({ close: () => new Promise((r) => ops.close(r)) });
    const res = await fetch(`http://127.0.0.1:${(ops.address() as { port: number }).port}/readyz`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('2');
  });
});
