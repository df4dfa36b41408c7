// Signed device lists against the real PostgreSQL: what the identity service
// stores, serves and refuses (docs/identity.md "Signed device lists").
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { Database, EventStore, RevocationList, connectRedis, createLogger, type Redis } from '@bil/runtime';
import { certifyDevice, generateIdentityKey, signDeviceList, type DeviceListEntry, type Ed25519KeyPair } from '@bil/crypto';
import { migrations } from '../infra/migrations/Migration20261125000001.js';
import { identityReadModels } from './projections/read-models.js';
import { IdentityApp, type Actor } from './identity-app.js';
import { TokenSigner } from './tokens.js';
import { newDevice, type TestDevice } from '../test-support.js';
import { MAX_DEVICE_LIST_CHARS } from './device-lists.js';

const logger = createLogger('identity-test', 'silent');
const PASSWORD = 'correct horse battery';
let env: TestEnv;
let db: Database;
let app: IdentityApp;
let redis: Redis;

beforeAll(async () => {
  env = await createTestEnv('identity-devlist');
  db = await Database.connect({ url: env.databaseUrl, schema: 'identity', migrations });
  await db.migrate();
  redis = connectRedis(env.redisUrl, env.redisPrefix);
  const store = new EventStore(db, [identityReadModels]);
  const signer = await TokenSigner.create(undefined, [], 900);
  app = new IdentityApp(db, store, signer, new RevocationList(redis, 1000), { refreshTtlSeconds: 3600, maxDevicesPerUser: 4, scrypt: { log2N: 15, r: 8, p: 1 } }, logger);
});

afterAll(async () => {
  redis?.disconnect();
  await db?.close();
  await env?.cleanup();
});

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

interface Account {
  userId: string;
  username: string;
  identity: Ed25519KeyPair;
  devices: Map<string, TestDevice & { addedAt: number }>;
  actor: Actor;
}

const entryOf = (id: string, d: TestDevice & { addedAt: number }): DeviceListEntry => ({
  device_id: id,
  encryption_key: d.encryptionKey,
  signing_key: d.signingKey,
  added_at: d.addedAt,
});

/** The list of `a`'s devices with `ids` (default: all it knows), as JSON text. */
function listText(a: Account, version: number, ids = [...a.devices.keys()], identity = a.identity): string {
  const devices = ids.map((id) => entryOf(id, a.devices.get(id)!));
  return JSON.stringify(signDeviceList({ identity, userId: a.userId, version, devices, createdAt: Date.now() }));
}

function certified(a: Account, d: TestDevice, identity = a.identity) {
  const cert = certifyDevice({ identity, userId: a.userId, device: { encryption_key: d.encryptionKey, signing_key: d.signingKey }, issuedAt: Date.now() });
  return { identityKey: cert.identity_key, certificate: cert.certificate, certificateIssuedAt: cert.issued_at };
}

/** A device to register: its keys, certificate and a client-chosen id. */
function prepare(a: Account, identity = a.identity) {
  const id = randomUUID();
  const d = { ...newDevice(), addedAt: Date.now() };
  return { id, d, input: { username: a.username, password: PASSWORD, deviceName: 'dev', ...d, ...certified(a, d, identity), resetIdentity: false, deviceId: id } };
}

async function account(name: string, withList = true): Promise<Account> {
  const user = await app.registerUser({ username: name, password: PASSWORD });
  const a: Account = { userId: user.userId, username: name, identity: generateIdentityKey(), devices: new Map(), actor: undefined as never };
  const { id, d, input } = prepare(a);
  a.devices.set(id, d);
  const r = await app.registerDevice({ ...input, deviceList: withList ? listText(a, 1) : undefined });
  expect(r.device.deviceId).toBe(id);
  a.actor = { userId: a.userId, deviceId: id, sessionId: r.tokens.sessionId };
  return a;
}

const served = async (a: Account) => {
  const dir = await app.listDevices(a.userId);
  return { ids: dir.devices.map((d) => d.deviceId).sort(), list: dir.deviceList ? (JSON.parse(dir.deviceList) as { payload: { version: number; devices: { device_id: string }[] } }) : null };
};

