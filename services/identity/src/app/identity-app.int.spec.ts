import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { createTestEnv, eventually, expectSnapshotsEqualReplay, type TestEnv } from '@bil/testkit';
import {
  Database,
  EventStore,
  ManualClock,
  OutboxRelay,
  RevocationList,
  connectNats,
  connectRedis,
  contextStream,
  createLogger,
  ensureStream,
  type Nats,
  type Redis,
} from '@bil/runtime';
import { migrations } from '../infra/migrations/Migration20261125000001.js';
import { identityReadModels } from './projections/read-models.js';
import { IdentityApp } from './identity-app.js';
import { TokenSigner } from './tokens.js';
import { identityIntegrationEvent } from '../infra/integration-events.js';
import { certify, newDevice, newIdentity } from '../test-support.js';
import { userDecider } from '../domain/user/user.js';
import { deviceDecider } from '../domain/device/device.js';
import { sessionDecider } from '../domain/session/session.js';

const logger = createLogger('identity-test', 'silent');
let env: TestEnv;
let db: Database;
let store: EventStore;
let app: IdentityApp;
let redis: Redis;
let revocations: RevocationList;
let nats: Nats;
let relay: OutboxRelay;
const PASSWORD = 'correct horse battery';

async function build(database: Database) {
  const s = new EventStore(database, [identityReadModels]);
  const signer = await TokenSigner.create(undefined, [], 900);
  return {
    store: s,
    app: new IdentityApp(database, s, signer, revocations, { refreshTtlSeconds: 3600, maxDevicesPerUser: 3, scrypt: { log2N: 15, r: 8, p: 1 } }, logger),
  };
}

beforeAll(async () => {
  env = await createTestEnv('identity');
  db = await Database.connect({ url: env.databaseUrl, schema: 'identity', migrations });
  await db.migrate();
  redis = connectRedis(env.redisUrl, env.redisPrefix);
  revocations = new RevocationList(redis, 1000);
  ({ store, app } = await build(db));
  nats = await connectNats(env.natsUrl, env.natsPrefix, 'identity-test');
  await ensureStream(nats, 'identity');
  relay = new OutboxRelay({ db, nats, logger, toMessage: (e) => identityIntegrationEvent(nats.prefix, e), pollIntervalMs: 20 });
  relay.attach(store);
  relay.start();
});

afterAll(async () => {
  await relay?.stop();
  await nats?.nc.close();
  redis?.disconnect();
  await db?.close();
  await env?.cleanup();
});

async function registerWithDevice(username: string) {
  const user = await app.registerUser({ username, password: PASSWORD });
  const identity = newIdentity();
  const device = newDevice();
  const r = await app.registerDevice({
    username,
    password: PASSWORD,
    deviceName: 'laptop',
    ...device,
    ...certify(identity, user.userId, device),
    resetIdentity: false,
  });
  return { user, identity, ...r };
}

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

