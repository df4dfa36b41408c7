import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { AppError, createLogger, correlationId } from '@bil/runtime';
import { buildApp } from './app.js';
import type { IdentityApi } from './identity-client.js';
import type { VerifiedActor } from './auth.js';
import { unavailableChat } from '../test/fixtures.js';

const USER = {
  userId: '0193a0c4-1111-7000-8000-000000000001',
  username: 'Alice',
  displayName: 'Alice A.',
  identityKey: '',
  identityKeyChangedAt: '',
  createdAt: '2025-01-01T00:00:00.000Z',
};
const DEVICE = {
  deviceId: '0193a0c4-2222-7000-8000-000000000002',
  userId: USER.userId,
  name: 'laptop',
  encryptionKey: 'enc',
  signingKey: 'sig',
  certificate: 'cert',
  certificateIssuedAt: '1764100000000',
  createdAt: '2025-01-01T00:00:00.000Z',
};
const TOKENS = {
  accessToken: 'a.b.c',
  accessTokenExpiresAt: '2025-01-01T00:15:00.000Z',
  refreshToken: 'r',
  refreshTokenExpiresAt: '2025-02-01T00:00:00.000Z',
  tokenType: 'Bearer',
  sessionId: 's1',
};
const ACTOR: VerifiedActor = { userId: USER.userId, deviceId: DEVICE.deviceId, sessionId: 's1', expiresAt: Date.now() + 3_600_000 };
/** The actor as the gateway passes it to the services (the token's expiry stays at the edge). */
const ACTOR_MSG = { userId: ACTOR.userId, deviceId: ACTOR.deviceId, sessionId: ACTOR.sessionId };

function stubIdentity(): IdentityApi {
  const notImplemented = () => Promise.reject(new AppError('internal', 'internal', 'stub'));
  return {
    registerUser: vi.fn(async () => ({ user: USER })),
    registerDevice: vi.fn(async () => ({ device: DEVICE, tokens: TOKENS })),
    login: vi.fn(async () => ({ userId: USER.userId, tokens: TOKENS })),
    refreshSession: vi.fn(async () => ({ tokens: TOKENS })),
    logout: vi.fn(async () => ({})),
    revokeDevice: vi.fn(async (req) => ({ deviceId: req.deviceId ?? '' })),
    getAccount: vi.fn(async () => ({ user: USER, devices: [DEVICE], deviceList: '' })),
    updateProfile: vi.fn(async () => ({ user: USER })),
    changePassword: vi.fn(async () => ({})),
    deleteAccount: vi.fn(async () => ({})),
    findUser: vi.fn(async () => ({ user: USER })),
    listDevices: vi.fn(async () => ({ identityKey: 'ik', devices: [DEVICE], deviceList: '' })),
    publishDeviceList: vi.fn(async () => ({ version: '1' })),
    setPushSubscription: notImplemented,
    deletePushSubscription: notImplemented,
    getJwks: notImplemented,
    checkHealth: vi.fn(async () => undefined),
    close: () => undefined,
  };
}

