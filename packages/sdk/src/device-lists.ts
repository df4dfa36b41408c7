// Signed device lists on the client (docs/sdk.md "Device lists", docs/protocol.md
// "Signed device lists"). Per user the profile pins the highest list version
// seen under the pinned identity key; a lower version, or no list once one was
// seen, is a rollback. Devices to encrypt to are those certified by the pinned
// key AND in the latest list with the same keys. Accounts that never published
// a list (from before step 8) fall back to certificates only.
import {
  deviceInList,
  fromBase64Url,
  identityKeyFromSeed,
  signDeviceList,
  verifyDeviceList,
  type DeviceListEntry,
  type SignedDeviceList,
  type VerifiedDevice,
  type VerifiedDeviceList,
} from '@bil/crypto';
import { BilTrustError } from './errors.js';

/** What the profile remembers of a user's latest verified list. */
export interface DeviceListPin {
  /** The identity key the list verified under (a list pin only counts for that key). */
  readonly identity_key: string;
  readonly version: number;
  /** The devices it listed, to tell which ones a newer list removed. */
  readonly device_ids: readonly string[];
}

export interface DeviceListCheck {
  /** The verified latest list, or null for a user who never published one (legacy: certificates only). */
  readonly list: VerifiedDeviceList | null;
  /** The pin to store, or null when it did not change. */
  readonly pin: DeviceListPin | null;
  /** Devices the previous pinned list had and this newer one dropped. */
  readonly removed: readonly string[];
}

/**
 * Checks the list a directory answer carries against the pin: verifies it
 * under `pinnedKey` for `userId` (`device_list_invalid` otherwise), refuses
 * a lower version or a missing list once one was seen (`device_list_rollback`).
 */
export async function checkDeviceList(p: {
  userId: string;
  pinnedKey: string;
  presented: unknown;
  pin: DeviceListPin | undefined;
}): Promise<DeviceListCheck> {
  const pin = p.pin && p.pin.identity_key === p.pinnedKey ? p.pin : undefined;
  if (p.presented === null || p.presented === undefined) {
    if (pin) {
      throw new BilTrustError('device_list_rollback', `the server no longer shows the signed device list of this user (version ${pin.version} was seen)`, {
        user_id: p.userId,
        pinned_version: pin.version,
        presented_version: null,
      });
    }
    return { list: null, pin: null, removed: [] };
  }
  let list: VerifiedDeviceList;
  try {
    list = await verifyDeviceList(p.presented, p.pinnedKey, { userId: p.userId });
  } catch {
    throw new BilTrustError('device_list_invalid', "the user's device list does not verify under the pinned identity key", { user_id: p.userId });
  }
  const ids = list.devices.map((d) => d.device_id);
  const next: DeviceListPin = { identity_key: p.pinnedKey, version: list.version, device_ids: ids };
  if (!pin) return { list, pin: next, removed: [] };
  if (list.version < pin.version) {
    throw new BilTrustError('device_list_rollback', `the server showed device list version ${list.version} after version ${pin.version}`, {
      user_id: p.userId,
      pinned_version: pin.version,
      presented_version: list.version,
    });
  }
  if (list.version === pin.version) {
    // One version, two contents: only a holder of the identity key can sign that.
    if (ids.join() !== pin.device_ids.join()) {
      throw new BilTrustError('device_list_invalid', `two different device lists with version ${list.version}`, { user_id: p.userId, version: list.version });
    }
    return { list, pin: null, removed: [] };
  }
  const kept = new Set(ids);
  return { list, pin: next, removed: pin.device_ids.filter((id) => !kept.has(id)) };
}

/** The devices to encrypt to: certified, and (once the user has a list) in it with the same keys. */
export function usableDevices(list: VerifiedDeviceList | null, certified: readonly VerifiedDevice[]): VerifiedDevice[] {
  return list ? certified.filter((d) => deviceInList(list, d)) : [...certified];
}

/**
 * The next list of this account: the current verified list (or, for an
 * account without one, the certified devices the server lists: the
 * migration) limited to devices still active with the same keys, minus
 * `remove`, plus `add`; version + 1. Signs with the identity seed, then wipes it.
 */
export function nextOwnList(p: {
  identitySeed: string;
  userId: string;
  current: VerifiedDeviceList | null;
  certified: readonly VerifiedDevice[];
  add?: DeviceListEntry;
  remove?: string;
  close?: boolean;
  now: number;
}): SignedDeviceList {
  let devices: DeviceListEntry[];
  if (p.close) devices = [];
  else if (p.current) devices = p.current.devices.filter((e) => p.certified.some((d) => sameDevice(e, d)));
  else devices = p.certified.map((d) => ({ device_id: d.deviceId, encryption_key: d.encryptionKey, signing_key: d.signingKey, added_at: d.issuedAt }));
  if (p.remove !== undefined) devices = devices.filter((e) => e.device_id !== p.remove);
  if (p.add) devices = [...devices.filter((e) => e.device_id !== p.add!.device_id), p.add];
  const identity = identityKeyFromSeed(fromBase64Url(p.identitySeed, 32));
  try {
    return signDeviceList({ identity, userId: p.userId, version: (p.current?.version ?? 0) + 1, devices, createdAt: p.now });
  } finally {
    identity.secretKey.fill(0);
  }
}

/**
 * Whether a device holding the identity key should publish its account's
 * next list on its own: the server's active devices differ from the latest
 * list only by removals (a revocation by a device without the seed), or the
 * account has no list yet and every active device is certified (migration).
 * A device the list doesn't name is never added this way.
 */
export function ownListNeedsPublish(current: VerifiedDeviceList | null, certified: readonly VerifiedDevice[], activeCount: number): boolean {
  if (certified.length !== activeCount || activeCount === 0) return false;
  if (!current) return true;
  const listedAndActive = current.devices.filter((e) => certified.some((d) => sameDevice(e, d)));
  return listedAndActive.length < current.devices.length && certified.every((d) => deviceInList(current, d));
}

function sameDevice(e: DeviceListEntry, d: VerifiedDevice): boolean {
  return e.device_id === d.deviceId && e.encryption_key === d.encryptionKey && e.signing_key === d.signingKey;
}
