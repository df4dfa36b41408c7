// BilClient: one device's view of the public API (docs/api.md) with the
// end-to-end rules of docs/protocol.md applied on the client side: devices are
// certified by the account identity key, contacts' identity keys are pinned on
// first use, and nothing certified by an unpinned key is trusted.
// This file wires the parts (account.ts, devices.ts, contacts.ts, own-list.ts,
// chats.ts, attachments.ts, push.ts, digest/, live-client.ts) and keeps the
// profile state they share; just past 400 lines as the wiring of every API
// object lives here, one place.
import { Attachments, type AttachmentsApi } from './attachments.js';
import { IdentityPins, importDevicePrivateKeys } from '@bil/crypto';
import { Account } from './account.js';
import { ChatEngine, type ChatsApi, type MessagesApi, type UnreadOverview } from './chats.js';
import type { BilClientEvents, ClientCore, LocalAccount, SafetyNumberChangedEvent } from './client-core.js';
import { Contacts, type ContactsApi } from './contacts.js';
import { Devices, type DevicesApi } from './devices.js';
import { pushApi, type PushApi } from './push.js';
import { DigestEngine, type DigestsApi, type DigestOptions, type DigestOutcome } from './digest/index.js';
import { BilStateError } from './errors.js';
import { TypedEmitter, type Listener } from './events.js';
import { parseProfile, type KeyStore, type StoredProfile, type StoredTokens } from './key-store.js';
import { LiveClient, type LiveClientOptions } from './live-client.js';
import { OwnList } from './own-list.js';
import { Session } from './session.js';
import { Transport, type FetchLike } from './transport.js';
import type { Device, User } from './wire.js';

