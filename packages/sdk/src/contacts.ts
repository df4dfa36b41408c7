// Contacts (client.contacts): finding users, the verified directory lookup
// (devices certified by the pinned identity key and in the signed list),
// identity pins, group members' keys against them, and safety numbers.
import { safetyNumber, safetyNumbersMatch, selectCertifiedDevices, type IdentityPins, type VerifiedDevice, type VerifiedDeviceList } from '@bil/crypto';
import type { ClientCore } from './client-core.js';
import { checkDeviceList, usableDevices } from './device-lists.js';
import { BilStateError } from './errors.js';
import { recordOf, type OwnList } from './own-list.js';
import { toUser, type User, type UserJson } from './wire.js';
import { directoryJson } from './chat/answers.js';

/** How a contact's directory identity key compares with the pin. */
export type PinStatus = 'first-use' | 'unchanged' | 'changed' | 'own' | 'no-identity';

/** A contact's devices, split by whether their certificates verify under the pinned identity key. */
export interface ContactDevices {
  readonly userId: string;
  readonly pin: PinStatus;
  /** The key the devices were checked against (the pin; for `own`, this device's identity key; "" for `no-identity`). */
  readonly pinnedIdentityKey: string;
  /** The key the server's directory presents now. */
  readonly presentedIdentityKey: string;
  /** The pin was confirmed by comparing safety numbers. */
  readonly verified: boolean;
  /** Devices to encrypt to: certified by the pinned identity key. */
  readonly devices: VerifiedDevice[];
  /** Devices the server lists that fail verification (unverified, certified by an unaccepted new key, or not in the latest signed list). */
  readonly rejected: { readonly deviceId: string; readonly name: string }[];
  /**
   * The user's latest signed device list as verified and pinned, or null when
   * the user never published one (an account from before signed lists:
   * `devices` are then the certified ones) or the identity key is not the
   * pinned one. `closed`: the list names no devices (the account was deleted).
   */
  readonly deviceList: { readonly version: number; readonly closed: boolean } | null;
}

export interface ContactsApi {
  /** Finds a user by username (ignoring case). */
  find(username: string): Promise<User>;
  /** The user's devices, verified against the pinned identity key (pinned now on first use). */
  devices(userId: string): Promise<ContactDevices>;
  /** Trusts a changed identity key: pins `identityKey` (default: the directory's current key), unverified. */
  acceptIdentityChange(userId: string, identityKey?: string): Promise<void>;
  /** The 60-digit safety number of this account and the contact's pinned key. */
  safetyNumber(userId: string): Promise<string>;
  /** Compares a safety number read out of band; on a match marks the pin verified. */
  verifySafetyNumber(userId: string, digits: string): Promise<boolean>;
  /** The pinned identity key of a user, if any. */
  pinned(userId: string): Promise<{ identityKey: string; verified: boolean } | null>;
}

export class Contacts {
  constructor(
    private readonly core: ClientCore,
    private readonly ownList: OwnList,
  ) {}

  async find(username: string): Promise<User> {
    const res = await this.core.call<{ user: UserJson }>('GET', `/v1/users?username=${encodeURIComponent(username)}`);
    return toUser(res.user);
  }

