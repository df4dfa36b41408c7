// BilClient: one device's view of the public API (docs/api.md) with the
// end-to-end rules of docs/protocol.md applied on the client side: devices are
// certified by the account identity key, contacts' identity keys are pinned on
// first use, and nothing certified by an unpinned key is trusted.
import {
  createAccountIdentity,
  exportDevicePrivateKeys,
  exportDevicePublicKeys,
  fromBase64Url,
  generateDeviceKeys,
  IdentityPins,
  importDevicePrivateKeys,
  identityKeyFromSeed,
  safetyNumber,
  safetyNumbersMatch,
  selectCertifiedDevices,
  toBase64Url,
  type DeviceKeyPair,
  type DeviceRecord,
  type VerifiedDevice,
} from '@bil/crypto';
import { ChatEngine, type ChatsApi, type MessagesApi, type UnreadOverview } from './chats.js';
import { DigestEngine, type DigestOptions, type DigestOutcome } from './digest.js';
import { BilApiError, BilStateError, SessionEndedError } from './errors.js';
import { TypedEmitter, type Listener } from './events.js';
import { parseProfile, type KeyStore, type StoredProfile, type StoredTokens } from './key-store.js';
import { LiveClient, type LiveClientOptions } from './live-client.js';
import { createLinkRequest, openLinkApproval, parseLinkRequest, sealLinkApproval, type LinkApproval, type LinkRequest } from './linking.js';
import { Session, storedTokens } from './session.js';
import { Transport, type FetchLike } from './transport.js';
import {
  toDevice,
  toUser,
  type Device,
  type DeviceJson,
  type DirectoryJson,
  type TokensJson,
  type User,
  type UserJson,
} from './wire.js';

export interface BilClientOptions {
  /** The gateway, e.g. "https://api.example.com" (paths /v1/... are appended). */
  baseUrl: string;
  /** Where this device keeps its profile (MemoryKeyStore, FileKeyStore from "@bil/sdk/node", or your own). */
  keyStore: KeyStore;
  /** A fetch implementation; defaults to globalThis.fetch. */
  fetch?: FetchLike;
  /** Per-request timeout in ms (default 30 000), then BilNetworkError with code "timeout". */
  timeoutMs?: number;
  /** Refresh the access token this long before it expires, at most half its lifetime (default 60 000 ms). */
  refreshSkewMs?: number;
  /** Clock in ms since the epoch (tests). */
  now?: () => number;
}

/** A contact's identity key differs from the one pinned; devices it certifies are not trusted until accepted. */
export interface SafetyNumberChangedEvent {
  readonly userId: string;
  readonly previousIdentityKey: string;
  readonly currentIdentityKey: string;
}

export interface SessionEndedEvent {
  /** The API code that ended it: refresh_token_reused, invalid_refresh_token, session_expired, token_revoked, account_deleted. */
  readonly code: string;
}

export interface TokensRefreshedEvent {
  readonly sessionId: string;
  readonly accessTokenExpiresAt: number;
}

export interface BilClientEvents {
  'safety-number-changed': SafetyNumberChangedEvent;
  'session-ended': SessionEndedEvent;
  'tokens-refreshed': TokensRefreshedEvent;
}

/** What this device knows about itself (from the key store, no server call). */
export interface LocalAccount {
  readonly userId: string;
  readonly username: string;
  readonly deviceId: string;
  readonly deviceName: string;
  /** The account identity public key this device is certified under. */
  readonly identityKey: string;
  /** Whether this device holds the identity private key (and can approve links). */
  readonly holdsIdentityKey: boolean;
  readonly signedIn: boolean;
}

/** One of the caller's own devices. */
export interface OwnDevice extends Device {
  /** This is the device the client runs on. */
  readonly current: boolean;
  /** The certificate verifies under this device's account identity key. */
  readonly certified: boolean;
}

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
  /** Devices the server lists that fail verification (unverified, or certified by an unaccepted new key). */
  readonly rejected: { readonly deviceId: string; readonly name: string }[];
}