export type { DeviceListPin } from './device-lists.js';
export type {
  BilClientEvents,
  ConnectionEvent,
  DeviceListChangedEvent,
  LocalAccount,
  SafetyNumberChangedEvent,
  SessionEndedEvent,
  TokensRefreshedEvent,
} from './client-core.js';
export type { ContactDevices, ContactsApi, PinStatus } from './contacts.js';
export type { DevicesApi, OwnDevice, RevokeResult } from './devices.js';

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
  /** How long `messages.send` keeps retrying through an outage (no answer, 502/503/504), with the same message id (default 30 000 ms; 0: never). */
  outageRetryMs?: number;
  /** Clock in ms since the epoch (tests). */
  now?: () => number;
  /** Digests (docs/sdk.md "Digests"). */
  digest?: {
    /** The digest service's identity key (Ed25519, base64url), as its operator publishes it: required for server digests, never taken from the server. */
    serviceIdentityKey?: string;
    /** Below this many unread messages a chat's messages are returned instead of a digest (default 20). The server's value is never used. */
    minUnread?: number;
  };
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
  /** Digest policy and consent, offering, disclosure, resuming a timed-out digest (src/digest/). */
  readonly digests: DigestsApi;
  /** Encrypted attachments: upload, download, send (docs/sdk.md "Attachments"). */
  readonly attachments: AttachmentsApi;
  /** Web Push for this device: the VAPID key, register and unregister its subscription (docs/push.md). */
  readonly push: PushApi;

  readonly #transport: Transport;
  readonly #store: KeyStore;
  readonly #events = new TypedEmitter<BilClientEvents>();
  readonly #now: () => number;
  readonly #session: Session;
  #profile: StoredProfile | null = null;
  #pins = new IdentityPins();
  /** Identity changes already reported: one "safety number changed" per change, however many checks meet it. */
  readonly #reportedChanges = new Set<string>();
  #loaded: Promise<void> | null = null;
  #saves: Promise<void> = Promise.resolve();
  /** The write not started yet that the next commits join (see #commit). */
  #nextWrite: Promise<void> | null = null;
  /** Registration, login, logout, the server profile, deletion, identity reset. */
  readonly #account: Account;
  /** The directory check and pins behind `contacts` (also used by chats and live). */
  readonly #contacts: Contacts;
  readonly #chatEngine: ChatEngine;
  readonly #digestEngine: DigestEngine;

  constructor(options: BilClientOptions) {
    if (!options || typeof options.keyStore?.load !== 'function') throw new TypeError('keyStore: expected a KeyStore');
    this.#transport = new Transport(options);
    this.#transport.onState = (state, retryAfterMs) => this.#events.emit('connection', { state, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
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
      emit: (type, event) => {
        if (type === 'safety-number-changed' && !this.#firstReport(event as SafetyNumberChangedEvent)) return;
        this.#events.emit(type, event);
      },
    };
    const ownList = new OwnList(core);
    this.push = pushApi(core);
    this.#account = new Account(core, ownList);
    this.#contacts = new Contacts(core, ownList);
    const devices = new Devices(core, ownList, this.#account);
    this.devices = {
      list: () => devices.list(),
      revoke: (deviceId) => devices.revoke(deviceId),
      linkRequest: (o) => devices.linkRequest(o?.deviceName),
      approveLink: async (request, o) => {
        const approval = await devices.approveLink(request, o?.shareIdentityKey ?? false);
        // The new device registers next: let group chats look for it and hand it their keys.
        this.#chatEngine.ownDevicesChanged();
        return approval;
      },
      completeLink: (p) => devices.completeLink(p.approval, p.password),
      syncList: () => devices.syncList(),
      resetIdentity: (p) => this.#account.resetIdentity(p),
    };
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
      ...(options.outageRetryMs !== undefined ? { outageRetryMs: options.outageRetryMs } : {}),
      timerAlert: (e) => this.#events.emit('timer-alert', e),
    });
    // A contact's signed device list dropped devices: groups listing them get a new epoch before the next send.
    this.#events.on('device-list-changed', (e) => {
      if (e.removedDeviceIds.length > 0) this.#chatEngine.contactDevicesChanged(e.userId);
    });
    this.chats = this.#chatEngine.chats;
    this.messages = this.#chatEngine.messages;
    this.attachments = new Attachments(core, this.messages);
    const chatEngine = this.#chatEngine;
    this.#digestEngine = new DigestEngine({
      call: (method, path, body) => this.#authed(method, path, body),
      me: async () => {
        const p = await this.#requireProfile();
        return { local: { userId: p.userId, deviceId: p.deviceId, keys: await importDevicePrivateKeys(p.deviceKeys) }, username: p.username };
      },
      unread: (o) => chatEngine.unread(o),
      history: (chatId, o) => chatEngine.messages.history(chatId, o),
      devices: (userId) => contacts.devices(userId),
      groupSetting: (chatId) => chatEngine.digestSetting(chatId),
      state: async () => (await this.#requireProfile()).digest ?? {},
      save: async (patch) => {
        const p = await this.#requireProfile();
        await this.#commit({ ...p, digest: { ...p.digest, ...patch } });
      },
      settings: { ...options.digest },
      now: this.#now,
    });
    const digests = this.#digestEngine;
    this.digests = {
      policy: (chatId) => digests.policy(chatId),
      setPolicy: (chatId, enabled) => digests.setPolicy(chatId, enabled),
      offered: (overview, o) => digests.offered(overview, o),
      setConsent: (chatId, include) => digests.setConsent(chatId, include),
      disclosure: (on, model) => digests.disclosure(on, model),
      resume: (pending, o) => digests.resume(pending, o),
    };
  }

  /** Unread messages over all chats (`GET /v1/unread`): the total and each chat with unread messages (with `messagesPerChat`, its newest ones decrypted). */
  unread(options?: { limit?: number; messagesPerChat?: number; pageToken?: string }): Promise<UnreadOverview> {
    return this.#chatEngine.unread(options);
  }

  /** Digests of unread chats (src/digest/): summaries made where `options.on` says, or the messages below the threshold, or `disabled`. */
  digest(chatIds: readonly string[], options?: DigestOptions): Promise<DigestOutcome[]> {
    return this.#digestEngine.digest(chatIds, options);
  }

  // ---- events -------------------------------------------------------------

  /** Whether the service answered the last call: `online`, `unavailable` (502/503/504) or `offline` (no answer); changes raise `connection`. */
  get connectionState(): 'online' | 'unavailable' | 'offline' {
    return this.#transport.state;
  }

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
  /**
   * Makes `next` the profile and resolves once a write holding it (or a later profile) is done. Writes are
   * coalesced: one runs at a time, and every commit made meanwhile joins the one write that follows, which
   * stores the profile as it is then (a whole profile, atomically: cursors, seen message ids and the replay
   * guard always match one another on disk). So a burst of live messages costs a few sealed writes, not one each.
   */
  async #commit(next: StoredProfile | null): Promise<void> {
    this.#profile = next;
    if (!this.#nextWrite) {
      const write = this.#saves.then(() => {
        this.#nextWrite = null;
        const p = this.#profile;
        return p ? this.#store.save(p) : this.#store.clear();
      });
      this.#nextWrite = write;
      this.#saves = write.catch(() => undefined);
    }
    await this.#nextWrite;
  }

  async #saveTokens(tokens: StoredTokens | null): Promise<void> {
    if (this.#profile) await this.#commit({ ...this.#profile, tokens });
  }

  async #savePins(): Promise<void> {
    if (this.#profile) await this.#commit({ ...this.#profile, pins: this.#pins.snapshot() });
  }

  #firstReport(e: SafetyNumberChangedEvent): boolean {
    const tag = `${e.userId}:${e.previousIdentityKey}:${e.currentIdentityKey}`;
    if (this.#reportedChanges.has(tag)) return false;
    this.#reportedChanges.add(tag);
    return true;
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
        contentUpdate: (h) => this.#chatEngine.contentUpdate(h),
        expired: (h) => this.#chatEngine.expired(h),
        checkTimer: (chatId) => this.#chatEngine.checkTimer(chatId),
      },
      options,
    );
  }
}
