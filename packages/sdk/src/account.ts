// The account on this device: registration (resumable), a new identity (first
// device or reset), adopting a registered device as the profile, login,
// logout, the profile on the server, and deletion with the closing list.
import {
  createAccountIdentity,
  exportDevicePrivateKeys,
  exportDevicePublicKeys,
  generateDeviceKeys,
  signDeviceList,
  toBase64Url,
  type DeviceKeyPair,
  type SignedDeviceList,
} from '@bil/crypto';
import type { ClientCore, LocalAccount } from './client-core.js';
import { checkDeviceList, nextOwnList } from './device-lists.js';
import { BilApiError, BilStateError, SessionEndedError } from './errors.js';
import type { StoredProfile } from './key-store.js';
import { withListFallback, type OwnList } from './own-list.js';
import { storedTokens } from './session.js';
import { toDevice, toUser, type Device, type DeviceJson, type TokensJson, type User, type UserJson } from './wire.js';

/** A device the server just registered, to store as this client's profile. */
export interface AdoptedDevice {
  userId: string;
  username: string;
  device: DeviceJson;
  tokens: TokensJson;
  keys: DeviceKeyPair;
  identityKey: string;
  identitySeed: string | null;
  /** The list this device registered with (pinned as this account's latest). */
  deviceList: SignedDeviceList | undefined;
  /** Other devices known to hold the identity seed (this one is added if it holds it). */
  seedHolders: string[];
}

export class Account {
  /** An account created by `register` whose first device did not register yet (retry resumes it). */
  #pendingAccount: { username: string; userId: string } | null = null;

  constructor(
    private readonly core: ClientCore,
    private readonly ownList: OwnList,
  ) {}

  get pendingRegistration(): { readonly username: string; readonly userId: string } | null {
    return this.#pendingAccount ? { ...this.#pendingAccount } : null;
  }

  async account(): Promise<LocalAccount | null> {
    await this.core.ready();
    const profile = this.core.profile();
    return profile ? this.core.local(profile) : null;
  }

