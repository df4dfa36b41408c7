// Signed device lists end to end: the SDK against the real identity, chat and
// gateway. A "server" that rewrites answers (a fetch wrapper on bob's client)
// re-lists a revoked device with its old certified record, serves an older
// list, or drops the list; bob's client refuses or ignores it. The honest
// link and revoke flows publish the lists; old profiles still open.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyDevice, type DeviceRecord } from '@bil/crypto';
import {
  BilClient,
  BilTrustError,
  MemoryKeyStore,
  type DeviceListChangedEvent,
  type FetchLike,
  type LocalAccount,
  type StoredProfile,
} from '../src/node.js';
import { chatStackBuilt, startStack, type Stack } from './stack.js';

const PASSWORD = 'correct horse battery staple';
const username = (prefix: string) => `${prefix}_${randomBytes(4).toString('hex')}`;

type Json = Record<string, unknown>;
interface Device {
  client: BilClient;
  account: LocalAccount;
  store: MemoryKeyStore;
}

/** A fetch whose directory answers a test can rewrite, and whose sent message bodies it can read. */
function adversary() {
  const state = {
    /** Rewrites the JSON of GET /v1/users/{id}/devices. */
    directory: null as ((userId: string, body: Json) => Json) | null,
    /** Rewrites the JSON body of POST /v1/auth/devices (an old client sends no list). */
    register: null as ((body: Json) => Json) | null,
    sent: [] as Json[],
    rewrote: 0,
  };
  const fetchLike: FetchLike = async (input, init) => {
    const path = new URL(input).pathname;
    if (init.method === 'POST' && path === '/v1/auth/devices' && state.register && typeof init.body === 'string') {
      init = { ...init, body: JSON.stringify(state.register(JSON.parse(init.body) as Json)) };
    }
    if (init.method === 'POST' && /^\/v1\/chats\/[^/]+\/messages$/.test(path) && typeof init.body === 'string') state.sent.push(JSON.parse(init.body) as Json);
    const res = await fetch(input, init);
    const m = /^\/v1\/users\/([^/]+)\/devices$/.exec(path);
    if (!m || !state.directory || res.status !== 200) return res;
    const body = state.directory(m[1]!, (await res.json()) as Json);
    state.rewrote += 1;
    return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  return { state, fetch: fetchLike };
}

describe.skipIf(!chatStackBuilt)('signed device lists (e2e: identity + chat + gateway)', () => {
  let stack: Stack;
  let alice: Device;
  let bob: Device;
  const bobNet = adversary();
  const bobEvents: DeviceListChangedEvent[] = [];

  const device = (fetchLike?: FetchLike): Device => {
    const store = new MemoryKeyStore();
    return { client: new BilClient({ baseUrl: stack.baseUrl, keyStore: store, ...(fetchLike ? { fetch: fetchLike } : {}) }), account: undefined as never, store };
  };
  const register = async (prefix: string, fetchLike?: FetchLike): Promise<Device> => {
    const d = device(fetchLike);
    d.account = await d.client.register({ username: username(prefix), password: PASSWORD, deviceName: 'laptop' });
    return d;
  };
  const link = async (owner: Device, name: string, shareIdentityKey?: boolean): Promise<Device> => {
    const d = device();
    const request = await d.client.devices.linkRequest({ deviceName: name });
    const approval = await owner.client.devices.approveLink(JSON.stringify(request), shareIdentityKey === undefined ? undefined : { shareIdentityKey });
    d.account = await d.client.devices.completeLink({ approval: JSON.stringify(approval), password: PASSWORD });
    return d;
  };
  const ids = (devices: readonly { deviceId: string }[]) => devices.map((d) => d.deviceId).sort();

  beforeAll(async () => {
    stack = await startStack({}, { chat: true });
    alice = await register('alice');
    bob = await register('bob', bobNet.fetch);
    bob.client.on('device-list-changed', (e) => bobEvents.push(e));
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('register publishes version 1; linking (seed not shared by default) publishes the next list naming the new device', async () => {
    expect((await bob.client.contacts.devices(alice.account.userId)).deviceList).toEqual({ version: 1, closed: false });
    const phone = await link(alice, 'phone');
    expect(phone.account.holdsIdentityKey).toBe(false);
    expect(alice.account.holdsIdentityKey).toBe(true);
    const seen = await bob.client.contacts.devices(alice.account.userId);
    expect(seen.deviceList).toEqual({ version: 2, closed: false });
    expect(ids(seen.devices)).toEqual([alice.account.deviceId, phone.account.deviceId].sort());
    const own = await alice.client.devices.list();
    expect(own.every((d) => d.certified && d.listed)).toBe(true);
    // A device without the seed can't approve links.
    await expect(phone.client.devices.approveLink(await device().client.devices.linkRequest())).rejects.toMatchObject({ code: 'identity_key_not_held' });
  });

  it('revoking from the seed holder publishes the list without it; a contact sees device-list-changed', async () => {
    const tablet = await link(alice, 'tablet');
    await bob.client.contacts.devices(alice.account.userId);
    bobEvents.length = 0;
    const result = await alice.client.devices.revoke(tablet.account.deviceId);
    expect(result).toEqual({ deviceId: tablet.account.deviceId, deviceListPublished: true, identityResetAdvised: false });
    const seen = await bob.client.contacts.devices(alice.account.userId);
    expect(seen.deviceList?.version).toBe(4);
    expect(ids(seen.devices)).not.toContain(tablet.account.deviceId);
    expect(bobEvents).toEqual([{ userId: alice.account.userId, version: 4, removedDeviceIds: [tablet.account.deviceId] }]);
  });

  it('attack: the server re-lists a revoked device with its old certified record; bob wraps nothing for it', async () => {
    const stolen = await link(alice, 'stolen');
    const before = await bob.client.contacts.devices(alice.account.userId);
    const record = (await alice.client.me()).devices.find((d) => d.deviceId === stolen.account.deviceId)!;
    await alice.client.devices.revoke(stolen.account.deviceId);

    // The revoked device's certificate still verifies: a certificates-only client would accept it.
    const oldRecord: DeviceRecord = {
      user_id: alice.account.userId, device_id: record.deviceId, identity_key: alice.account.identityKey, encryption_key: record.encryptionKey,
      signing_key: record.signingKey, issued_at: record.certificateIssuedAt, certificate: record.certificate,
    };
    await expect(verifyDevice(oldRecord, alice.account.identityKey)).resolves.toBeTruthy();
    expect(ids(before.devices)).toContain(stolen.account.deviceId);

    bobNet.state.directory = (userId, body) => {
      if (userId !== alice.account.userId) return body;
      const devices = body.devices as Json[];
      return { ...body, devices: [...devices, { device_id: record.deviceId, user_id: alice.account.userId, name: 'stolen', encryption_key: record.encryptionKey, signing_key: record.signingKey, certificate: record.certificate, certificate_issued_at: record.certificateIssuedAt, created_at: record.createdAt }] };
    };
    try {
      const seen = await bob.client.contacts.devices(alice.account.userId);
      expect(bobNet.state.rewrote).toBeGreaterThan(0);
      expect(ids(seen.devices)).not.toContain(stolen.account.deviceId);
      expect(seen.rejected.map((r) => r.deviceId)).toContain(stolen.account.deviceId);

      const chat = await bob.client.chats.createPersonal(alice.account.userId);
      bobNet.state.sent.length = 0;
      await bob.client.messages.send(chat.chatId, 'for alice only');
      const wrapped = (bobNet.state.sent[0]!.wrapped_keys as { device_id: string }[]).map((w) => w.device_id);
      expect(wrapped).toContain(alice.account.deviceId);
      expect(wrapped).not.toContain(stolen.account.deviceId);
    } finally {
      bobNet.state.directory = null;
    }
  });

  it('attack: an older list, a missing list and an altered list are refused with BilTrustError', async () => {
    const pinned = await bob.client.contacts.devices(alice.account.userId);
    const current = (await (await fetch(`${stack.baseUrl}/v1/users/${alice.account.userId}/devices`, { headers: { authorization: `Bearer ${await tokenOf(bob)}` } })).json()) as Json;
    const list = current.device_list as { payload: Json; signature: string };
    const variants: [string, (b: Json) => Json][] = [
      ['device_list_rollback', (b) => ({ ...b, device_list: null })],
      ['device_list_rollback', ({ device_list: _dropped, ...b }) => b],
      // Re-numbering without the identity key breaks the signature.
      ['device_list_invalid', (b) => ({ ...b, device_list: { ...list, payload: { ...list.payload, version: (list.payload.version as number) + 5 } } })],
      ['device_list_invalid', (b) => ({ ...b, device_list: { ...list, payload: { ...list.payload, devices: [] } } })],
      ['device_list_invalid', (b) => ({ ...b, device_list: { ...list, signature: `${list.signature[0] === 'A' ? 'B' : 'A'}${list.signature.slice(1)}` } })],
    ];
    for (const [code, rewrite] of variants) {
      bobNet.state.directory = (userId, body) => (userId === alice.account.userId ? rewrite(body) : body);
      await expect(bob.client.contacts.devices(alice.account.userId)).rejects.toSatisfy((e) => e instanceof BilTrustError && e.code === code);
    }
    bobNet.state.directory = null;
    expect((await bob.client.contacts.devices(alice.account.userId)).deviceList).toEqual(pinned.deviceList);
  });

  it('a real older list (captured earlier, validly signed) is a rollback', async () => {
    let captured: unknown;
    bobNet.state.directory = (userId, body) => {
      if (userId === alice.account.userId) captured = body.device_list;
      return body;
    };
    await bob.client.contacts.devices(alice.account.userId);
    const extra = await link(alice, 'extra');
    await alice.client.devices.revoke(extra.account.deviceId);
    bobNet.state.directory = null;
    await bob.client.contacts.devices(alice.account.userId);
    bobNet.state.directory = (userId, body) => (userId === alice.account.userId ? { ...body, device_list: captured } : body);
    await expect(bob.client.contacts.devices(alice.account.userId)).rejects.toMatchObject({ code: 'device_list_rollback' });
    bobNet.state.directory = null;
  });

  it('a device without the seed revokes: no list, the seed holder publishes it on its next look; revoking a seed holder advises a reset', async () => {
    const phone = await link(alice, 'phone2');
    const victim = await link(alice, 'victim');
    await bob.client.contacts.devices(alice.account.userId);
    bobEvents.length = 0;
    const byPhone = await phone.client.devices.revoke(victim.account.deviceId);
    expect(byPhone).toMatchObject({ deviceListPublished: false, identityResetAdvised: false });
    // The stale list still names the victim, but the server no longer lists it: nothing to encrypt to there.
    const stale = await bob.client.contacts.devices(alice.account.userId);
    expect(ids(stale.devices)).not.toContain(victim.account.deviceId);
    const version = stale.deviceList!.version;
    // Alice's laptop (seed holder) looks at its devices and publishes the list without the victim.
    await alice.client.devices.list();
    const fresh = await bob.client.contacts.devices(alice.account.userId);
    expect(fresh.deviceList!.version).toBe(version + 1);
    expect(bobEvents.at(-1)).toMatchObject({ userId: alice.account.userId, removedDeviceIds: [victim.account.deviceId] });

    const holder = await link(alice, 'holder', true);
    expect(holder.account.holdsIdentityKey).toBe(true);
    expect(await alice.client.devices.revoke(holder.account.deviceId)).toMatchObject({ deviceListPublished: true, identityResetAdvised: true });
    // The phone knows the laptop linked it (and so holds the seed).
    expect(await phone.client.devices.revoke(alice.account.deviceId)).toMatchObject({ deviceListPublished: false, identityResetAdvised: true });
  });

  it('an account from before lists: certificates only until its first list; then a missing list is a rollback', async () => {
    const net = adversary();
    net.state.register = ({ device_list: _list, ...rest }) => rest; // an old client sends no list
    const carol = await register('carol', net.fetch);
    // Its profile as an old client wrote it: no list pins.
    const { deviceLists: _pins, ...old } = (await carol.store.load())! as StoredProfile & Json;
    await carol.store.save(old as StoredProfile);
    carol.client = new BilClient({ baseUrl: stack.baseUrl, keyStore: carol.store });
    let seen = await bob.client.contacts.devices(carol.account.userId);
    expect(seen.deviceList).toBeNull();
    expect(ids(seen.devices)).toEqual([carol.account.deviceId]);
    // Carol's current client publishes the first list when it looks at its devices (migration).
    expect(await carol.client.devices.syncList()).toBe(1);
    expect(await carol.client.devices.syncList()).toBeNull();
    seen = await bob.client.contacts.devices(carol.account.userId);
    expect(seen.deviceList).toEqual({ version: 1, closed: false });
    bobNet.state.directory = (userId, body) => (userId === carol.account.userId ? { ...body, device_list: null } : body);
    await expect(bob.client.contacts.devices(carol.account.userId)).rejects.toMatchObject({ code: 'device_list_rollback' });
    bobNet.state.directory = null;
  });

  it('deleting an account signs a closing list that contacts verify', async () => {
    const dave = await register('dave');
    await bob.client.contacts.devices(dave.account.userId);
    await dave.client.deleteAccount({ password: PASSWORD });
    const seen = await bob.client.contacts.devices(dave.account.userId);
    expect(seen.devices).toEqual([]);
    expect(seen.deviceList).toEqual({ version: 2, closed: true });
  });

  it('a profile written before device lists (no deviceLists, no seedHolders) still opens and works', async () => {
    const erin = await register('erin');
    const saved = (await erin.store.load())!;
    const { deviceLists: _l, seedHolders: _s, ...old } = saved as StoredProfile & Json;
    const store = new MemoryKeyStore();
    await store.save(old as StoredProfile);
    const again = new BilClient({ baseUrl: stack.baseUrl, keyStore: store });
    expect((await again.account())?.deviceId).toBe(erin.account.deviceId);
    expect((await again.contacts.devices(alice.account.userId)).devices.length).toBeGreaterThan(0);
    expect((await again.devices.list()).map((d) => d.listed)).toEqual([true]);
    expect((await store.load())!.deviceLists?.[erin.account.userId]?.version).toBe(1);
  });
});

/** Bob's current access token, read from his key store. */
async function tokenOf(d: Device): Promise<string> {
  return (await d.store.load())!.tokens!.accessToken;
}
