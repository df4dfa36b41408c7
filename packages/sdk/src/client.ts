// BilClient: one device's view of the public API (docs/api.md) with the
// end-to-end rules of docs/protocol.md applied on the client side: devices are
// certified by the account identity key, contacts' identity keys are pinned on
// first use, and nothing certified by an unpinned key is trusted.
import { fromBase64Url, generateDeviceKeys, IdentityPins, importDevicePrivateKeys, identityKeyFromSeed, type DeviceKeyPair, type SignedDeviceList } from '@bil/crypto';
import { Account } from './account.js';
import { nextOwnList, usableDevices } from './device-lists.js';
import { ChatEngine, type ChatsApi, type MessagesApi, type UnreadOverview } from './chats.js';
import type { BilClientEvents, ClientCore, LocalAccount } from './client-core.js';
import { Contacts, type ContactsApi } from './contacts.js';
import { DigestEngine, type DigestOptions, type DigestOutcome } from './digest.js';
import { BilApiError, BilStateError } from './errors.js';
export type { DeviceListPin } from './device-lists.js';
export type {
  BilClientEvents,
  DeviceListChangedEvent,
  LocalAccount,
  SafetyNumberChangedEvent,
  SessionEndedEvent,
  TokensRefreshedEvent,
} from './client-core.js';
export type { ContactDevices, ContactsApi, PinStatus } from './contacts.js';
import { TypedEmitter, type Listener } from './events.js';
import { parseProfile, type KeyStore, type StoredProfile, type StoredTokens } from './key-store.js';
import { LiveClient, type LiveClientOptions } from './live-client.js';
import { createLinkRequest, openLinkApproval, parseLinkRequest, sealLinkApproval, type LinkApproval, type LinkRequest } from './linking.js';
import { OwnList, withListFallback, type MeJson } from './own-list.js';
import { Session } from './session.js';
import { Transport, type FetchLike } from './transport.js';
import { toDevice, type Device, type DeviceJson, type TokensJson, type User } from './wire.js';

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

/** One of the caller's own devices. */
export interface OwnDevice extends Device {
  /** This is the device the client runs on. */
  readonly current: boolean;
  /** The certificate verifies under this device's account identity key. */
  readonly certified: boolean;
  /** In the account's latest signed device list with the same keys (for an account without a list: equals `certified`). */
  readonly listed: boolean;
}

/** What `devices.revoke` did. */
export interface RevokeResult {
  readonly deviceId: string;
  /**
   * The next signed device list went with the revocation. False when this
   * device doesn't hold the identity key (it can't sign one): the server
   * revoked the device anyway, and the next device holding the key that sees
   * the change publishes the list (automatically, in `devices.list()` or when
   * it looks up its own devices); until then contacts still see the older list.
   */
  readonly deviceListPublished: boolean;
  /**
   * The revoked device held the account identity key (this client knows it
   * did: it linked it sharing the key, was linked by it, or is it). The key
   * can still certify devices and sign lists wherever it was copied: reset
   * the identity (`devices.resetIdentity`) to be sure it no longer counts.
   */
  readonly identityResetAdvised: boolean;
}

