import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalize } from './canonical-json.js';
import {
  deviceInList,
  deviceListEntryOf,
  deviceListPayloadBytes,
  isVerifiedDeviceList,
  signDeviceList,
  verifyDeviceList,
  type DeviceListEntry,
  type SignedDeviceList,
} from './device-list.js';
import { fromBase64Url, fromUtf8, toBase64Url } from './encoding.js';
import { CannotDecryptError } from './errors.js';
import { ed25519Sign, generateEd25519KeyPair } from './signature.js';
import { flipBit, keyPool, makeUser, seed, type TestUser } from './testing/fixtures.js';

let alice: TestUser;
let bob: TestUser;
let entries: DeviceListEntry[];
beforeAll(async () => {
  const pool = await keyPool();
  alice = await makeUser(1, pool.slice(0, 2));
  bob = await makeUser(2, pool.slice(2, 3));
  entries = alice.devices.map((d, i) => deviceListEntryOf(d.verified, 1764100000000 + i));
});

const sign = (over: Partial<Parameters<typeof signDeviceList>[0]> = {}) =>
  signDeviceList({ identity: alice.identity, userId: alice.userId, version: 3, devices: entries, createdAt: 1764100001000, ...over });
const key = () => toBase64Url(alice.identity.publicKey);
/** Re-signs a hand-edited payload, so only the rule under test fails. */
const resign = (payload: unknown): SignedDeviceList => {
  let text: string;
  try {
    text = canonicalize(payload as never);
  } catch {
    text = JSON.stringify(payload); // not canonicalisable (a float): refused on shape anyway
  }
  return { payload: payload as SignedDeviceList['payload'], signature: toBase64Url(ed25519Sign(alice.identity.secretKey, new TextEncoder().encode(text))) };
};
const refused = (v: unknown, k: string | Uint8Array = key(), o?: { userId?: string }) =>
  expect(verifyDeviceList(v, k, o)).rejects.toBeInstanceOf(CannotDecryptError);