describe('gateway app (stubbed backends)', () => {
  let app: FastifyInstance;
  let identity: IdentityApi;
  let limited = false;
  const seenCorrelation: Array<string | undefined> = [];

  beforeAll(async () => {
    identity = stubIdentity();
    vi.mocked(identity.findUser).mockImplementation(async () => {
      seenCorrelation.push(correlationId());
      return { user: USER };
    });
    app = await buildApp({
      logger: createLogger('gateway-test', 'silent'),
      identity,
      chat: unavailableChat(),
      verifier: {
        verify: async (token) => {
          if (token === 'good') return ACTOR;
          throw new AppError('unauthenticated', 'invalid_token', 'the access token is invalid');
        },
      },
      limiter: { hit: async () => (limited ? { allowed: false, retryAfterSeconds: 42 } : { allowed: true, retryAfterSeconds: 0 }) },
      limits: { perIp: 1, perUsername: 1 },
      ready: async () => ({ identity: 'ok', redis: 'down' }),
      bodyLimitBytes: 1024,
      trustProxyHops: 0,
    });
  });
  afterAll(() => app.close());

  const auth = { authorization: 'Bearer good' };

  it('registers and maps the user to snake_case', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/auth/register', payload: { username: 'Alice', password: 'correct horse battery' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      user: {
        user_id: USER.userId,
        username: 'Alice',
        display_name: 'Alice A.',
        identity_key: '',
        identity_key_changed_at: '',
        created_at: USER.createdAt,
      },
    });
    expect(identity.registerUser).toHaveBeenCalledWith({ username: 'Alice', password: 'correct horse battery', displayName: '' });
  });

  it('converts certificate_issued_at between number and int64 string', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/devices',
      payload: {
        username: 'alice',
        password: 'pw',
        device_name: 'laptop',
        encryption_key: 'e',
        signing_key: 's',
        identity_key: 'i',
        certificate: 'c',
        certificate_issued_at: 1764100000000,
      },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().device.certificate_issued_at).toBe(1764100000000);
    expect(res.json().tokens.token_type).toBe('Bearer');
    expect(vi.mocked(identity.registerDevice).mock.calls[0]?.[0]).toMatchObject({
      certificateIssuedAt: '1764100000000',
      resetIdentity: false,
      deviceName: 'laptop',
    });
  });

  it('answers invalid_json for malformed JSON', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"username":',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_json');
  });

  it('refuses prototype pollution as invalid_json', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/refresh',
      headers: { 'content-type': 'application/json' },
      payload: '{"refresh_token":"x","__proto__":{"admin":true}}',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_json');
  });

  it('answers payload_too_large over the body limit', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/refresh',
      payload: { refresh_token: 'x'.repeat(2000) },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ error: { code: 'payload_too_large', message: expect.any(String), details: {} } });
  });

  it('answers unsupported_media_type for non-JSON bodies', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/refresh',
      headers: { 'content-type': 'text/plain' },
      payload: 'refresh_token=x',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('unsupported_media_type');
  });

  it('answers not_found for unknown routes', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
  });

  it.each([
    [{ password: 'x', device_id: DEVICE.deviceId }, 'username', 'is required'],
    [{ username: 5, password: 'x', device_id: DEVICE.deviceId }, 'username', 'must be string'],
    [{ username: 'a', password: 'x', device_id: 'not-a-uuid' }, 'device_id', 'must match format "uuid"'],
    [{ username: 'a', password: 'x', device_id: DEVICE.deviceId, admin: true }, 'admin', 'is not allowed'],
    [{ username: 'a'.repeat(65), password: 'x', device_id: DEVICE.deviceId }, 'username', 'must NOT have more than 64 characters'],
  ])('names the field of a schema failure: %j', async (payload, field, reason) => {
    const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'invalid_request', details: { location: 'body', field, reason } });
  });

  it('refuses a missing body as invalid_request, also with an empty JSON body', async () => {
    for (const headers of [{}, { 'content-type': 'application/json' }]) {
      const res = await app.inject({ method: 'POST', url: '/v1/auth/refresh', headers, payload: '' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
    }
  });

  it('does not coerce types (a numeric string is not an integer)', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/devices',
      payload: {
        username: 'alice',
        password: 'pw',
        device_name: 'laptop',
        encryption_key: 'e',
        signing_key: 's',
        identity_key: 'i',
        certificate: 'c',
        certificate_issued_at: '1764100000000',
      },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details.field).toBe('certificate_issued_at');
  });

  it('requires a bearer token with a WWW-Authenticate challenge', async () => {
    const missing = await app.inject({ method: 'GET', url: '/v1/me' });
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error.code).toBe('missing_token');
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    const bad = await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: 'Bearer nope' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error.code).toBe('invalid_token');
    expect(bad.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('checks the token before parsing the body', async () => {
    const res = await app.inject({
      method: 'PATCH',
      url: '/v1/me',
      headers: { 'content-type': 'application/json' },
      payload: '{not json',
    });
    expect(res.statusCode).toBe(401);
  });

  it('passes the verified actor to identity', async () => {
    const res = await app.inject({ method: 'DELETE', url: `/v1/devices/${DEVICE.deviceId}`, headers: auth });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ device_id: DEVICE.deviceId });
    expect(identity.revokeDevice).toHaveBeenCalledWith({ actor: ACTOR_MSG, deviceId: DEVICE.deviceId, deviceList: '' });
    const me = await app.inject({ method: 'GET', url: '/v1/me', headers: auth });
    expect(me.json().devices).toHaveLength(1);
    const out = await app.inject({ method: 'POST', url: '/v1/auth/logout', headers: auth });
    expect(out.statusCode).toBe(204);
    expect(out.body).toBe('');
  });

  it('echoes a sane correlation id and forwards it; replaces an unsafe one', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/users?username=alice', headers: { ...auth, 'x-correlation-id': 'req-123' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-correlation-id']).toBe('req-123');
    expect(seenCorrelation.at(-1)).toBe('req-123');
    const unsafe = await app.inject({ method: 'GET', url: '/v1/users?username=alice', headers: { ...auth, 'x-correlation-id': 'a b\u0001' } });
    expect(unsafe.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seenCorrelation.at(-1)).toBe(unsafe.headers['x-correlation-id']);
  });

  it('maps identity AppErrors to status, code, message and details', async () => {
    vi.mocked(identity.registerUser).mockRejectedValueOnce(
      new AppError('already_exists', 'username_taken', 'username is taken', { username: 'alice' }),
    );
    const res = await app.inject({ method: 'POST', url: '/v1/auth/register', payload: { username: 'alice', password: 'pw' } });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ error: { code: 'username_taken', message: 'username is taken', details: { username: 'alice' } } });
  });

  it('answers 503 service_unavailable and 504 without internals', async () => {
    vi.mocked(identity.findUser).mockRejectedValueOnce(new AppError('unavailable', 'service_unavailable', 'a backend service is unavailable, try again'));
    const down = await app.inject({ method: 'GET', url: '/v1/users?username=alice', headers: auth });
    expect(down.statusCode).toBe(503);
    expect(down.json().error.code).toBe('service_unavailable');
    expect(down.headers['retry-after']).toBe('2');
    vi.mocked(identity.findUser).mockRejectedValueOnce(new AppError('deadline_exceeded', 'timeout', 'a backend service did not answer in time'));
    const slow = await app.inject({ method: 'GET', url: '/v1/users?username=alice', headers: auth });
    expect(slow.statusCode).toBe(504);
  });

  it('answers 500 internal for bugs without leaking the message', async () => {
    vi.mocked(identity.getAccount).mockRejectedValueOnce(new Error('connection string postgres://secret'));
    const res = await app.inject({ method: 'GET', url: '/v1/me', headers: auth });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'internal', message: 'internal error', details: {} } });
  });

  it('answers 429 rate_limited with Retry-After', async () => {
    limited = true;
    try {
      const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'a', password: 'b', device_id: DEVICE.deviceId } });
      expect(res.statusCode).toBe(429);
      expect(res.headers['retry-after']).toBe('42');
      expect(res.json().error).toMatchObject({ code: 'rate_limited', details: { retry_after_seconds: 42 } });
    } finally {
      limited = false;
    }
  });

  it('reports readiness per dependency: Redis down leaves the gateway ready, degraded', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'degraded', checks: { identity: 'ok', redis: 'down' } });
  });

  it('serves an OpenAPI 3 document with bearer auth and error responses', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/v1/me'].get.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths['/v1/auth/register'].post.security).toBeUndefined();
    expect(doc.paths['/v1/auth/register'].post.responses['429']).toBeDefined();
    expect(Object.keys(doc.paths['/v1/devices/{device_id}'])).toEqual(['delete']);
  });
});
