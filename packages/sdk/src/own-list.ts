// This account's signed device list as the client keeps it (the rules are in
// device-lists.ts): its verified state from GET /v1/me, publishing the next
// list when due, and storing list pins (any user's) with their event.
import { selectCertifiedDevices, type DeviceRecord, type SignedDeviceList, type VerifiedDevice, type VerifiedDeviceList } from '@bil/crypto';
import type { ClientCore } from './client-core.js';
import { checkDeviceList, nextOwnList, ownListNeedsPublish, type DeviceListCheck } from './device-lists.js';
import { BilApiError } from './errors.js';
import type { StoredProfile } from './key-store.js';
import type { MeJson as SchemaMeJson } from '@bil/proto/rest';
import type { DeviceJson } from './wire.js';

/** GET /v1/me as the schema describes it, except its signed device list: untrusted (absent from older servers), verified before use. */
export type MeJson = Omit<SchemaMeJson, 'device_list'> & { device_list?: unknown };

export interface OwnListState {
  certified: VerifiedDevice[];
  list: VerifiedDeviceList | null;
  activeCount: number;
}

export type OwnListDeps = Pick<ClientCore, 'call' | 'profile' | 'commit' | 'emit' | 'now'>;

export class OwnList {
  constructor(private readonly core: OwnListDeps) {}

  /** This account's certified devices and its verified latest list (pinned; a rollback or bad list throws BilTrustError). */
  async state(profile: StoredProfile, res: { devices: DeviceJson[]; device_list?: unknown }): Promise<OwnListState> {
    const ours = res.devices.filter((d) => d.user_id === profile.userId);
    const { certified } = await selectCertifiedDevices(ours.map((d) => recordOf(d, profile.identityKey)), profile.identityKey);
    const check = await checkDeviceList({
      userId: profile.userId,
      pinnedKey: profile.identityKey,
      presented: res.device_list ?? null,
      pin: this.core.profile()?.deviceLists?.[profile.userId],
    });
    await this.storePin(profile.userId, check);
    return { certified, list: check.list, activeCount: res.devices.length };
  }

  /** `state` of the account as GET /v1/me reports it now. */
  async fetchState(profile: StoredProfile): Promise<OwnListState> {
    return this.state(profile, await this.core.call<MeJson>('GET', '/v1/me'));
  }

  /** Publishes this account's next list when one is due and this device can sign it (RevokeResult, DevicesApi.syncList). */
  async sync(profile: StoredProfile, own: OwnListState): Promise<number | null> {
    if (profile.identitySeed === null || !ownListNeedsPublish(own.list, own.certified, own.activeCount)) return null;
    const next = nextOwnList({ identitySeed: profile.identitySeed, userId: profile.userId, current: own.list, certified: own.certified, now: this.core.now() });
    try {
      await this.core.call('PUT', '/v1/me/device-list', { device_list: next });
    } catch (err) {
      // Another device published first, or the devices changed meanwhile: the next look tries again.
      if (err instanceof BilApiError && ['device_list_version', 'device_list_mismatch'].includes(err.code)) return null;
      throw err;
    }
    await this.pinPublished(profile, next);
    return next.payload.version;
  }

  /** Pins a list this device just published for its own account. */
  async pinPublished(profile: StoredProfile, list: SignedDeviceList): Promise<void> {
    const pin = this.core.profile()?.deviceLists?.[profile.userId];
    await this.storePin(profile.userId, await checkDeviceList({ userId: profile.userId, pinnedKey: profile.identityKey, presented: list, pin }));
  }

  /** Stores a new list pin and tells listeners which devices a newer list removed. */
  async storePin(userId: string, check: DeviceListCheck): Promise<void> {
    const p = this.core.profile();
    if (check.pin && p) await this.core.commit({ ...p, deviceLists: { ...p.deviceLists, [userId]: check.pin } });
    if (check.list && check.removed.length > 0) {
      this.core.emit('device-list-changed', { userId, version: check.list.version, removedDeviceIds: [...check.removed] });
    }
  }
}

/**
 * Runs a change with the signed list, and again without it if the server
 * refuses the list (a version race or devices this client doesn't know):
 * the user's revocation or deletion must not wait on the list. Returns
 * whether the list went through.
 */
export async function withListFallback(list: SignedDeviceList | undefined, run: (list: SignedDeviceList | undefined) => Promise<unknown>): Promise<boolean> {
  if (!list) {
    await run(undefined);
    return false;
  }
  try {
    await run(list);
    return true;
  } catch (err) {
    if (!(err instanceof BilApiError) || !['device_list_version', 'device_list_mismatch', 'invalid_device_list'].includes(err.code)) throw err;
    await run(undefined);
    return false;
  }
}

/** A directory entry as the device record of docs/protocol.md, under the identity key the directory names. */
export function recordOf(d: DeviceJson, identityKey: string): DeviceRecord {
  return {
    user_id: d.user_id,
    device_id: d.device_id,
    identity_key: identityKey,
    encryption_key: d.encryption_key,
    signing_key: d.signing_key,
    issued_at: d.certificate_issued_at,
    certificate: d.certificate,
  };
}