describe('signed device lists', () => {
  it('signs canonical JSON of exactly the spec payload, devices sorted by id', async () => {
    const list = sign({ devices: [...entries].reverse() });
    expect(list.payload.devices.map((d) => d.device_id)).toEqual(entries.map((d) => d.device_id));
    const text = fromUtf8(deviceListPayloadBytes(list.payload));
    expect(text.startsWith('{"created_at":1764100001000,"devices":[{"added_at":1764100000000,"device_id":')).toBe(true);
    expect(text).toContain(`"identity_key":"${key()}","type":"bil.device-list.v1","user_id":"${alice.userId}","version":3}`);
    const v = await verifyDeviceList(list, key(), { userId: alice.userId });
    expect(isVerifiedDeviceList(v)).toBe(true);
    expect(v.version).toBe(3);
    expect(v.devices).toHaveLength(2);
    expect(v.signed).toEqual(list);
    // A JSON round trip (what the server stores and serves) still verifies.
    await verifyDeviceList(JSON.parse(JSON.stringify(list)), alice.identity.publicKey);
  });

  it('an empty list (closed account) signs and verifies', async () => {
    const v = await verifyDeviceList(sign({ devices: [] }), key());
    expect(v.devices).toEqual([]);
  });

  it('deviceInList: same id AND same keys; other users, other keys and unverified input are out', async () => {
    const v = await verifyDeviceList(sign({ devices: entries.slice(0, 1) }), key());
    expect(deviceInList(v, alice.devices[0]!.verified)).toBe(true);
    expect(deviceInList(v, alice.devices[1]!.verified)).toBe(false);
    expect(deviceInList(v, bob.devices[0]!.verified)).toBe(false);
    // Same id, other keys: what a server re-listing a device with new keys looks like.
    const swapped = await verifyDeviceList(sign({ devices: [{ ...entries[1]!, device_id: entries[0]!.device_id }] }), key());
    expect(deviceInList(swapped, alice.devices[0]!.verified)).toBe(false);
    expect(() => deviceInList({ ...v }, alice.devices[0]!.verified)).toThrow(TypeError);
    expect(() => deviceInList(v, { ...alice.devices[0]!.verified })).toThrow(TypeError);
  });

  it('refuses the wrong identity key, the wrong user and a list for another key', async () => {
    const list = sign();
    await refused(list, toBase64Url(bob.identity.publicKey));
    await refused(list, key(), { userId: bob.userId });
    const other = generateEd25519KeyPair(seed('other identity'));
    await refused(signDeviceList({ identity: other, userId: alice.userId, version: 3, devices: entries, createdAt: 1 }), key());
    await refused(list, 'not a key');
  });

  it('tamper: flipping any signed field or the signature fails', async () => {
    const list = sign();
    const p = list.payload;
    const d0 = p.devices[0]!;
    const variants: unknown[] = [
      { ...list, signature: flipBit(list.signature, 5) },
      { ...list, payload: { ...p, version: 4 } },
      { ...list, payload: { ...p, created_at: p.created_at + 1 } },
      { ...list, payload: { ...p, user_id: bob.userId } },
      { ...list, payload: { ...p, identity_key: toBase64Url(bob.identity.publicKey) } },
      { ...list, payload: { ...p, devices: p.devices.slice(1) } },
      { ...list, payload: { ...p, devices: [{ ...d0, added_at: d0.added_at + 1 }, p.devices[1]] } },
      { ...list, payload: { ...p, devices: [{ ...d0, signing_key: p.devices[1]!.signing_key }, p.devices[1]] } },
      { ...list, payload: { ...p, devices: [{ ...d0, encryption_key: p.devices[1]!.encryption_key }, p.devices[1]] } },
      { ...list, payload: { ...p, devices: [{ ...d0, device_id: '00000000-0000-4000-8000-000000000000' }, p.devices[1]] } },
    ];
    for (const v of variants) await refused(v);
  });

  it('shape: exact members, type, strict base64url, sorted unique ids, version and times', async () => {
    const p = sign().payload;
    const [d0, d1] = p.devices as [DeviceListEntry, DeviceListEntry];
    const bad: unknown[] = [
      { ...p, extra: 1 },
      { ...p, type: 'bil.device-list.v2' },
      { ...p, version: 0 },
      { ...p, version: -1 },
      { ...p, version: 1.5 },
      { ...p, version: Number.MAX_SAFE_INTEGER + 1 },
      { ...p, version: '3' },
      { ...p, created_at: -1 },
      { ...p, user_id: '00000000-0000-4000-8000-00000000000A' },
      { ...p, devices: [d1, d0] },
      { ...p, devices: [d0, d0] },
      { ...p, devices: [{ ...d0, extra: true }, d1] },
      { ...p, devices: [{ ...d0, added_at: -5 }, d1] },
      { ...p, devices: [{ ...d0, signing_key: d0.signing_key + '=' }, d1] },
      { ...p, devices: [{ ...d0, encryption_key: `${d0.encryption_key.slice(0, -1)}+` }, d1] },
      { ...p, devices: [{ ...d0, signing_key: toBase64Url(new Uint8Array(32)) }, d1] },
      { ...p, devices: [{ ...d0, encryption_key: toBase64Url(fromBase64Url(d0.encryption_key).slice(0, 100)) }, d1] },
      { ...p, devices: {} },
      { ...p, devices: new Array(65).fill(d0) },
    ];
    for (const payload of bad) await refused(resign(payload));
    // Control: re-signing the unchanged payload is accepted.
    await verifyDeviceList(resign(p), key());
    await refused({ payload: p, signature: sign().signature, extra: '' });
    await refused({ payload: p });
    await refused(null);
    await refused('{"payload":{}}');
  });

  it('signing checks its inputs', () => {
    expect(() => sign({ version: 0 })).toThrow(TypeError);
    expect(() => sign({ version: 2 ** 53 })).toThrow(TypeError);
    expect(() => sign({ userId: 'x' })).toThrow(TypeError);
    expect(() => sign({ createdAt: -1 })).toThrow(TypeError);
    expect(() => sign({ devices: [entries[0]!, entries[0]!] })).toThrow(/duplicate/);
    expect(() => sign({ devices: [{ ...entries[0]!, signing_key: 'AAAA' }] })).toThrow(TypeError);
    expect(() => sign({ devices: [{ ...entries[0]!, device_id: 'nope' }] })).toThrow(TypeError);
    expect(() => sign({ devices: new Array(65).fill(entries[0]!) })).toThrow(TypeError);
    expect(() => signDeviceList({ identity: { publicKey: new Uint8Array(32), secretKey: new Uint8Array(3) }, userId: alice.userId, version: 1, devices: [], createdAt: 0 })).toThrow(TypeError);
    expect(() => deviceListEntryOf({ ...alice.devices[0]!.verified }, 1)).toThrow(TypeError);
  });
});
