// Signed device lists through the REST API (stubbed identity): the routes
// carry lists to identity as JSON text and serve them back as objects; the
// schema refuses malformed lists with 400 before identity sees them.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { AppError, createLogger } from '@bil/runtime';
import { buildApp } from './app.js';
import type { IdentityApi } from './identity-client.js';
import type { VerifiedActor } from './auth.js';
import { unavailableChat } from '../test/fixtures.js';

const USER_ID = '0193a0c4-1111-7000-8000-000000000001';
const DEVICE_ID = '0193a0c4-2222-7000-8000-000000000002';
const ACTOR: VerifiedActor = { userId: USER_ID, deviceId: DEVICE_ID, sessionId: 's1', expiresAt: Date.now() + 3_600_000 };
const ACTOR_MSG = { userId: USER_ID, deviceId: DEVICE_ID, sessionId: 's1' };
const LIST = {
  payload: {
    type: 'bil.device-list.v1',
    user_id: USER_ID,
    identity_key: 'k'.repeat(43),
    version: 2,
    devices: [{ device_id: DEVICE_ID, encryption_key: 'MIIB', signing_key: 's'.repeat(43), added_at: 1764100000000 }],
    created_at: 1764100001000,
  },
  signature: 'x'.repeat(86),
};
const DEVICE = {
  deviceId: DEVICE_ID,
  userId: USER_ID,
  name: 'laptop',
  encryptionKey: 'MIIB',
  signingKey: 's'.repeat(43),
  certificate: 'cert',
  certificateIssuedAt: '1764100000000',
  createdAt: '2025-01-01T00:00:00.000Z',
};
const USER = { userId: USER_ID, username: 'alice', displayName: '', identityKey: 'k'.repeat(43), identityKeyChangedAt: '', createdAt: '2025-01-01T00:00:00.000Z' };
const TOKENS = { accessToken: 'a', accessTokenExpiresAt: '', refreshToken: 'r', refreshTokenExpiresAt: '', tokenType: 'Bearer', sessionId: 's1' };

function stubIdentity(): IdentityApi {
  const notImplemented = () => Promise.reject(new AppError('internal', 'internal', 'stub'));
  return {
    registerUser: notImplemented,
    registerDevice: vi.fn(async () => ({ device: DEVICE, tokens: TOKENS })),
    login: notImplemented,
    refreshSession: notImplemented,
    logout: notImplemented,
    revokeDevice: vi.fn(async (req) => ({ deviceId: req.deviceId ?? '' })),
    getAccount: vi.fn(async () => ({ user: USER, devices: [DEVICE], deviceList: JSON.stringify(LIST) })),
    updateProfile: notImplemented,
    changePassword: notImplemented,
    deleteAccount: vi.fn(async () => ({})),
    findUser: notImplemented,
    listDevices: vi.fn(async () => ({ identityKey: USER.identityKey, devices: [DEVICE], deviceList: JSON.stringify(LIST) })),
    publishDeviceList: vi.fn(async () => ({ version: '2' })),
    setPushSubscription: notImplemented,
    deletePushSubscription: notImplemented,
    getJwks: notImplemented,
    checkHealth: vi.fn(async () => undefined),
    close: () => undefined,
  };
}