describe('signed device lists (identity service)', () => {
  it('the first device registers with version 1 under a client-chosen id; directory and account serve the list', async () => {
    const a = await account('dl_first');
    const { ids, list } = await served(a);
    expect(ids).toEqual([a.actor.deviceId]);
    expect(list?.payload.version).toBe(1);
    expect(list?.payload.devices.map((d) => d.device_id)).toEqual([a.actor.deviceId]);
    expect((await app.getAccount(a.actor)).deviceList).toBe(JSON.stringify(list));
  });

  it('linking needs the next list naming exactly the active devices, signed by the identity key', async () => {
    const a = await account('dl_link');
    const { id, d, input } = prepare(a);
    expect(await codeOf(app.registerDevice(input))).toBe('device_list_required');
    a.devices.set(id, d);
    expect(await codeOf(app.registerDevice({ ...input, deviceList: listText(a, 1) }))).toBe('device_list_version');
    expect(await codeOf(app.registerDevice({ ...input, deviceList: listText(a, 3) }))).toBe('device_list_version');
    expect(await codeOf(app.registerDevice({ ...input, deviceList: listText(a, 2, [id]) }))).toBe('device_list_mismatch');
    expect(await codeOf(app.registerDevice({ ...input, deviceList: listText(a, 2, [a.actor.deviceId]) }))).toBe('device_list_mismatch');
    expect(await codeOf(app.registerDevice({ ...input, deviceList: listText(a, 2, undefined, generateIdentityKey()) }))).toBe('invalid_device_list');
    expect(await codeOf(app.registerDevice({ ...input, deviceList: '{"payload":' }))).toBe('invalid_device_list');
    expect(await codeOf(app.registerDevice({ ...input, deviceList: 'x'.repeat(MAX_DEVICE_LIST_CHARS + 1) }))).toBe('invalid_device_list');
    // Same id, other keys in the list: the server's record must match.
    const other = { ...a, devices: new Map(a.devices) };
    other.devices.set(id, { ...newDevice(), addedAt: 1 });
    const swapped = listText(other, 2);
    if (other.devices.get(id)!.signingKey !== d.signingKey) expect(await codeOf(app.registerDevice({ ...input, deviceList: swapped }))).toBe('device_list_mismatch');
    // Nothing of the refused attempts stuck.
    expect((await served(a)).ids).toEqual([a.actor.deviceId]);
    await app.registerDevice({ ...input, deviceList: listText(a, 2) });
    const { ids, list } = await served(a);
    expect(ids).toEqual([...a.devices.keys()].sort());
    expect(list?.payload.version).toBe(2);
  });

  it('revocation with the next list; without one (no seed) the list stays until someone publishes; rollback is refused', async () => {
    const a = await account('dl_revoke');
    const second = prepare(a);
    const third = prepare(a);
    a.devices.set(second.id, second.d);
    await app.registerDevice({ ...second.input, deviceList: listText(a, 2) });
    a.devices.set(third.id, third.d);
    await app.registerDevice({ ...third.input, deviceList: listText(a, 3) });

    // With a list: it must not name the revoked device.
    expect(await codeOf(app.revokeDevice(a.actor, third.id, listText(a, 4)))).toBe('device_list_mismatch');
    expect((await served(a)).ids).toContain(third.id); // refused as a whole: not revoked
    a.devices.delete(third.id);
    await app.revokeDevice(a.actor, third.id, listText(a, 4));
    expect((await served(a)).list?.payload.version).toBe(4);

    // Without a list (a device without the seed): revoked, the stored list still names it.
    await app.revokeDevice(a.actor, second.id);
    let s = await served(a);
    expect(s.ids).toEqual([a.actor.deviceId]);
    expect(s.list?.payload.devices.map((d) => d.device_id)).toContain(second.id);
    expect(await codeOf(app.publishDeviceList(a.actor, listText(a, 5)))).toBe('device_list_mismatch');
    a.devices.delete(second.id);
    expect(await codeOf(app.publishDeviceList(a.actor, listText(a, 4)))).toBe('device_list_version');
    expect(await app.publishDeviceList(a.actor, listText(a, 5))).toBe(5);
    s = await served(a);
    expect(s.list?.payload.devices.map((d) => d.device_id)).toEqual([a.actor.deviceId]);

    // A revoked device's id can't be registered again (no way back without a new id and a new list).
    a.devices.set(third.id, third.d);
    expect(await codeOf(app.registerDevice({ ...third.input, deviceList: listText(a, 6) }))).toBe('device_exists');
    expect(await codeOf(app.publishDeviceList(a.actor, ''))).toBe('invalid_device_list');
    expect(await codeOf(app.registerDevice({ ...prepare(a).input, deviceId: 'not-a-uuid' }))).toBe('invalid_id');
  });

  it('accounts from before lists work without one until the first publish; from then on adds need lists', async () => {
    const a = await account('dl_legacy', false);
    expect((await served(a)).list).toBeNull();
    const second = prepare(a);
    await app.registerDevice(second.input);
    a.devices.set(second.id, second.d);
    expect(await codeOf(app.publishDeviceList(a.actor, listText(a, 2)))).toBe('device_list_version');
    expect(await app.publishDeviceList(a.actor, listText(a, 1))).toBe(1);
    expect(await codeOf(app.registerDevice(prepare(a).input))).toBe('device_list_required');
  });

  it('an identity reset starts a new list at version 1 under the new key, and needs one if the account had a list', async () => {
    const a = await account('dl_reset');
    const identity = generateIdentityKey();
    const { id, d, input } = prepare(a, identity);
    const reset = { ...input, resetIdentity: true };
    expect(await codeOf(app.registerDevice(reset))).toBe('device_list_required');
    const fresh: Account = { ...a, identity, devices: new Map([[id, d]]) };
    expect(await codeOf(app.registerDevice({ ...reset, deviceList: listText(fresh, 2) }))).toBe('device_list_version');
    expect(await codeOf(app.registerDevice({ ...reset, deviceList: listText(a, 1, [a.actor.deviceId]) }))).toBe('invalid_device_list');
    await app.registerDevice({ ...reset, deviceList: listText(fresh, 1) });
    const s = await served(a);
    expect(s.ids).toEqual([id]);
    expect(s.list?.payload).toMatchObject({ version: 1, identity_key: input.identityKey });
  });

  it('deletion with a signed closing list keeps serving the closing list; without one the user is gone', async () => {
    const a = await account('dl_closed');
    expect(await codeOf(app.deleteAccount(a.actor, PASSWORD, listText(a, 2)))).toBe('device_list_mismatch');
    expect(await codeOf(app.deleteAccount(a.actor, PASSWORD, listText(a, 3, [])))).toBe('device_list_version');
    await app.deleteAccount(a.actor, PASSWORD, listText(a, 2, []));
    const dir = await app.listDevices(a.userId);
    expect(dir.devices).toEqual([]);
    expect(JSON.parse(dir.deviceList!).payload).toMatchObject({ version: 2, devices: [] });
    expect(await codeOf(app.getUser(a.userId))).toBe('user_not_found');

    const b = await account('dl_gone');
    await app.deleteAccount(b.actor, PASSWORD);
    expect(await codeOf(app.listDevices(b.userId))).toBe('user_not_found');
  });
});
