// The web client served by the gateway (web-app.ts): content types, the SPA
// fallback, caching, the security headers, API routes untouched, traversal
// refused (also over a raw socket, where no client library normalises the
// path), an API-only gateway when nothing was built, and the model origins an
// operator allows (GATEWAY_WEB_MODEL_ORIGINS: the CSP's connect-src and
// /config.json).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { AppError, createLogger } from '@bil/runtime';
import { buildApp } from './app.js';
import type { IdentityApi } from './identity-client.js';
import { CONTENT_SECURITY_POLICY, openWebApp, parseModelOrigins, type WebApp } from './web-app.js';
import { loadGatewayConfig } from './config.js';
import { unavailableChat } from '../test/fixtures.js';

const INDEX = '<!doctype html><html lang="en"><title>bil</title><script type="module" src="/assets/index-AbC123.js"></script></html>';
const SCRIPT = 'console.log("app")';
const CSS = 'body{margin:0}';

function unavailableIdentity(): IdentityApi {
  const down = () => Promise.reject(new AppError('unavailable', 'service_unavailable', 'identity is not part of this test'));
  return new Proxy({} as IdentityApi, { get: (_t, name) => (name === 'close' ? () => undefined : down) });
}

async function gateway(web: WebApp | null): Promise<FastifyInstance> {
  return buildApp({
    logger: createLogger('gateway-web-test', 'silent'),
    identity: unavailableIdentity(),
    chat: unavailableChat(),
    verifier: {
      verify: async () => {
        throw new AppError('unauthenticated', 'invalid_token', 'the access token is invalid');
      },
    },
    limiter: { hit: async () => ({ allowed: true, retryAfterSeconds: 0 }) },
    limits: { perIp: 10, perUsername: 10 },
    ready: async () => ({ identity: 'ok' }),
    bodyLimitBytes: 1024,
    trustProxyHops: 0,
    web,
  });
}

/** One raw HTTP/1.1 request, the path exactly as written. */
function rawGet(port: number, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('utf8')));
    socket.on('error', reject);
    socket.on('end', () => resolve({ status: Number(text.split(' ')[1]), text }));
  });
}