describe('identity application', () => {
  it('registers users with usernames unique regardless of case', async () => {
    const u = await app.registerUser({ username: 'Carol', password: PASSWORD, displayName: 'Carol C' });
    expect(u).toMatchObject({ username: 'Carol', displayName: 'Carol C', identityKey: null });
    expect(await codeOf(app.registerUser({ username: 'carol', password: PASSWORD }))).toBe('username_taken');
    expect((await app.findUser('CAROL')).userId).toBe(u.userId);
  });

  it('keeps usernames unique under concurrent registration', async () => {
    const results = await Promise.allSettled(
      ['Racer', 'racer', 'RACER'].map((username) => app.registerUser({ username, password: PASSWORD })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    // Two of one name may hash at once (hash-queue.ts, perAccount 2): the third is refused before hashing.
    expect(refused.map((r) => (r.reason as { code?: string }).code).sort()).toEqual(['rate_limited', 'username_taken']);
  });

  it('registers a first device, sets the identity key and lists it in the directory', async () => {
    const { user, identity, device, tokens } = await registerWithDevice('dave');
    const claims = decodeJwt(tokens.accessToken);
    expect(claims).toMatchObject({ sub: user.userId, did: device.deviceId, sid: tokens.sessionId, iss: 'bil-identity', aud: 'bil-api' });
    const dir = await app.listDevices(user.userId);
    expect(dir.identityKey).toBe(identity.publicKey);
    expect(dir.devices.map((d) => d.deviceId)).toEqual([device.deviceId]);
  });

  it('links a second device certified by the same identity key, and refuses a foreign one', async () => {
    const { user, identity } = await registerWithDevice('erin');
    const second = newDevice();
    const linked = await app.registerDevice({
      username: 'erin', password: PASSWORD, deviceName: 'phone', ...second, ...certify(identity, user.userId, second), resetIdentity: false,
    });
    expect((await app.listDevices(user.userId)).devices.map((d) => d.deviceId)).toContain(linked.device.deviceId);
    const rogue = newIdentity();
    const third = newDevice();
    expect(
      await codeOf(app.registerDevice({ username: 'erin', password: PASSWORD, deviceName: 'evil', ...third, ...certify(rogue, user.userId, third), resetIdentity: false })),
    ).toBe('identity_key_mismatch');
    const wrongUser = await app
      .registerDevice({ username: 'erin', password: PASSWORD, deviceName: 'x', ...third, ...certify(identity, '0193b2c4-0000-7000-8000-00000000dead', third), resetIdentity: false })
      .catch((err: { code: string; details: Record<string, unknown> }) => err);
    expect(wrongUser).toMatchObject({ code: 'invalid_certificate', details: { user_id: user.userId } });
    expect(
      await codeOf(app.registerDevice({ username: 'erin', password: 'wrong password!', deviceName: 'x', ...third, ...certify(identity, user.userId, third), resetIdentity: false })),
    ).toBe('invalid_credentials');
  });

  it('resets the identity: new key, every other device revoked at once', async () => {
    const { user, device, tokens } = await registerWithDevice('fay');
    const fresh = newIdentity();
    const d = newDevice();
    const r = await app.registerDevice({ username: 'fay', password: PASSWORD, deviceName: 'new phone', ...d, ...certify(fresh, user.userId, d), resetIdentity: true });
    const dir = await app.listDevices(user.userId);
    expect(dir.identityKey).toBe(fresh.publicKey);
    expect(dir.devices.map((x) => x.deviceId)).toEqual([r.device.deviceId]);
    expect(await revocations.isRevoked({ sub: user.userId, did: device.deviceId, sid: tokens.sessionId })).toBe(true);
  });

  it('caps the number of devices', async () => {
    const { user, identity } = await registerWithDevice('gus');
    for (let i = 0; i < 2; i++) {
      const d = newDevice();
      await app.registerDevice({ username: 'gus', password: PASSWORD, deviceName: `d${i}`, ...d, ...certify(identity, user.userId, d), resetIdentity: false });
    }
    const d = newDevice();
    expect(
      await codeOf(app.registerDevice({ username: 'gus', password: PASSWORD, deviceName: 'one too many', ...d, ...certify(identity, user.userId, d), resetIdentity: false })),
    ).toBe('too_many_devices');
  });

  it('logs in, rotates refresh tokens and ends the family when an old one is reused', async () => {
    const { device } = await registerWithDevice('hal');
    const login = await app.login({ username: 'HAL', password: PASSWORD, deviceId: device.deviceId });
    const second = await app.refresh({ refreshToken: login.tokens.refreshToken });
    expect(second.sessionId).toBe(login.tokens.sessionId);
    const third = await app.refresh({ refreshToken: second.refreshToken });
    expect(await codeOf(app.refresh({ refreshToken: login.tokens.refreshToken }))).toBe('refresh_token_reused');
    expect(await codeOf(app.refresh({ refreshToken: third.refreshToken }))).toBe('refresh_token_reused');
    expect(await revocations.isRevoked({ sub: login.userId, did: device.deviceId, sid: login.tokens.sessionId })).toBe(true);
    expect(await codeOf(app.refresh({ refreshToken: 'bil_rt.garbage' }))).toBe('invalid_refresh_token');
  });

  it('expires a session by its injected clock: a refresh within the TTL renews it, one past it ends it', async () => {
    const { device } = await registerWithDevice('ivo');
    const clock = new ManualClock(new Date());
    const settings = { refreshTtlSeconds: 3600, maxDevicesPerUser: 3, scrypt: { log2N: 15, r: 8, p: 1 } };
    const timed = new IdentityApp(db, store, await TokenSigner.create(undefined, [], 900), revocations, settings, logger, clock);
    const login = await timed.login({ username: 'ivo', password: PASSWORD, deviceId: device.deviceId });
    expect(login.tokens.refreshTokenExpiresAt).toBe(new Date(clock.now().getTime() + 3600_000).toISOString());
    clock.advance(3599_000);
    const renewed = await timed.refresh({ refreshToken: login.tokens.refreshToken });
    expect(renewed.refreshTokenExpiresAt).toBe(new Date(clock.now().getTime() + 3600_000).toISOString());
    clock.advance(3600_000);
    expect(await codeOf(timed.refresh({ refreshToken: renewed.refreshToken }))).toBe('session_expired');
  });

  it('a forged refresh token of an older generation does not end the victim session (issue 14 item 7)', async () => {
    const { device } = await registerWithDevice('hank');
    const login = await app.login({ username: 'hank', password: PASSWORD, deviceId: device.deviceId });
    const second = await app.refresh({ refreshToken: login.tokens.refreshToken });
    const forged = `bil_rt.${login.tokens.sessionId}.1.${'A'.repeat(43)}`;
    expect(await codeOf(app.refresh({ refreshToken: forged }))).toBe('invalid_refresh_token');
    expect(await codeOf(app.refresh({ refreshToken: `bil_rt.${login.tokens.sessionId}.2.${'B'.repeat(43)}` }))).toBe('invalid_refresh_token');
    expect(await revocations.isRevoked({ sub: login.userId, did: device.deviceId, sid: login.tokens.sessionId })).toBe(false);
    const third = await app.refresh({ refreshToken: second.refreshToken });
    expect(third.sessionId).toBe(login.tokens.sessionId);
  });

  it('logs out one session only', async () => {
    const { user, device, tokens } = await registerWithDevice('ida');
    const other = await app.login({ username: 'ida', password: PASSWORD, deviceId: device.deviceId });
    await app.logout({ userId: user.userId, deviceId: device.deviceId, sessionId: tokens.sessionId });
    expect(await revocations.isRevoked({ sub: user.userId, did: device.deviceId, sid: tokens.sessionId })).toBe(true);
    expect(await revocations.isRevoked({ sub: user.userId, did: device.deviceId, sid: other.tokens.sessionId })).toBe(false);
    expect(await codeOf(app.refresh({ refreshToken: tokens.refreshToken }))).toBe('invalid_refresh_token');
  });

  it('revokes a device: its tokens die, it cannot log in, and others cannot revoke it', async () => {
    const a = await registerWithDevice('jan');
    const b = await registerWithDevice('kim');
    const bActor = { userId: b.user.userId, deviceId: b.device.deviceId, sessionId: b.tokens.sessionId };
    expect(await codeOf(app.revokeDevice(bActor, a.device.deviceId))).toBe('device_not_found');
    const aActor = { userId: a.user.userId, deviceId: a.device.deviceId, sessionId: a.tokens.sessionId };
    await app.revokeDevice(aActor, a.device.deviceId);
    expect(await revocations.isRevoked({ sub: a.user.userId, did: a.device.deviceId, sid: 'x' })).toBe(true);
    expect(await codeOf(app.login({ username: 'jan', password: PASSWORD, deviceId: a.device.deviceId }))).toBe('device_revoked');
    expect(await codeOf(app.refresh({ refreshToken: a.tokens.refreshToken }))).toBe('invalid_refresh_token');
    expect((await app.listDevices(a.user.userId)).devices).toEqual([]);
  });

  it('changes the password and ends every other session', async () => {
    const { user, device, tokens } = await registerWithDevice('lee');
    const other = await app.login({ username: 'lee', password: PASSWORD, deviceId: device.deviceId });
    const actor = { userId: user.userId, deviceId: device.deviceId, sessionId: tokens.sessionId };
    expect(await codeOf(app.changePassword(actor, { oldPassword: 'not the password', newPassword: 'a brand new secret' }))).toBe('invalid_credentials');
    await app.changePassword(actor, { oldPassword: PASSWORD, newPassword: 'a brand new secret' });
    expect(await revocations.isRevoked({ sub: user.userId, did: device.deviceId, sid: other.tokens.sessionId })).toBe(true);
    expect(await revocations.isRevoked({ sub: user.userId, did: device.deviceId, sid: tokens.sessionId })).toBe(false);
    expect(await codeOf(app.login({ username: 'lee', password: PASSWORD, deviceId: device.deviceId }))).toBe('invalid_credentials');
    await app.login({ username: 'lee', password: 'a brand new secret', deviceId: device.deviceId });
  });

  it('deletes an account: devices revoked, tokens dead, username stays reserved', async () => {
    const { user, device, tokens } = await registerWithDevice('max');
    const actor = { userId: user.userId, deviceId: device.deviceId, sessionId: tokens.sessionId };
    await app.deleteAccount(actor, PASSWORD);
    expect(await revocations.isRevoked({ sub: user.userId, did: 'any', sid: 'any' })).toBe(true);
    expect(await codeOf(app.findUser('max'))).toBe('user_not_found');
    expect(await codeOf(app.registerUser({ username: 'Max', password: PASSWORD }))).toBe('username_taken');
    expect(await codeOf(app.login({ username: 'max', password: PASSWORD, deviceId: device.deviceId }))).toBe('invalid_credentials');
    // The documented account_deleted (issue 14 item 9): a genuine refresh token of the deleted account says so.
    expect(await codeOf(app.refresh({ refreshToken: tokens.refreshToken }))).toBe('account_deleted');
    expect(await codeOf(app.refresh({ refreshToken: `bil_rt.${tokens.sessionId}.1.${'C'.repeat(43)}` }))).toBe('invalid_refresh_token');
  });

  it('publishes integration events without secrets and keeps sessions private', async () => {
    const { user } = await registerWithDevice('ned');
    const stream = contextStream(nats.prefix, 'identity');
    const found = await eventually(async () => {
      const info = await nats.jsm.streams.info(stream);
      const subjects: string[] = [];
      const bodies: string[] = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await nats.jsm.streams.getMessage(stream, { seq });
        if (!m) continue;
        subjects.push(m.subject);
        bodies.push(m.string());
      }
      return bodies.some((b) => b.includes(user.userId) && b.includes('encryptionKey')) ? { subjects, bodies } : undefined;
    });
    expect(found.subjects).toContain(`${env.natsPrefix}identity.v1.user.registered`);
    expect(found.subjects).toContain(`${env.natsPrefix}identity.v1.device.registered`);
    expect(found.subjects).toContain(`${env.natsPrefix}identity.v1.device.revoked`);
    expect(found.subjects.some((s) => s.includes('session'))).toBe(false);
    expect(found.bodies.join()).not.toMatch(/passwordHash|tokenHash|scrypt\$/);
  });

  it('rebuilds the read models to exactly what the live projection made', async () => {
    const snapshot = async () => ({
      users: await db.query(`SELECT * FROM identity.users ORDER BY user_id`),
      devices: await db.query(`SELECT * FROM identity.devices ORDER BY device_id`),
      sessions: await db.query(`SELECT * FROM identity.sessions ORDER BY session_id`),
    });
    const live = await snapshot();
    expect(live.users.length).toBeGreaterThan(5);
    await store.rebuildProjections(50);
    expect(await snapshot()).toEqual(live);
  });

  it('keeps its data across a restart', async () => {
    const again = await Database.connect({ url: env.databaseUrl, schema: 'identity', migrations });
    try {
      expect(await again.migrate()).toEqual([]);
      const { app: restarted } = await build(again);
      const carol = await restarted.findUser('carol');
      expect(carol.username).toBe('Carol');
    } finally {
      await again.close();
    }
  });

  it('keeps every stored user, device and session state equal to the replay of its events, under the deciders\' state version', async () => {
    const checked = await expectSnapshotsEqualReplay(db, 'identity', { 'user-': userDecider, 'device-': deviceDecider, 'session-': sessionDecider });
    expect(checked).toBeGreaterThan(10);
  });
});
