// The Web Push routes (stubbed identity): the VAPID key or 503 when push is
// off, the browser's PushSubscription JSON passed to identity as the caller's
// actor and device, schema refusals before identity is asked, identity's
// codes passed on with their status.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { AppError, createLogger } from '@bil/runtime';
import { buildApp, type AppDeps } from './app.js';
import type { IdentityApi } from './identity-client.js';
import type { VerifiedActor } from './auth.js';
import { unavailableChat } from '../test/fixtures.js';

const USER_ID = '0193a0c4-1111-7000-8000-000000000001';
const DEVICE_ID = '0193a0c4-2222-7000-8000-000000000002';
const ACTOR: VerifiedActor = { userId: USER_ID, deviceId: DEVICE_ID, sessionId: 's1', expiresAt: Date.now() + 3_600_000 };
const VAPID = 'B'.repeat(87);
const SUBSCRIPTION = { endpoint: 'https://fcm.googleapis.com/fcm/send/abc', expirationTime: null, keys: { p256dh: 'p'.repeat(87), auth: 'a'.repeat(22) } };

function identityStub(): IdentityApi {
  return {
    setPushSubscription: vi.fn(async (req) => ({
      subscription: { deviceId: req.deviceId ?? '', userId: USER_ID, endpoint: req.endpoint ?? '', p256dh: '', auth: '', createdAt: '2026-12-05T00:00:00.000Z' },
    })),
    deletePushSubscription: vi.fn(async () => ({ deleted: true })),
  } as Partial<IdentityApi> as IdentityApi;
}

async function appWith(identity: IdentityApi, extra: Partial<AppDeps>): Promise<FastifyInstance> {
  return buildApp({
    logger: createLogger('gateway-test', 'silent'),
    identity,
    chat: unavailableChat(),
    verifier: { verify: async () => ACTOR },
    limiter: { hit: async () => ({ allowed: true, retryAfterSeconds: 0 }) },
    limits: { perIp: 100, perUsername: 100 },
    ready: async () => ({ identity: 'ok' }),
    bodyLimitBytes: 64 * 1024,
    trustProxyHops: 0,
    ...extra,
  });
}

describe('push routes', () => {
  let app: FastifyInstance;
  let off: FastifyInstance;
  let identity: IdentityApi;
  const auth = { authorization: 'Bearer good' };
  const url = `/v1/devices/${DEVICE_ID}/push-subscription`;

  beforeAll(async () => {
    identity = identityStub();
    app = await appWith(identity, { vapidPublicKey: VAPID });
    off = await appWith(identity, {});
  });
  afterAll(async () => {
    await app.close();
    await off.close();
  });
  beforeEach(() => vi.clearAllMocks());

  it('serve the VAPID public key without a token, or 503 push_unavailable when push is off', async () => {
    const on = await app.inject({ method: 'GET', url: '/v1/push/vapid-key' });
    expect(on.statusCode).toBe(200);
    expect(on.json()).toEqual({ vapid_public_key: VAPID });
    const none = await off.inject({ method: 'GET', url: '/v1/push/vapid-key' });
    expect(none.statusCode).toBe(503);
    expect(none.json().error.code).toBe('push_unavailable');
  });

  it('pass the browser subscription to identity with the caller as actor', async () => {
    const res = await app.inject({ method: 'PUT', url, headers: auth, payload: SUBSCRIPTION });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ device_id: DEVICE_ID, created_at: '2026-12-05T00:00:00.000Z' });
    expect(vi.mocked(identity.setPushSubscription).mock.calls[0]?.[0]).toEqual({
      actor: { userId: USER_ID, deviceId: DEVICE_ID, sessionId: 's1' },
      deviceId: DEVICE_ID,
      endpoint: SUBSCRIPTION.endpoint,
      p256dh: SUBSCRIPTION.keys.p256dh,
      auth: SUBSCRIPTION.keys.auth,
    });
    const del = await app.inject({ method: 'DELETE', url, headers: auth });
    expect(del.statusCode).toBe(204);
    expect(vi.mocked(identity.deletePushSubscription).mock.calls[0]?.[0]).toMatchObject({ deviceId: DEVICE_ID });
  });

  it('refuse a malformed subscription with 400 before identity, and pass identity\'s codes on', async () => {
    for (const payload of [
      { ...SUBSCRIPTION, keys: { p256dh: SUBSCRIPTION.keys.p256dh } },
      { ...SUBSCRIPTION, endpoint: `https://fcm.googleapis.com/${'x'.repeat(2100)}` },
      { ...SUBSCRIPTION, extra: 1 },
    ]) {
      const res = await app.inject({ method: 'PUT', url, headers: auth, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
    }
    expect(identity.setPushSubscription).not.toHaveBeenCalled();
    vi.mocked(identity.setPushSubscription).mockRejectedValueOnce(new AppError('invalid_argument', 'push_endpoint_not_allowed', 'push service host evil.example is not allowed here'));
    const refused = await app.inject({ method: 'PUT', url, headers: auth, payload: SUBSCRIPTION });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.code).toBe('push_endpoint_not_allowed');
    vi.mocked(identity.setPushSubscription).mockRejectedValueOnce(new AppError('permission_denied', 'not_own_device', 'a device may only manage its own push subscription'));
    const other = await app.inject({ method: 'PUT', url, headers: auth, payload: SUBSCRIPTION });
    expect(other.statusCode).toBe(403);
  });
});