export interface DevicesApi {
  /** The account's active devices, each checked against this device's identity key. */
  list(): Promise<OwnDevice[]>;
  /** Revokes a device of the account; revoking this device also clears the key store. */
  revoke(deviceId: string): Promise<void>;
  /** New device, step 1: generates keys and returns the request to show the approving device. */
  linkRequest(options?: { deviceName?: string }): Promise<LinkRequest>;
  /** Existing device holding the identity key, step 2: certifies the request's keys. */
  approveLink(request: LinkRequest | string, options?: { shareIdentityKey?: boolean }): Promise<LinkApproval>;
  /** New device, step 3: opens the approval and registers with the account password. */
  completeLink(params: { approval: LinkApproval | string; password: string }): Promise<LocalAccount>;
  /**
   * Registers this client as a new device under a new account identity key;
   * the server revokes every other device, and contacts see a changed safety
   * number. For a device without a profile, pass `username` and `userId`.
   */
  resetIdentity(params: { password: string; deviceName?: string; username?: string; userId?: string }): Promise<LocalAccount>;
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

interface PendingLink {
  request: LinkRequest;
  keys: DeviceKeyPair;
}

/**
 * The bil-message client for one device.
 * @example
 * const client = new BilClient({ baseUrl: 'http://localhost:8080', keyStore: new MemoryKeyStore() });
 * await client.register({ username: 'alice', password: 'correct horse battery' });
 * const bob = await client.contacts.find('bob');
 * const { devices } = await client.contacts.devices(bob.userId);
 */
export class BilClient {
  readonly devices: DevicesApi;
  readonly contacts: ContactsApi;
  /** Personal chats and groups, membership and group epochs. */
  readonly chats: ChatsApi;
  /** Sending, history (decrypted and verified) and read markers. */
  readonly messages: MessagesApi;

  readonly #transport: Transport;
  readonly #store: KeyStore;
  readonly #events = new TypedEmitter<BilClientEvents>();
  readonly #now: () => number;
  readonly #session: Session;
  #profile: StoredProfile | null = null;
  #pins = new IdentityPins();
  #loaded: Promise<void> | null = null;
  #saves: Promise<void> = Promise.resolve();
  #pendingLink: PendingLink | null = null;
  /** An account created by `register` whose first device did not register yet (retry resumes it). */
  #pendingAccount: { username: string; userId: string } | null = null;
  readonly #chatEngine: ChatEngine;
  readonly #digestEngine: DigestEngine;