export interface DevicesApi {
  /** The account's active devices, each checked against this device's identity key. */
  list(): Promise<OwnDevice[]>;
  /**
   * Revokes a device of the account (with the next signed device list if this
   * device holds the identity key); revoking this device also clears the key
   * store. See {@link RevokeResult} for the list and the reset advice.
   */
  revoke(deviceId: string): Promise<RevokeResult>;
  /** New device, step 1: generates keys and returns the request to show the approving device. */
  linkRequest(options?: { deviceName?: string }): Promise<LinkRequest>;
  /**
   * Existing device holding the identity key, step 2: certifies the request's
   * keys, chooses the new device's id and signs the next device list naming
   * it. `shareIdentityKey` (default false) also hands over the identity
   * private key: the new device can then approve links and sign lists, and
   * whoever steals it can certify devices until an identity reset.
   */
  approveLink(request: LinkRequest | string, options?: { shareIdentityKey?: boolean }): Promise<LinkApproval>;
  /**
   * Publishes the account's next signed device list if it is due (this device
   * must hold the identity key): the first list of an account from before
   * signed lists, or the list after a revocation made by a device without the
   * key. Returns the version published, or null if nothing was due.
   */
  syncList(): Promise<number | null>;
  /** New device, step 3: opens the approval and registers with the account password. */
  completeLink(params: { approval: LinkApproval | string; password: string }): Promise<LocalAccount>;
  /**
   * Registers this client as a new device under a new account identity key;
   * the server revokes every other device, and contacts see a changed safety
   * number. For a device without a profile, pass `username` and `userId`.
   */
  resetIdentity(params: { password: string; deviceName?: string; username?: string; userId?: string }): Promise<LocalAccount>;
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
  /** This account's signed device list and list pins (own-list.ts). */
  readonly #ownList: OwnList;
  /** Registration, login, logout, the server profile, deletion, identity reset. */
  readonly #account: Account;
  /** The directory check and pins behind `contacts` (also used by chats and live). */
  readonly #contacts: Contacts;
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
    const core: ClientCore = {
      transport: this.#transport,
      session: this.#session,
      now: this.#now,
      ready: () => this.#ready(),
      requireProfile: () => this.#requireProfile(),
      requireNoProfile: () => this.#requireNoProfile(),
      profile: () => this.#profile,
      commit: (next) => this.#commit(next),
      pins: () => this.#pins,
      savePins: () => this.#savePins(),
      saveTokens: (tokens) => this.#saveTokens(tokens),
      forget: () => this.#forget(),
      call: (method, path, body) => this.#authed(method, path, body),
      local: (p) => this.#local(p),
      emit: (type, event) => this.#events.emit(type, event),
    };
    this.#ownList = new OwnList(core);
    this.#account = new Account(core, this.#ownList);
    this.devices = {
      list: () => this.#listDevices(),
      revoke: (deviceId) => this.#revokeDevice(deviceId),
      linkRequest: (o) => this.#linkRequest(o?.deviceName),
      approveLink: async (request, o) => {
        const approval = await this.#approveLink(request, o?.shareIdentityKey ?? false);
        // The new device registers next: let group chats look for it and hand it their keys.
        this.#chatEngine.ownDevicesChanged();
        return approval;
      },
      completeLink: (p) => this.#completeLink(p.approval, p.password),
      syncList: async () => {
        const profile = await this.#requireProfile();
        return this.#ownList.sync(profile, await this.#ownList.fetchState(profile));
      },
      resetIdentity: (p) => this.#account.resetIdentity(p),
    };
    this.#contacts = new Contacts(core, this.#ownList);
    const contacts = this.#contacts;
    this.contacts = {
      find: (username) => contacts.find(username),
      devices: (userId) => contacts.devices(userId),
      acceptIdentityChange: (userId, identityKey) => contacts.acceptIdentityChange(userId, identityKey),
      safetyNumber: (userId) => contacts.safetyNumber(userId),
      verifySafetyNumber: (userId, digits) => contacts.verifySafetyNumber(userId, digits),
      pinned: (userId) => contacts.pinned(userId),
    };
    this.#chatEngine = new ChatEngine({
      call: (method, path, body) => this.#authed(method, path, body),
      profile: () => this.#requireProfile(),
      devices: (userId) => contacts.devices(userId),
      checkIdentity: (userId, identityKey) => contacts.checkMemberIdentity(userId, identityKey),
      save: async (chats) => {
        if (this.#profile) await this.#commit({ ...this.#profile, chats });
      },
      now: this.#now,
    });
    // A contact's signed device list dropped devices: groups listing them get a new epoch before the next send.
    this.#events.on('device-list-changed', (e) => {
      if (e.removedDeviceIds.length > 0) this.#chatEngine.contactDevicesChanged(e.userId);
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

  // ---- account (the logic is in account.ts) ---------------------------------

  /**
   * The account a failed `register` created whose first device did not
   * register yet, or null. It lives in this client only: an app that wants
   * to resume after a restart keeps it and passes it to
   * `devices.resetIdentity({ username, userId, password })`, which registers
   * the first device (an account without an identity key gets its first one;
   * nothing is reset).
   */
  get pendingRegistration(): { readonly username: string; readonly userId: string } | null {
    return this.#account.pendingRegistration;
  }

  /** This device's account as stored locally, or null before register/link. */
  async account(): Promise<LocalAccount | null> {
    return this.#account.account();
  }

  /**
   * Creates the account and its first device: generates the device keys and
   * the account identity key, certifies the device, registers it and stores
   * keys and tokens. A retry after a failure between the two steps resumes.
   */
  async register(params: { username: string; password: string; displayName?: string; deviceName?: string }): Promise<LocalAccount> {
    return this.#account.register(params);
  }

  /** Starts a new session on the device in the key store (after logout or a session end). */
  async login(params: { username?: string; password: string }): Promise<LocalAccount> {
    return this.#account.login(params);
  }

  /** Ends this session on the server and forgets its tokens (the device keys stay). */
  async logout(): Promise<void> {
    return this.#account.logout();
  }

  /** The account and its active devices, as the server reports them. */
  async me(): Promise<{ user: User; devices: Device[] }> {
    return this.#account.me();
  }

  async updateProfile(params: { displayName: string }): Promise<User> {
    return this.#account.updateProfile(params);
  }

  /** Changes the password; every other session of the account ends, this one stays. */
  async changePassword(params: { oldPassword: string; newPassword: string }): Promise<void> {
    return this.#account.changePassword(params);
  }

  /**
   * Deletes the account on the server and clears the key store. A device
   * holding the identity key also signs the closing device list (no devices),
   * so contacts can verify that the account was closed.
   */
  async deleteAccount(params: { password: string }): Promise<void> {
    return this.#account.deleteAccount(params);
  }

  /** Refreshes the access token now (normally automatic). */
  async refreshSession(): Promise<void> {
    return this.#account.refreshSession();
  }

  // ---- devices --------------------------------------------------------------

  async #listDevices(): Promise<OwnDevice[]> {
    const profile = await this.#requireProfile();
    const res = await this.#authed<MeJson>('GET', '/v1/me');
    const own = await this.#ownList.state(profile, res);
    await this.#ownList.sync(profile, own);
    const ok = new Set(own.certified.map((d) => d.deviceId));
    const listed = new Set(usableDevices(own.list, own.certified).map((d) => d.deviceId));
    return res.devices.map((d) => ({
      ...toDevice(d),
      current: d.device_id === profile.deviceId,
      certified: ok.has(d.device_id),
      listed: listed.has(d.device_id),
    }));
  }

  async #revokeDevice(deviceId: string): Promise<RevokeResult> {
    const profile = await this.#requireProfile();
    let next: SignedDeviceList | undefined;
    if (profile.identitySeed !== null) {
      const own = await this.#ownList.fetchState(profile);
      next = nextOwnList({ identitySeed: profile.identitySeed, userId: profile.userId, current: own.list, certified: own.certified, remove: deviceId, now: this.#now() });
    }
    const published = await withListFallback(next, (list) =>
      this.#authed('DELETE', `/v1/devices/${encodeURIComponent(deviceId)}`, list ? { device_list: list } : undefined),
    );
    const identityResetAdvised = deviceId !== profile.deviceId && (profile.seedHolders ?? []).includes(deviceId);
    if (deviceId === profile.deviceId) {
      await this.#forget();
    } else {
      if (published && next) await this.#ownList.pinPublished(profile, next);
      const p = this.#profile;
      if (p?.seedHolders?.includes(deviceId)) await this.#commit({ ...p, seedHolders: p.seedHolders.filter((d) => d !== deviceId) });
    }
    return { deviceId, deviceListPublished: published, identityResetAdvised };
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
    // The next list: the verified current one (only devices still active) plus the new device under an id chosen here.
    const own = await this.#ownList.fetchState(profile);
    const now = this.#now();
    const deviceId = globalThis.crypto.randomUUID();
    const add = { device_id: deviceId, encryption_key: request.encryption_key, signing_key: request.signing_key, added_at: now };
    const deviceList = nextOwnList({ identitySeed: profile.identitySeed, userId: profile.userId, current: own.list, certified: own.certified, add, now });
    const identity = identityKeyFromSeed(fromBase64Url(profile.identitySeed, 32));
    let approval: LinkApproval;
    try {
      approval = await sealLinkApproval({
        request,
        identity,
        userId: profile.userId,
        username: profile.username,
        shareIdentityKey,
        deviceId,
        deviceList,
        approverDeviceId: profile.deviceId,
        now,
      });
    } finally {
      identity.secretKey.fill(0);
    }
    const p = this.#profile;
    if (shareIdentityKey && p) await this.#commit({ ...p, seedHolders: [...new Set([...(p.seedHolders ?? [profile.deviceId]), deviceId])] });
    return approval;
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
        ...(grant.device_id !== undefined ? { device_id: grant.device_id, device_list: grant.device_list } : {}),
      },
    });
    if (res.device.user_id !== grant.user_id || (grant.device_id !== undefined && res.device.device_id !== grant.device_id)) {
      throw new BilApiError({ status: 201, code: 'invalid_response', message: 'the device was registered to another user' });
    }
    const account = await this.#account.adopt({
      userId: grant.user_id,
      username: grant.username,
      device: res.device,
      tokens: res.tokens,
      keys: pending.keys,
      identityKey: grant.identity_key,
      identitySeed: grant.identity_seed === '' ? null : grant.identity_seed,
      deviceList: grant.device_list,
      seedHolders: grant.approver_device_id !== undefined ? [grant.approver_device_id] : [],
    });
    this.#pendingLink = null;
    return account;
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
        checkContact: (userId) => this.#contacts.devices(userId),
        onSafetyNumberChanged: (listener) => this.#events.on('safety-number-changed', listener),
        digestSettled: (requestId) => this.#digestEngine.settled(requestId),
      },
      options,
    );
  }
}
