// A WebSocket upgrade delivery can't check (the token check's backend is down)
// is refused with 503 service_unavailable and Retry-After, in the API's error shape.
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { AppError, createLogger } from '@bil/runtime';
import { startWsServer } from './ws-server.js';

describe('delivery upgrade refusals', () => {
  it('answers 503 with Retry-After when the token check is unavailable', async () => {
    const ws = await startWsServer({
      host: '127.0.0.1',
      port: 0,
      maxFrameBytes: 1024,
      verify: () => Promise.reject(new AppError('unavailable', 'service_unavailable', 'Redis is down')),
      accept: async () => undefined,
      logger: createLogger('delivery-test', 'silent'),
    });
    try {
      const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const req = request({
          host: '127.0.0.1',
          port: ws.port,
          path: '/v1/ws',
          headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', authorization: 'Bearer a.b.c' },
        });
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
      expect(JSON.parse(res.body)).toEqual({ error: { code: 'service_unavailable', message: expect.any(String), details: { retry_after_seconds: 2 } } });
    } finally {
      await ws.close();
    }
  });
});