describe('device-list routes', () => {
  let app: FastifyInstance;
  let identity: IdentityApi;
  const auth = { authorization: 'Bearer good' };

  beforeAll(async () => {
    identity = stubIdentity();
    app = await buildApp({
      logger: createLogger('gateway-test', 'silent'),
      identity,
      chat: unavailableChat(),
      verifier: { verify: async () => ACTOR },
      limiter: { hit: async () => ({ allowed: true, retryAfterSeconds: 0 }) },
      limits: { perIp: 100, perUsername: 100 },
      ready: async () => ({ identity: 'ok' }),
      bodyLimitBytes: 64 * 1024,
      trustProxyHops: 0,
    });
  });
  afterAll(() => app.close());
  beforeEach(() => vi.clearAllMocks());

  it('the directory and /v1/me serve the latest list as an object, or null', async () => {
    const dir = await app.inject({ method: 'GET', url: `/v1/users/${USER_ID}/devices`, headers: auth });
    expect(dir.statusCode).toBe(200);
    expect(dir.json().device_list).toEqual(LIST);
    const me = await app.inject({ method: 'GET', url: '/v1/me', headers: auth });
    expect(me.json().device_list).toEqual(LIST);
    vi.mocked(identity.listDevices).mockResolvedValueOnce({ identityKey: USER.identityKey, devices: [DEVICE], deviceList: '' });
    const legacy = await app.inject({ method: 'GET', url: `/v1/users/${USER_ID}/devices`, headers: auth });
    expect(legacy.json()).toMatchObject({ device_list: null, devices: [{ device_id: DEVICE_ID }] });
  });

  it('register, revoke, publish and delete pass the list to identity as JSON text', async () => {
    const reg = await app.inject({
      method: 'POST',
      url: '/v1/auth/devices',
      payload: {
        username: 'alice', password: 'pw', device_name: 'phone', encryption_key: 'e', signing_key: 's', identity_key: 'i', certificate: 'c',
        certificate_issued_at: 1, device_id: DEVICE_ID, device_list: LIST,
      },
    });
    expect(reg.statusCode).toBe(201);
    expect(vi.mocked(identity.registerDevice).mock.calls[0]?.[0]).toMatchObject({ deviceId: DEVICE_ID, deviceList: JSON.stringify(LIST) });

    const revoke = await app.inject({ method: 'DELETE', url: `/v1/devices/${DEVICE_ID}`, headers: auth, payload: { device_list: LIST } });
    expect(revoke.statusCode).toBe(200);
    expect(identity.revokeDevice).toHaveBeenCalledWith({ actor: ACTOR_MSG, deviceId: DEVICE_ID, deviceList: JSON.stringify(LIST) });

    const put = await app.inject({ method: 'PUT', url: '/v1/me/device-list', headers: auth, payload: { device_list: LIST } });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toEqual({ version: 2 });
    expect(identity.publishDeviceList).toHaveBeenCalledWith({ actor: ACTOR_MSG, deviceList: JSON.stringify(LIST) });

    const closing = { ...LIST, payload: { ...LIST.payload, version: 3, devices: [] } };
    const del = await app.inject({ method: 'DELETE', url: '/v1/me', headers: auth, payload: { password: 'pw', device_list: closing } });
    expect(del.statusCode).toBe(204);
    expect(identity.deleteAccount).toHaveBeenCalledWith({ actor: ACTOR_MSG, password: 'pw', deviceList: JSON.stringify(closing) });
    await app.inject({ method: 'DELETE', url: '/v1/me', headers: auth, payload: { password: 'pw' } });
    expect(identity.deleteAccount).toHaveBeenLastCalledWith({ actor: ACTOR_MSG, password: 'pw', deviceList: '' });
  });

  it('malformed lists are 400 invalid_request before identity is called', async () => {
    const bad: unknown[] = [
      { ...LIST, extra: 1 },
      { payload: LIST.payload },
      { ...LIST, payload: { ...LIST.payload, version: 0 } },
      { ...LIST, payload: { ...LIST.payload, version: 1.5 } },
      { ...LIST, payload: { ...LIST.payload, type: 'other' } },
      { ...LIST, payload: { ...LIST.payload, devices: [{ ...LIST.payload.devices[0], extra: true }] } },
      { ...LIST, payload: { ...LIST.payload, devices: new Array(65).fill(LIST.payload.devices[0]) } },
      { ...LIST, signature: 'x'.repeat(87) },
      'text',
    ];
    for (const device_list of bad) {
      const res = await app.inject({ method: 'PUT', url: '/v1/me/device-list', headers: auth, payload: { device_list } });
      expect(res.statusCode, JSON.stringify(device_list).slice(0, 80)).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
    }
    const missing = await app.inject({ method: 'PUT', url: '/v1/me/device-list', headers: auth, payload: {} });
    expect(missing.statusCode).toBe(400);
    const revoke = await app.inject({ method: 'DELETE', url: `/v1/devices/${DEVICE_ID}`, headers: auth, payload: { device_list: bad[0] } });
    expect(revoke.statusCode).toBe(400);
    expect(identity.publishDeviceList).not.toHaveBeenCalled();
    expect(identity.revokeDevice).not.toHaveBeenCalled();
  });

  it("identity's refusals keep their status and stable code", async () => {
    const refusals = [
      new AppError('invalid_argument', 'invalid_device_list', 'device_list does not verify', { field: 'device_list' }),
      new AppError('conflict', 'device_list_version', 'the device list must have version 3', { current_version: 2, expected_version: 3 }),
      new AppError('failed_precondition', 'device_list_mismatch', 'mismatch', { missing_device_ids: [DEVICE_ID], unexpected_device_ids: [] }),
    ];
    for (const [i, err] of refusals.entries()) {
      vi.mocked(identity.publishDeviceList).mockRejectedValueOnce(err);
      const res = await app.inject({ method: 'PUT', url: '/v1/me/device-list', headers: auth, payload: { device_list: LIST } });
      expect(res.statusCode).toBe([400, 409, 409][i]);
      expect(res.json().error).toMatchObject({ code: err.code, details: err.details });
    }
  });

  it('the OpenAPI document names the DeviceList schema and the publish route', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
    expect(JSON.stringify(doc)).toContain('bil.device-list.v1');
    expect(doc.paths['/v1/me/device-list']?.put).toBeDefined();
  });
});