  async register(params: { username: string; password: string; displayName?: string; deviceName?: string }): Promise<LocalAccount> {
    await this.core.ready();
    this.core.requireNoProfile();
    let userId: string;
    let username: string;
    if (this.#pendingAccount && this.#pendingAccount.username.toLowerCase() === params.username.toLowerCase()) {
      ({ userId, username } = this.#pendingAccount);
    } else {
      const body: Record<string, string> = { username: params.username, password: params.password };
      if (params.displayName !== undefined) body.display_name = params.displayName;
      const res = await this.core.transport.request<{ user: UserJson }>('POST', '/v1/auth/register', { body });
      ({ user_id: userId, username } = res.user);
      this.#pendingAccount = { username, userId };
    }
    const account = await this.#registerNewIdentity({ userId, username, password: params.password, deviceName: params.deviceName, reset: false });
    this.#pendingAccount = null;
    return account;
  }

  async login(params: { username?: string; password: string }): Promise<LocalAccount> {
    const profile = await this.core.requireProfile();
    if (params.username !== undefined && params.username.toLowerCase() !== profile.username.toLowerCase()) {
      throw new BilStateError('username_mismatch', `the key store holds a device of "${profile.username}"`);
    }
    const res = await this.core.transport.request<{ user_id: string; tokens: TokensJson }>('POST', '/v1/auth/login', {
      body: { username: profile.username, password: params.password, device_id: profile.deviceId },
    });
    if (res.user_id !== profile.userId) throw new BilApiError({ status: 200, code: 'invalid_response', message: 'login answered for another user' });
    const tokens = storedTokens(res.tokens, this.core.now());
    this.core.session.adopt(tokens);
    // The profile as it is now: pins or cursors stored while the request ran are kept.
    const current = this.core.profile() ?? profile;
    await this.core.commit({ ...current, tokens });
    return this.core.local(this.core.profile()!);
  }

  async logout(): Promise<void> {
    await this.core.ready();
    if (!this.core.session.tokens) return;
    try {
      await this.core.session.call('POST', '/v1/auth/logout');
    } catch (err) {
      if (!(err instanceof SessionEndedError)) throw err;
    }
    this.core.session.adopt(null);
    await this.core.saveTokens(null);
  }

  async me(): Promise<{ user: User; devices: Device[] }> {
    const res = await this.core.call<{ user: UserJson; devices: DeviceJson[] }>('GET', '/v1/me');
    return { user: toUser(res.user), devices: res.devices.map(toDevice) };
  }

  async updateProfile(params: { displayName: string }): Promise<User> {
    const res = await this.core.call<{ user: UserJson }>('PATCH', '/v1/me', { display_name: params.displayName });
    return toUser(res.user);
  }

  async changePassword(params: { oldPassword: string; newPassword: string }): Promise<void> {
    await this.core.call('POST', '/v1/me/password', { old_password: params.oldPassword, new_password: params.newPassword });
  }

  async deleteAccount(params: { password: string }): Promise<void> {
    const profile = await this.core.requireProfile();
    let closing: SignedDeviceList | undefined;
    if (profile.identitySeed !== null) {
      const own = await this.ownList.fetchState(profile);
      closing = nextOwnList({ identitySeed: profile.identitySeed, userId: profile.userId, current: own.list, certified: [], close: true, now: this.core.now() });
    }
    await withListFallback(closing, (list) => this.core.call('DELETE', '/v1/me', { password: params.password, ...(list ? { device_list: list } : {}) }));
    await this.core.forget();
  }

  async refreshSession(): Promise<void> {
    await this.core.ready();
    await this.core.session.refresh();
  }

  /** DevicesApi.resetIdentity: a new identity for this account, from the profile or from `username` and `userId`. */
  async resetIdentity(p: { password: string; deviceName?: string; username?: string; userId?: string }): Promise<LocalAccount> {
    await this.core.ready();
    const current = this.core.profile();
    const userId = current?.userId ?? p.userId;
    const username = current?.username ?? p.username;
    if (!userId || !username) {
      throw new BilStateError('user_id_required', 'no profile in the key store: pass username and userId to reset the identity');
    }
    return this.#registerNewIdentity({ userId, username, password: p.password, deviceName: p.deviceName ?? current?.deviceName, reset: true });
  }

  /** First device or identity reset: new device keys, new identity key, self-certified. */
  async #registerNewIdentity(p: { userId: string; username: string; password: string; deviceName: string | undefined; reset: boolean }): Promise<LocalAccount> {
    const keys = await generateDeviceKeys();
    const publicKeys = exportDevicePublicKeys(keys);
    const now = this.core.now();
    const { identity, certificate } = createAccountIdentity({ userId: p.userId, device: publicKeys, issuedAt: now });
    // The id is chosen here so that the first list (version 1, also after a reset) can name this device.
    const deviceId = globalThis.crypto.randomUUID();
    const deviceList = signDeviceList({ identity, userId: p.userId, version: 1, devices: [{ device_id: deviceId, ...publicKeys, added_at: now }], createdAt: now });
    const res = await this.core.transport.request<{ device: DeviceJson; tokens: TokensJson }>('POST', '/v1/auth/devices', {
      body: {
        device_id: deviceId,
        device_list: deviceList,
        username: p.username,
        password: p.password,
        device_name: p.deviceName ?? 'first device',
        ...publicKeys,
        identity_key: certificate.identity_key,
        certificate: certificate.certificate,
        certificate_issued_at: certificate.issued_at,
        reset_identity: p.reset,
      },
    });
    if (res.device.device_id !== deviceId) {
      throw new BilApiError({ status: 201, code: 'invalid_response', message: 'the device was registered under another id than the one its list names' });
    }
    try {
      return await this.adopt({
        userId: p.userId,
        username: p.username,
        device: res.device,
        tokens: res.tokens,
        keys,
        identityKey: certificate.identity_key,
        identitySeed: toBase64Url(identity.secretKey),
        deviceList,
        seedHolders: [],
      });
    } finally {
      identity.secretKey.fill(0);
    }
  }

  /** Stores a freshly registered device as this client's profile (contacts' pins survive an identity reset). */
  async adopt(p: AdoptedDevice): Promise<LocalAccount> {
    const tokens = storedTokens(p.tokens, this.core.now());
    const deviceId = p.device.device_id;
    // Contacts' list pins survive an identity reset; this account's own pin restarts with the new list.
    const deviceLists = { ...this.core.profile()?.deviceLists };
    delete deviceLists[p.userId];
    if (p.deviceList) {
      const check = await checkDeviceList({ userId: p.userId, pinnedKey: p.identityKey, presented: p.deviceList, pin: undefined });
      if (check.pin) deviceLists[p.userId] = check.pin;
    }
    const seedHolders = [...new Set([...p.seedHolders, ...(p.identitySeed !== null ? [deviceId] : [])])];
    const profile: StoredProfile = {
      version: 1,
      userId: p.userId,
      username: p.username,
      deviceId: p.device.device_id,
      deviceName: p.device.name,
      identityKey: p.identityKey,
      identitySeed: p.identitySeed,
      deviceKeys: await exportDevicePrivateKeys(p.keys),
      tokens,
      pins: this.core.pins().snapshot(),
      deviceLists,
      seedHolders,
    };
    this.core.session.adopt(tokens);
    await this.core.commit(profile);
    return this.core.local(profile);
  }
}