  constructor(options: BilClientOptions) {
    if (!options || typeof options.keyStore?.load !== 'function') throw new TypeError('keyStore: expected a KeyStore');
    this.#transport = new Transport(options);
    this.#store = options.keyStore;
    this.#now = options.now ?? (() => Date.now());
    this.#session = new Session(
      this.#transport,
      {
        now: this.#now,
        refreshSkewMs: options.refreshSkewMs ?? 60_000,
        persist: (tokens) => this.#saveTokens(tokens),
        refreshed: (t) => this.#events.emit('tokens-refreshed', { sessionId: t.sessionId, accessTokenExpiresAt: t.accessTokenExpiresAt }),
        ended: (code) => this.#events.emit('session-ended', { code }),
      },
      null,
    );
    this.devices = {
      list: () => this.#listDevices(),
      revoke: (deviceId) => this.#revokeDevice(deviceId),
      linkRequest: (o) => this.#linkRequest(o?.deviceName),
      approveLink: async (request, o) => {
        const approval = await this.#approveLink(request, o?.shareIdentityKey ?? true);
        // The new device registers next: let group chats look for it and hand it their keys.
        this.#chatEngine.ownDevicesChanged();
        return approval;
      },
      completeLink: (p) => this.#completeLink(p.approval, p.password),
      resetIdentity: (p) => this.#resetIdentity(p),
    };
    this.contacts = {
      find: (username) => this.#findUser(username),
      devices: (userId) => this.#contactDevices(userId),
      acceptIdentityChange: (userId, identityKey) => this.#acceptIdentityChange(userId, identityKey),
      safetyNumber: (userId) => this.#safetyNumber(userId),
      verifySafetyNumber: (userId, digits) => this.#verifySafetyNumber(userId, digits),
      pinned: async (userId) => {
        await this.#ready();
        const p = this.#pins.snapshot().pins[userId];
        return p ? { identityKey: p.identity_key, verified: p.verified } : null;
      },
    };
    this.#chatEngine = new ChatEngine({
      call: (method, path, body) => this.#authed(method, path, body),
      profile: () => this.#requireProfile(),
      devices: (userId) => this.#contactDevices(userId),
      checkIdentity: (userId, identityKey) => this.#checkMemberIdentity(userId, identityKey),
      save: async (chats) => {
        if (this.#profile) await this.#commit({ ...this.#profile, chats });
      },
      now: this.#now,
    });
    this.chats = this.#chatEngine.chats;
    this.messages = this.#chatEngine.messages;
    this.#digestEngine = new DigestEngine({
      call: (method, path, body) => this.#authed(method, path, body),
      me: async () => {
        const p = await this.#requireProfile();
        return { local: { userId: p.userId, deviceId: p.deviceId, keys: await importDevicePrivateKeys(p.deviceKeys) }, username: p.username };
      },
      pinnedService: async (service) => (await this.#requireProfile()).servicePins?.[service] ?? null,
      pinService: async (service, key) => {
        const p = await this.#requireProfile();
        await this.#commit({ ...p, servicePins: { ...p.servicePins, [service]: key } });
      },
      unread: (o) => this.#chatEngine.unread(o),
      history: (chatId, o) => this.#chatEngine.messages.history(chatId, o),
      now: this.#now,
    });
  }

  /** Unread messages over all chats (`GET /v1/unread`): the total and each chat with unread messages (with `messagesPerChat`, its newest ones decrypted). */
  unread(options?: { limit?: number; messagesPerChat?: number; pageToken?: string }): Promise<UnreadOverview> {
    return this.#chatEngine.unread(options);
  }

  /** Digests of unread chats (src/digest.ts): summaries, or the messages below the threshold, or `disabled`. */
  digest(chatIds: readonly string[], options?: DigestOptions): Promise<DigestOutcome[]> {
    return this.#digestEngine.digest(chatIds, options);
  }

  /** Digest policy of a chat, offering, and switching digests off (src/digest.ts). */
  get digests(): Pick<DigestEngine, 'policy' | 'setPolicy' | 'offered'> {
    return this.#digestEngine;
  }

  // ---- events -------------------------------------------------------------

  on<K extends keyof BilClientEvents>(type: K, listener: Listener<BilClientEvents[K]>): () => void {
    return this.#events.on(type, listener);
  }

  once<K extends keyof BilClientEvents>(type: K, listener: Listener<BilClientEvents[K]>): () => void {
    return this.#events.once(type, listener);
  }

  off<K extends keyof BilClientEvents>(type: K, listener: Listener<BilClientEvents[K]>): void {
    this.#events.off(type, listener);
  }

  // ---- account --------------------------------------------------------------

  /**
   * The account a failed `register` created whose first device did not
   * register yet, or null. It lives in this client only: an app that wants
   * to resume after a restart keeps it and passes it to
   * `devices.resetIdentity({ username, userId, password })`, which registers
   * the first device (an account without an identity key gets its first one;
   * nothing is reset).
   */
  get pendingRegistration(): { readonly username: string; readonly userId: string } | null {
    return this.#pendingAccount ? { ...this.#pendingAccount } : null;
  }

  /** This device's account as stored locally, or null before register/link. */
  async account(): Promise<LocalAccount | null> {
    await this.#ready();
    return this.#profile ? this.#local(this.#profile) : null;
  }

  /**
   * Creates the account and its first device: generates the device keys and
   * the account identity key, certifies the device, registers it and stores
   * keys and tokens. A retry after a failure between the two steps resumes.
   */
  async register(params: { username: string; password: string; displayName?: string; deviceName?: string }): Promise<LocalAccount> {
    await this.#ready();
    this.#requireNoProfile();
    let userId: string;
    let username: string;
    if (this.#pendingAccount && this.#pendingAccount.username.toLowerCase() === params.username.toLowerCase()) {
      ({ userId, username } = this.#pendingAccount);
    } else {
      const body: Record<string, string> = { username: params.username, password: params.password };
      if (params.displayName !== undefined) body.display_name = params.displayName;
      const res = await this.#transport.request<{ user: UserJson }>('POST', '/v1/auth/register', { body });
      ({ user_id: userId, username } = res.user);
      this.#pendingAccount = { username, userId };
    }
    const account = await this.#registerNewIdentity({ userId, username, password: params.password, deviceName: params.deviceName, reset: false });
    this.#pendingAccount = null;
    return account;
  }

  /** Starts a new session on the device in the key store (after logout or a session end). */
  async login(params: { username?: string; password: string }): Promise<LocalAccount> {
    const profile = await this.#requireProfile();
    if (params.username !== undefined && params.username.toLowerCase() !== profile.username.toLowerCase()) {
      throw new BilStateError('username_mismatch', `the key store holds a device of "${profile.username}"`);
    }
    const res = await this.#transport.request<{ user_id: string; tokens: TokensJson }>('POST', '/v1/auth/login', {
      body: { username: profile.username, password: params.password, device_id: profile.deviceId },
    });
    if (res.user_id !== profile.userId) throw new BilApiError({ status: 200, code: 'invalid_response', message: 'login answered for another user' });
    const tokens = storedTokens(res.tokens, this.#now());
    this.#session.adopt(tokens);
    await this.#commit({ ...profile, tokens });
    return this.#local(this.#profile!);
  }

  /** Ends this session on the server and forgets its tokens (the device keys stay). */
  async logout(): Promise<void> {
    await this.#ready();
    if (!this.#session.tokens) return;
    try {
      await this.#session.call('POST', '/v1/auth/logout');
    } catch (err) {
      if (!(err instanceof SessionEndedError)) throw err;
    }
    this.#session.adopt(null);
    await this.#saveTokens(null);
  }

  /** The account and its active devices, as the server reports them. */
  async me(): Promise<{ user: User; devices: Device[] }> {
    const res = await this.#authed<{ user: UserJson; devices: DeviceJson[] }>('GET', '/v1/me');
    return { user: toUser(res.user), devices: res.devices.map(toDevice) };
  }

  async updateProfile(params: { displayName: string }): Promise<User> {
    const res = await this.#authed<{ user: UserJson }>('PATCH', '/v1/me', { display_name: params.displayName });
    return toUser(res.user);
  }

  /** Changes the password; every other session of the account ends, this one stays. */
  async changePassword(params: { oldPassword: string; newPassword: string }): Promise<void> {
    await this.#authed('POST', '/v1/me/password', { old_password: params.oldPassword, new_password: params.newPassword });
  }

  /** Deletes the account on the server and clears the key store. */
  async deleteAccount(params: { password: string }): Promise<void> {
    await this.#authed('DELETE', '/v1/me', { password: params.password });
    await this.#forget();
  }

  /** Refreshes the access token now (normally automatic). */
  async refreshSession(): Promise<void> {
    await this.#ready();
    await this.#session.refresh();
  }

  // ---- devices --------------------------------------------------------------

  async #listDevices(): Promise<OwnDevice[]> {
    const profile = await this.#requireProfile();
    const res = await this.#authed<{ user: UserJson; devices: DeviceJson[] }>('GET', '/v1/me');
    const { certified } = await selectCertifiedDevices(
      res.devices.map((d) => recordOf(d, profile.identityKey)),
      profile.identityKey,
    );
    const ok = new Set(certified.map((d) => d.deviceId));
    return res.devices.map((d) => ({ ...toDevice(d), current: d.device_id === profile.deviceId, certified: ok.has(d.device_id) }));
  }

  async #revokeDevice(deviceId: string): Promise<void> {
    const profile = await this.#requireProfile();
    await this.#authed('DELETE', `/v1/devices/${encodeURIComponent(deviceId)}`);
    if (deviceId === profile.deviceId) await this.#forget();
  }

  async #linkRequest(deviceName = 'linked device'): Promise<LinkRequest> {
    await this.#ready();
    this.#requireNoProfile();
    const keys = await generateDeviceKeys();
    const request = createLinkRequest(keys, deviceName);
    this.#pendingLink = { request, keys };
    return request;
  }

  async #approveLink(value: LinkRequest | string, shareIdentityKey: boolean): Promise<LinkApproval> {
    const profile = await this.#requireProfile();
    if (profile.identitySeed === null) {
      throw new BilStateError('identity_key_not_held', 'this device does not hold the account identity key; approve the link from one that does');
    }
    const request = await parseLinkRequest(value);
    const identity = identityKeyFromSeed(fromBase64Url(profile.identitySeed, 32));
    try {
      return await sealLinkApproval({ request, identity, userId: profile.userId, username: profile.username, shareIdentityKey, now: this.#now() });
    } finally {
      identity.secretKey.fill(0);
    }
  }

  async #completeLink(approval: LinkApproval | string, password: string): Promise<LocalAccount> {
    await this.#ready();
    this.#requireNoProfile();
    const pending = this.#pendingLink;
    if (!pending) throw new BilStateError('no_pending_link', 'no link request pending on this client: call devices.linkRequest() first');
    const grant = await openLinkApproval({ approval, request: pending.request, keys: pending.keys });
    const res = await this.#transport.request<{ device: DeviceJson; tokens: TokensJson }>('POST', '/v1/auth/devices', {
      body: {
        username: grant.username,
        password,
        device_name: pending.request.device_name,
        encryption_key: pending.request.encryption_key,
        signing_key: pending.request.signing_key,
        identity_key: grant.identity_key,
        certificate: grant.certificate,
        certificate_issued_at: grant.issued_at,
      },
    });
    if (res.device.user_id !== grant.user_id) {
      throw new BilApiError({ status: 201, code: 'invalid_response', message: 'the device was registered to another user' });
    }
    const account = await this.#adoptDevice({
      userId: grant.user_id,
      username: grant.username,
      device: res.device,
      tokens: res.tokens,
      keys: pending.keys,
      identityKey: grant.identity_key,
      identitySeed: grant.identity_seed === '' ? null : grant.identity_seed,
    });
    this.#pendingLink = null;
    return account;
  }

  async #resetIdentity(p: { password: string; deviceName?: string; username?: string; userId?: string }): Promise<LocalAccount> {
    await this.#ready();
    const userId = this.#profile?.userId ?? p.userId;
    const username = this.#profile?.username ?? p.username;
    if (!userId || !username) {
      throw new BilStateError('user_id_required', 'no profile in the key store: pass username and userId to reset the identity');
    }
    return this.#registerNewIdentity({ userId, username, password: p.password, deviceName: p.deviceName ?? this.#profile?.deviceName, reset: true });
  }

  /** First device or identity reset: new device keys, new identity key, self-certified. */
  async #registerNewIdentity(p: { userId: string; username: string; password: string; deviceName: string | undefined; reset: boolean }): Promise<LocalAccount> {
    const keys = await generateDeviceKeys();
    const publicKeys = exportDevicePublicKeys(keys);
    const { identity, certificate } = createAccountIdentity({ userId: p.userId, device: publicKeys, issuedAt: this.#now() });
    const res = await this.#transport.request<{ device: DeviceJson; tokens: TokensJson }>('POST', '/v1/auth/devices', {
      body: {
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
    try {
      return await this.#adoptDevice({
        userId: p.userId,
        username: p.username,
        device: res.device,
        tokens: res.tokens,
        keys,
        identityKey: certificate.identity_key,
        identitySeed: toBase64Url(identity.secretKey),
      });
    } finally {
      identity.secretKey.fill(0);
    }
  }

  /** Stores a freshly registered device as this client's profile (contacts' pins survive an identity reset). */
  async #adoptDevice(p: {
    userId: string;
    username: string;
    device: DeviceJson;
    tokens: TokensJson;
    keys: DeviceKeyPair;
    identityKey: string;
    identitySeed: string | null;
  }): Promise<LocalAccount> {
    const tokens = storedTokens(p.tokens, this.#now());
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
      pins: this.#pins.snapshot(),
    };
    this.#session.adopt(tokens);
    await this.#commit(profile);
    return this.#local(profile);
  }

  // ---- contacts -------------------------------------------------------------

  async #findUser(username: string): Promise<User> {
    const res = await this.#authed<{ user: UserJson }>('GET', `/v1/users?username=${encodeURIComponent(username)}`);
    return toUser(res.user);
  }

  async #contactDevices(userId: string): Promise<ContactDevices> {
    const profile = await this.#requireProfile();
    const dir = await this.#authed<DirectoryJson>('GET', `/v1/users/${encodeURIComponent(userId)}/devices`);
    const presented = dir.identity_key;
    const all = dir.devices.map((d) => ({ deviceId: d.device_id, name: d.name }));
    const base = { userId, presentedIdentityKey: presented };
    if (dir.user_id !== userId || presented === '') {
      return { ...base, pin: 'no-identity', pinnedIdentityKey: '', verified: false, devices: [], rejected: all };
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
        check = this.#pins.check(userId, presented);
      } catch {
        // Not a 32-byte Ed25519 key in base64url: nothing can be verified under it.
        return { ...base, pin: 'no-identity', pinnedIdentityKey: '', verified: false, devices: [], rejected: all };
      }
      if (check.status === 'first-use') {
        await this.#savePins();
        pinned = check.identityKey;
      } else if (check.status === 'unchanged') {
        pinned = check.identityKey;
        verified = check.verified;
      } else {
        pinned = check.pinned;
        this.#events.emit('safety-number-changed', { userId, previousIdentityKey: check.pinned, currentIdentityKey: check.presented });
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
    const ok = new Set(certified.map((d) => d.deviceId));
    return { ...base, pin, pinnedIdentityKey: pinned, verified, devices: certified, rejected: all.filter((d) => !ok.has(d.deviceId)) };
  }

  /**
   * A group member's identity key as a verified epoch record lists it,
   * against the pin: pinned on first sight; a different key raises "safety
   * number changed", as for a contact, and is refused until accepted.
   */
  async #checkMemberIdentity(userId: string, identityKey: string): Promise<'ok' | 'changed'> {
    const profile = await this.#requireProfile();
    if (userId === profile.userId) return identityKey === profile.identityKey ? 'ok' : 'changed';
    const check = this.#pins.check(userId, identityKey);
    if (check.status === 'first-use') await this.#savePins();
    if (check.status !== 'changed') return 'ok';
    this.#events.emit('safety-number-changed', { userId, previousIdentityKey: check.pinned, currentIdentityKey: check.presented });
    return 'changed';
  }

  async #acceptIdentityChange(userId: string, identityKey?: string): Promise<void> {
    await this.#requireProfile();
    let key = identityKey;
    if (key === undefined) {
      const dir = await this.#authed<DirectoryJson>('GET', `/v1/users/${encodeURIComponent(userId)}/devices`);
      key = dir.identity_key;
    }
    if (!key) throw new BilStateError('no_pinned_identity', 'the user has no identity key to accept');
    this.#pins.accept(userId, key);
    await this.#savePins();
  }

  async #safetyNumber(userId: string): Promise<string> {
    const profile = await this.#requireProfile();
    let pinned = this.#pins.pinned(userId);
    if (pinned === undefined && userId !== profile.userId) {
      await this.#contactDevices(userId);
      pinned = this.#pins.pinned(userId);
    }
    if (userId === profile.userId) pinned = profile.identityKey;
    if (pinned === undefined) throw new BilStateError('no_pinned_identity', 'the user has no identity key yet');
    return safetyNumber({ userId: profile.userId, identityKey: profile.identityKey }, { userId, identityKey: pinned });
  }

  async #verifySafetyNumber(userId: string, digits: string): Promise<boolean> {
    const expected = await this.#safetyNumber(userId);
    if (!safetyNumbersMatch(digits, expected)) return false;
    const pinned = this.#pins.pinned(userId);
    if (pinned !== undefined) {
      this.#pins.markVerified(userId, pinned);
      await this.#savePins();
    }
    return true;
  }

  // ---- state ----------------------------------------------------------------

  #ready(): Promise<void> {
    this.#loaded ??= (async () => {
      const stored = await this.#store.load();
      if (stored === null) return;
      const profile = parseProfile(stored);
      this.#profile = profile;
      this.#pins = new IdentityPins(profile.pins);
      this.#session.adopt(profile.tokens);
    })().catch((err: unknown) => {
      this.#loaded = null; // let a later call retry (e.g. after fixing the passphrase)
      throw err;
    });
    return this.#loaded;
  }

  async #requireProfile(): Promise<StoredProfile> {
    await this.#ready();
    if (!this.#profile) throw new BilStateError('no_profile', 'no device in the key store: register or link this device first');
    return this.#profile;
  }

  #requireNoProfile(): void {
    if (this.#profile) throw new BilStateError('profile_exists', `the key store already holds a device of "${this.#profile.username}"`);
  }

  async #authed<T>(method: string, path: string, body?: unknown): Promise<T> {
    await this.#ready();
    return this.#session.call<T>(method, path, body);
  }

  #local(p: StoredProfile): LocalAccount {
    return {
      userId: p.userId,
      username: p.username,
      deviceId: p.deviceId,
      deviceName: p.deviceName,
      identityKey: p.identityKey,
      holdsIdentityKey: p.identitySeed !== null,
      signedIn: this.#session.tokens !== null,
    };
  }

  /** Makes `next` the profile and writes it; writes are queued so the store sees them in order. */
  async #commit(next: StoredProfile | null): Promise<void> {
    this.#profile = next;
    const write = this.#saves.then(() => (next ? this.#store.save(next) : this.#store.clear()));
    this.#saves = write.catch(() => undefined);
    await write;
  }

  async #saveTokens(tokens: StoredTokens | null): Promise<void> {
    if (this.#profile) await this.#commit({ ...this.#profile, tokens });
  }

  async #savePins(): Promise<void> {
    if (this.#profile) await this.#commit({ ...this.#profile, pins: this.#pins.snapshot() });
  }

  async #forget(): Promise<void> {
    this.#session.adopt(null);
    this.#pins = new IdentityPins();
    await this.#commit(null);
  }

  // ---- live (the logic is in live-client.ts) --------------------------------

  /** The live connection through the gateway's `/v1/ws`: decrypted messages, receipts, typing, key and membership changes (docs/sdk.md "Live"). */
  live(options?: LiveClientOptions): LiveClient {
    return new LiveClient(
      {
        baseUrl: this.#transport.baseUrl,
        accessToken: async () => {
          await this.#ready();
          return this.#session.accessToken();
        },
        refreshToken: async () => {
          await this.#ready();
          return (await this.#session.refresh()).accessToken;
        },
        profile: () => this.#requireProfile(),
        saveCursors: async (cursors) => {
          const p = this.#profile;
          if (!p) return;
          const merged = { ...p.cursors };
          for (const [chatId, seq] of Object.entries(cursors)) merged[chatId] = Math.max(merged[chatId] ?? 0, seq);
          await this.#commit({ ...p, cursors: merged });
        },
        messages: this.messages,
        checkContact: (userId) => this.#contactDevices(userId),
        onSafetyNumberChanged: (listener) => this.#events.on('safety-number-changed', listener),
        digestSettled: (requestId) => this.#digestEngine.settled(requestId),
      },
      options,
    );
  }
}

/** A directory entry as the device record of docs/protocol.md, under the identity key the directory names. */
function recordOf(d: DeviceJson, identityKey: string): DeviceRecord {
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
