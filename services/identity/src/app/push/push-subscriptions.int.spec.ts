// Push subscriptions on the real PostgreSQL: only the device's own token sets
// or deletes it, delivery's batch look-up finds it by user or device, it
// survives a rebuild of the read models, a 404/410 removes it only while it is
// still on that endpoint, and revoking the device removes it. Every change
// sends delivery a hint on the real NATS (infra/hints.ts), and nothing else does.
import { createECDH, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { decodePushSubscriptionsChanged, pushSubscriptionsChangedSubject } from '@bil/proto/events';
import { Database, EventStore, RevocationList, connectNats, connectRedis, createLogger, systemClock, type Nats, type Redis } from '@bil/runtime';
import { natsHints } from '../../infra/hints.js';
import { migrations } from '../../infra/migrations/Migration20261125000001.js';
import { identityReadModels } from '../projections/read-models.js';
import { IdentityApp } from '../identity-app.js';
import { TokenSigner } from '../tokens.js';
import { certify, newDevice, newIdentity } from '../../test-support.js';

const PASSWORD = 'correct horse battery';
let env: TestEnv;
let db: Database;
let store: EventStore;
let redis: Redis;
let app: IdentityApp;
let nats: Nats;
/** User ids of the hints heard, in order. */
const hints: string[] = [];

beforeAll(async () => {
  env = await createTestEnv('identity-push');
  db = await Database.connect({ url: env.databaseUrl, schema: 'identity', migrations });
  await db.migrate();
  redis = connectRedis(env.redisUrl, env.redisPrefix);
  store = new EventStore(db, [identityReadModels]);
  const settings = { refreshTtlSeconds: 3600, maxDevicesPerUser: 3, scrypt: { log2N: 14, r: 8, p: 1 }, pushEndpointHosts: ['fcm.googleapis.com'] };
  nats = await connectNats(env.natsUrl, env.natsPrefix, 'identity-push-test');
  nats.nc.subscribe(pushSubscriptionsChangedSubject(env.natsPrefix), {
    callback: (err, msg) => {
      const hint = err ? undefined : decodePushSubscriptionsChanged(msg.json());
      if (hint) hints.push(hint.userId);
    },
  });
  await nats.nc.flush();
  const logger = createLogger('identity-push-test', 'silent');
  const signer = await TokenSigner.create(undefined, [], 900);
  app = new IdentityApp(db, store, signer, new RevocationList(redis, 1000), settings, logger, systemClock, natsHints(nats, logger));
});

/** The hints heard after a round trip to NATS (a hint is published before the call returns). */
async function heard(): Promise<string[]> {
  await nats.nc.flush();
  await new Promise((r) => setTimeout(r, 20));
  return hints.splice(0);
}

afterAll(async () => {
  await nats?.nc.close();
  redis?.disconnect();
  await db?.close();
  await env?.cleanup();
});

async function signedInDevice(username: string) {
  const user = await app.registerUser({ username, password: PASSWORD });
  const device = newDevice();
  const r = await app.registerDevice({ username, password: PASSWORD, deviceName: 'laptop', ...device, ...certify(newIdentity(), user.userId, device), resetIdentity: false });
  return { userId: user.userId, deviceId: r.device.deviceId, sessionId: r.tokens.sessionId };
}

const subscription = () => ({
  endpoint: `https://fcm.googleapis.com/fcm/send/${randomBytes(8).toString('hex')}`,
  p256dh: createECDH('prime256v1').generateKeys().toString('base64url'),
  auth: randomBytes(16).toString('base64url'),
});

const codeOf = async (p: Promise<unknown>) => p.then(() => 'no error', (err: { code?: string }) => err.code);

describe('push subscriptions', () => {
  it('are set by the device itself only, found by user and by device, and kept by a read-model rebuild', async () => {
    const alice = await signedInDevice('push_alice');
    const mallory = await signedInDevice('push_mallory');
    const sub = subscription();
    expect(await codeOf(app.setPushSubscription(mallory, { deviceId: alice.deviceId, ...sub }))).toBe('not_own_device');
    expect(await codeOf(app.setPushSubscription(alice, { deviceId: alice.deviceId, ...sub, endpoint: 'https://example.com/x' }))).toBe('push_endpoint_not_allowed');
    const stored = await app.setPushSubscription(alice, { deviceId: alice.deviceId, ...sub });
    expect(stored).toMatchObject({ deviceId: alice.deviceId, userId: alice.userId, ...sub });
    const replacement = subscription();
    await app.setPushSubscription(alice, { deviceId: alice.deviceId, ...replacement });

    expect(await app.listPushSubscriptions([], [alice.userId, mallory.userId])).toEqual([expect.objectContaining({ deviceId: alice.deviceId, endpoint: replacement.endpoint })]);
    expect(await app.listPushSubscriptions([alice.deviceId], [])).toHaveLength(1);
    expect(await codeOf(app.listPushSubscriptions(['not-a-uuid'], []))).toBe('invalid_id');

    await store.rebuildProjections(50);
    expect(await app.listPushSubscriptions([alice.deviceId], [])).toHaveLength(1);

    expect(await codeOf(app.deletePushSubscription(mallory, alice.deviceId))).toBe('not_own_device');
    expect(await app.deletePushSubscription(alice, alice.deviceId)).toBe(true);
    expect(await app.deletePushSubscription(alice, alice.deviceId)).toBe(false);
  });

  it('a gone endpoint removes the subscription only while it is still on that endpoint; revoking the device removes it', async () => {
    const bob = await signedInDevice('push_bob');
    const old = subscription();
    await app.setPushSubscription(bob, { deviceId: bob.deviceId, ...old });
    const fresh = subscription();
    await app.setPushSubscription(bob, { deviceId: bob.deviceId, ...fresh });
    expect(await app.deletePushSubscriptionByEndpoint(bob.deviceId, old.endpoint)).toBe(false);
    expect(await app.listPushSubscriptions([bob.deviceId], [])).toHaveLength(1);

    await app.revokeDevice(bob, bob.deviceId);
    expect(await db.query(`SELECT 1 FROM identity.push_subscriptions WHERE device_id = ?`, [bob.deviceId])).toEqual([]);
    expect(await app.listPushSubscriptions([bob.deviceId], [bob.userId])).toEqual([]);
  });

  it('tells delivery (a hint on NATS) after each set or removal, and only then', async () => {
    const carol = await signedInDevice('push_carol');
    const mallory = await signedInDevice('push_mallory2');
    await heard();
    const sub = subscription();
    await app.setPushSubscription(carol, { deviceId: carol.deviceId, ...sub });
    expect(await heard()).toEqual([carol.userId]);
    // Refused or no-op: no hint.
    expect(await codeOf(app.setPushSubscription(mallory, { deviceId: carol.deviceId, ...sub }))).toBe('not_own_device');
    expect(await app.deletePushSubscription(mallory, mallory.deviceId)).toBe(false);
    expect(await app.deletePushSubscriptionByEndpoint(carol.deviceId, 'https://fcm.googleapis.com/fcm/send/other')).toBe(false);
    expect(await heard()).toEqual([]);
    // Removed by the device, and by delivery after a 404/410.
    expect(await app.deletePushSubscription(carol, carol.deviceId)).toBe(true);
    expect(await heard()).toEqual([carol.userId]);
    await app.setPushSubscription(carol, { deviceId: carol.deviceId, ...sub });
    expect(await app.deletePushSubscriptionByEndpoint(carol.deviceId, sub.endpoint)).toBe(true);
    expect(await heard()).toEqual([carol.userId, carol.userId]);
  });
});