describe('the web client at / (gateway)', () => {
  let dir: string;
  let app: FastifyInstance;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bil-web-'));
    const root = join(dir, 'dist');
    mkdirSync(join(root, 'assets'), { recursive: true });
    writeFileSync(join(root, 'index.html'), INDEX);
    writeFileSync(join(root, 'assets', 'index-AbC123.js'), SCRIPT);
    writeFileSync(join(root, 'assets', 'index-AbC123.css'), CSS);
    writeFileSync(join(root, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    writeFileSync(join(dir, 'secret.txt'), 'outside the web root');
    symlinkSync(join(dir, 'secret.txt'), join(root, 'link.txt'));
    app = await gateway(openWebApp(root));
    await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html at / with a strict CSP and no caching', async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body).toBe(INDEX);
    expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe-inline');
    expect(CONTENT_SECURITY_POLICY).toContain("frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  it('serves hashed assets with their content types, cached for a year', async () => {
    const js = await app.inject({ method: 'GET', url: '/assets/index-AbC123.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.body).toBe(SCRIPT);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const css = await app.inject({ method: 'GET', url: '/assets/index-AbC123.css' });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    const svg = await app.inject({ method: 'GET', url: '/favicon.svg' });
    expect(svg.headers['content-type']).toBe('image/svg+xml');
    expect(svg.headers['cache-control']).toBe('no-cache');
    const head = await app.inject({ method: 'HEAD', url: '/assets/index-AbC123.js' });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
  });

  it('answers every other GET path with index.html (the app routes itself); a missing asset is 404', async () => {
    for (const url of ['/chats', '/chats/0193a0c4-1111-7000-8000-000000000001', '/login?next=1']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.body).toBe(INDEX);
    }
    const missing = await app.inject({ method: 'GET', url: '/assets/index-old.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
  });

  it('leaves the API alone: its routes answer, unknown API paths and other methods stay JSON 404s', async () => {
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.json()).toEqual({ status: 'ok' });
    const openapi = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(openapi.statusCode).toBe(200);
    expect(openapi.headers['content-type']).toMatch(/^application\/json/);
    const me = await app.inject({ method: 'GET', url: '/v1/me' });
    expect(me.statusCode).toBe(401);
    expect(me.json().error.code).toBe('missing_token');
    for (const [method, url] of [
      ['GET', '/v1/nope'],
      ['GET', '/v1'],
      ['GET', '/v1/ws'],
      ['POST', '/chats'],
      ['DELETE', '/'],
    ] as const) {
      const res = await app.inject({ method, url });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json().error.code).toBe('not_found');
    }
  });

  it('refuses path traversal, encoded or raw, and symlinks out of the web root', async () => {
    const { port } = app.server.address() as AddressInfo;
    for (const path of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%5c..%5csecret.txt', '/a%00b', '/%E0%A4%A']) {
      const res = await rawGet(port, path);
      expect(res.status, path).toBe(400);
      expect(res.text, path).toMatch(/"code":"(invalid_request|invalid_characters)"/);
      expect(res.text, path).not.toContain('outside the web root');
    }
    const link = await app.inject({ method: 'GET', url: '/link.txt' });
    expect(link.statusCode).toBe(404);
    expect(link.body).not.toContain('outside the web root');
  });

  it('without model origins: /config.json lists none and connect-src is this origin only', async () => {
    const res = await app.inject({ method: 'GET', url: '/config.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json()).toEqual({ model_origins: [] });
    expect(res.headers['content-security-policy']).toContain("connect-src 'self';");
  });

  it('with model origins: the CSP names exactly those in connect-src, and /config.json lists them', async () => {
    const { origins, problems } = parseModelOrigins(' https://api.openai.com , http://127.0.0.1:11434,https://api.openai.com/ ');
    expect(problems).toEqual([]);
    expect(origins).toEqual(['https://api.openai.com', 'http://127.0.0.1:11434']);
    const withModels = await gateway(openWebApp(join(dir, 'dist'), { modelOrigins: origins }));
    try {
      for (const url of ['/', '/config.json', '/chats/x']) {
        const res = await withModels.inject({ method: 'GET', url });
        const csp = String(res.headers['content-security-policy']);
        expect(csp).toContain("connect-src 'self' https://api.openai.com http://127.0.0.1:11434;");
        expect(csp.replace(/connect-src[^;]*;/, '')).toBe(CONTENT_SECURITY_POLICY.replace(/connect-src[^;]*;/, ''));
      }
      expect((await withModels.inject({ method: 'GET', url: '/config.json' })).json()).toEqual({ model_origins: origins });
    } finally {
      await withModels.close();
    }
  });

  it('refuses model origins that would widen the policy: not https (but loopback http), paths, wildcards, credentials', () => {
    for (const bad of ['http://api.example.com', 'https://api.example.com/v1', '*', 'https://*.example.com', 'https://u:p@api.example.com', 'ftp://127.0.0.1', "https://x.com 'unsafe-eval'", 'javascript:alert(1)']) {
      expect(parseModelOrigins(bad).problems, bad).toHaveLength(1);
    }
    expect(parseModelOrigins('http://localhost:8000,http://[::1]:9000').problems).toEqual([]);
    expect(parseModelOrigins(Array.from({ length: 17 }, (_, i) => `https://m${i}.example.com`).join(',')).problems).toHaveLength(1);
    expect(() => loadGatewayConfig({ GATEWAY_WEB_MODEL_ORIGINS: 'http://api.example.com' })).toThrow(/GATEWAY_WEB_MODEL_ORIGINS/);
    expect(loadGatewayConfig({ GATEWAY_WEB_MODEL_ORIGINS: 'https://api.example.com' }).GATEWAY_WEB_MODEL_ORIGINS).toBe('https://api.example.com');
  });

  it('without a built client: openWebApp is null and the gateway answers the API only', async () => {
    expect(openWebApp(join(dir, 'not-built'))).toBeNull();
    const apiOnly = await gateway(null);
    try {
      const res = await apiOnly.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('not_found');
      expect((await apiOnly.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await apiOnly.close();
    }
  });
});