  async devices(userId: string): Promise<ContactDevices> {
    const profile = await this.core.requireProfile();
    const dir = directoryJson(await this.core.call<unknown>('GET', `/v1/users/${encodeURIComponent(userId)}/devices`));
    const presented = dir.identity_key;
    const all = dir.devices.map((d) => ({ deviceId: d.device_id, name: d.name }));
    const base = { userId, presentedIdentityKey: presented };
    if (dir.user_id !== userId || presented === '') {
      return { ...base, pin: 'no-identity', pinnedIdentityKey: '', verified: false, devices: [], rejected: all, deviceList: null };
    }

    let pin: PinStatus;
    let pinned: string;
    let verified = false;
    if (userId === profile.userId) {
      pin = 'own';
      pinned = profile.identityKey;
      verified = true;
    } else {
      let check: ReturnType<IdentityPins['check']>;
      try {
        check = this.core.pins().check(userId, presented);
      } catch {
        // Not a 32-byte Ed25519 key in base64url: nothing can be verified under it.
        return { ...base, pin: 'no-identity', pinnedIdentityKey: '', verified: false, devices: [], rejected: all, deviceList: null };
      }
      if (check.status === 'first-use') {
        await this.core.savePins();
        pinned = check.identityKey;
      } else if (check.status === 'unchanged') {
        pinned = check.identityKey;
        verified = check.verified;
      } else {
        pinned = check.pinned;
        this.core.emit('safety-number-changed', { userId, previousIdentityKey: check.pinned, currentIdentityKey: check.presented });
      }
      pin = check.status;
    }

    // Records are built with the directory's identity key; verifyDevice
    // refuses every one of them when that isn't the pinned key.
    const ours = dir.devices.filter((d) => d.user_id === userId);
    const { certified } = await selectCertifiedDevices(
      ours.map((d) => recordOf(d, presented)),
      pinned,
    );
    // The signed list, under the pinned key only: with a changed key nothing is usable until it is accepted.
    let list: VerifiedDeviceList | null = null;
    if (pin !== 'changed' && (pin !== 'own' || presented === pinned)) {
      const check = await checkDeviceList({ userId, pinnedKey: pinned, presented: dir.device_list ?? null, pin: this.core.profile()?.deviceLists?.[userId] });
      await this.ownList.storePin(userId, check);
      list = check.list;
      if (pin === 'own') await this.ownList.sync(profile, { certified, list, activeCount: ours.length });
    }
    const devices = usableDevices(list, certified);
    const ok = new Set(devices.map((d) => d.deviceId));
    return {
      ...base,
      pin,
      pinnedIdentityKey: pinned,
      verified,
      devices,
      rejected: all.filter((d) => !ok.has(d.deviceId)),
      deviceList: list ? { version: list.version, closed: list.devices.length === 0 } : null,
    };
  }

  /**
   * A group member's identity key as a verified epoch record lists it,
   * against the pin: pinned on first sight; a different key raises "safety
   * number changed", as for a contact, and is refused until accepted.
   */
  async checkMemberIdentity(userId: string, identityKey: string): Promise<'ok' | 'changed'> {
    const profile = await this.core.requireProfile();
    if (userId === profile.userId) return identityKey === profile.identityKey ? 'ok' : 'changed';
    const check = this.core.pins().check(userId, identityKey);
    if (check.status === 'first-use') await this.core.savePins();
    if (check.status !== 'changed') return 'ok';
    this.core.emit('safety-number-changed', { userId, previousIdentityKey: check.pinned, currentIdentityKey: check.presented });
    return 'changed';
  }

  async acceptIdentityChange(userId: string, identityKey?: string): Promise<void> {
    await this.core.requireProfile();
    let key = identityKey;
    if (key === undefined) {
      const dir = directoryJson(await this.core.call<unknown>('GET', `/v1/users/${encodeURIComponent(userId)}/devices`));
      key = dir.identity_key;
    }
    if (!key) throw new BilStateError('no_pinned_identity', 'the user has no identity key to accept');
    this.core.pins().accept(userId, key);
    await this.core.savePins();
    // A list pin belongs to the key it verified under: the accepted key starts its own.
    const p = this.core.profile();
    if (p?.deviceLists?.[userId]) {
      const { [userId]: _dropped, ...rest } = p.deviceLists;
      await this.core.commit({ ...p, deviceLists: rest });
    }
  }

  async safetyNumber(userId: string): Promise<string> {
    const profile = await this.core.requireProfile();
    let pinned = this.core.pins().pinned(userId);
    if (pinned === undefined && userId !== profile.userId) {
      await this.devices(userId);
      pinned = this.core.pins().pinned(userId);
    }
    if (userId === profile.userId) pinned = profile.identityKey;
    if (pinned === undefined) throw new BilStateError('no_pinned_identity', 'the user has no identity key yet');
    return safetyNumber({ userId: profile.userId, identityKey: profile.identityKey }, { userId, identityKey: pinned });
  }

  async verifySafetyNumber(userId: string, digits: string): Promise<boolean> {
    const expected = await this.safetyNumber(userId);
    if (!safetyNumbersMatch(digits, expected)) return false;
    const pinned = this.core.pins().pinned(userId);
    if (pinned !== undefined) {
      this.core.pins().markVerified(userId, pinned);
      await this.core.savePins();
    }
    return true;
  }

  async pinned(userId: string): Promise<{ identityKey: string; verified: boolean } | null> {
    await this.core.ready();
    const p = this.core.pins().snapshot().pins[userId];
    return p ? { identityKey: p.identity_key, verified: p.verified } : null;
  }
}
