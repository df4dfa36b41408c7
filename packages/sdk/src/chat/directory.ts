// The devices this client may encrypt to and accept signatures from: for each
// user, those certified by the pinned identity key (and in the user's latest
// signed device list), as the client's directory check returns them. Cached
// per user until an answer says they changed.
import type { VerifiedDevice } from '@bil/crypto';
import { BilStateError, BilTrustError } from '../errors.js';
import type { DeviceState } from './device-state.js';

/** A user's devices as the client verified them. */
export interface CheckedDevices {
  /** How the directory's identity key compared with the pin. */
  readonly pin: string;
  /** Devices certified by the pinned identity key (and, once the user has one, listed in their latest signed device list). */
  readonly devices: VerifiedDevice[];
  /** The user's latest signed device list, if they have one. */
  readonly deviceList?: { readonly version: number } | null;
}

/** What the directory needs from the client. */
export interface DirectoryDeps {
  devices(userId: string): Promise<CheckedDevices>;
  now(): number;
}

/** How long this account's own device list is trusted before a group use looks for newly linked devices again (ms). */
const OWN_DEVICES_TTL_MS = 60_000;

export class Directory {
  readonly #cache = new Map<string, Promise<CheckedDevices>>();
  /** When this account's own device list was last fetched (0: fetch it on the next group use). */
  #ownAt = 0;

  constructor(
    private readonly deps: DirectoryDeps,
    private readonly device: DeviceState,
  ) {
    device.onReset(() => this.forget());
  }

  forget(userId?: string): void {
    if (userId === undefined) {
      this.#cache.clear();
      this.#ownAt = 0;
    } else this.#cache.delete(userId);
  }

  /** This account's device list may have changed (a device was linked): the next group use refetches it. */
  ownDevicesChanged(): void {
    this.#ownAt = 0;
  }

  /** A user's checked devices; a changed identity key is refused (`identity_changed`) until the user accepts it. */
  checked(userId: string, refresh = false): Promise<CheckedDevices> {
    let p = refresh ? undefined : this.#cache.get(userId);
    if (!p) {
      p = this.deps.devices(userId).then((c) => {
        if (c.pin === 'changed') {
          throw new BilTrustError(
            'identity_changed',
            `${userId} has a new identity key: compare safety numbers and accept it (contacts.acceptIdentityChange) first`,
            { user_id: userId },
          );
        }
        return c;
      });
      p.catch(() => this.#cache.delete(userId));
      this.#cache.set(userId, p);
    }
    return p;
  }

  async verified(userId: string, refresh = false): Promise<VerifiedDevice[]> {
    return (await this.checked(userId, refresh)).devices;
  }

  /** A sender device of a user, refetching once when it is not among the cached ones. */
  async sender(userId: string, deviceId: string): Promise<VerifiedDevice | undefined> {
    return (await this.verified(userId)).find((d) => d.deviceId === deviceId) ?? (await this.verified(userId, true)).find((d) => d.deviceId === deviceId);
  }

  /** This device as its own account's directory lists it, verified under its own identity key. */
  async own(): Promise<VerifiedDevice> {
    const me = await this.device.me();
    const own = await this.sender(me.userId, me.deviceId);
    if (!own) throw new BilStateError('no_pinned_identity', 'this device is not among the devices its identity key certifies');
    return own;
  }

  /** This account's verified devices, refetched when older than OWN_DEVICES_TTL_MS or after ownDevicesChanged(). */
  async ownDevices(): Promise<VerifiedDevice[]> {
    const me = await this.device.me();
    const now = this.deps.now();
    const stale = now - this.#ownAt > OWN_DEVICES_TTL_MS;
    const devices = await this.verified(me.userId, stale);
    if (stale) this.#ownAt = now;
    return devices;
  }
}
