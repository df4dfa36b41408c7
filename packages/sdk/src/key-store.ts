// Where a device keeps what makes it this device: ids, private keys, tokens and
// the identity keys it pinned for contacts. The SDK reads the profile once and
// writes it back after every change (new tokens, a new pin), whole.
import type { ChatTimerPayload, ExportedDeviceKeys, IdentityPinsSnapshot, ReplayGuardSnapshot } from '@bil/crypto';
import { KeyStoreFormatError } from './errors.js';
import type { DeviceListPin } from './device-lists.js';

/** The session tokens as the SDK keeps them. Secret. */
export interface StoredTokens {
  readonly accessToken: string;
  /** ms since the epoch, from `access_token_expires_at`. */
  readonly accessTokenExpiresAt: number;
  readonly refreshToken: string;
  /** ms since the epoch, from `refresh_token_expires_at`. */
  readonly refreshTokenExpiresAt: number;
  readonly sessionId: string;
  /** Local clock when the pair arrived; with the expiry it gives the token's lifetime. */
  readonly receivedAt: number;
}

/** Everything one device keeps between runs. Treat the whole record as a secret. */
export interface StoredProfile {
  readonly version: 1;
  readonly userId: string;
  readonly username: string;
  readonly deviceId: string;
  readonly deviceName: string;
  /** The account identity public key this device was certified under (Ed25519, base64url). */
  readonly identityKey: string;
  /** The account identity private key (32-byte Ed25519 seed, base64url) if this device holds it, else null. */
  readonly identitySeed: string | null;
  /** This device's private keys, from `exportDevicePrivateKeys` (@bil/crypto). */
  readonly deviceKeys: ExportedDeviceKeys;
  /** The current session, or null when signed out. */
  readonly tokens: StoredTokens | null;
  /** Contacts' pinned identity keys, from `IdentityPins.snapshot()` (@bil/crypto). */
  readonly pins: IdentityPinsSnapshot;
  /** Messaging state (optional: profiles written before messaging have none). */
  readonly chats?: StoredChatState;
  /** The live connection's cursors: per chat, the last seq this device processed (optional). */
  readonly cursors?: Record<string, number>;
  /** Written by SDKs before step 9 (service identity keys pinned on first use); no longer read: the digest key is configured (optional). */
  readonly servicePins?: Record<string, string>;
  /** Digest state: members' consents pinned per chat, disclosures acknowledged (optional). */
  readonly digest?: StoredDigestState;
  /**
   * Per user (contacts and this account), the highest signed device list version
   * seen, the identity key it verified under and the devices it listed
   * (optional: profiles from before signed device lists have none).
   */
  readonly deviceLists?: Record<string, DeviceListPin>;
  /** Device ids of this account known to hold the identity seed: this device if it does, devices it shared the seed with, the device that linked it (optional). */
  readonly seedHolders?: readonly string[];
}

/**
 * What a device remembers about its chats between runs, so that a restart
 * (or a malicious server) can't make it reuse a counter, accept a replayed
 * envelope, or accept a different group history than the one it verified.
 */
export interface StoredChatState {
  /** The last envelope counter this device used, per chat (the next message uses +1). */
  readonly counters: Record<string, number>;
  /** `ReplayGuard.snapshot()` (@bil/crypto): accepted message ids and per-sender counters. */
  readonly replay: ReplayGuardSnapshot;
  /** Per chat, the seq each accepted message id was read at: re-reading history is not a replay, a second seq is. */
  readonly seen: Record<string, Record<string, number>>;
  /** Per group, the head of the epoch chain verified last: any later chain must contain it. */
  readonly heads: Record<string, { readonly epoch: number; readonly hash: string }>;
  /** Per group, the record hash of every verified epoch (index = epoch − 1), so a fork is located and the history before it stays readable (optional: older profiles). */
  readonly hashes?: Record<string, readonly string[]>;
  /** Per group, a fork of its history this device saw and the user has not resolved (optional). */
  readonly forks?: Record<string, StoredForkAlert>;
  /** Per chat, the newest message of this device the server acknowledged storing (its counter and seq), to notice a truncated tail (optional). */
  readonly acked?: Record<string, { readonly counter: number; readonly seq: number }>;
  /** Per personal chat, the other user, once the chat id was checked against both user ids (optional). */
  readonly peers?: Record<string, string>;
  /** Per chat, the message ids deleted on this device profile only ("delete for me"; optional). */
  readonly hidden?: Record<string, readonly string[]>;
  /** Per chat, the reactions and edits this device verified, so they apply to messages read in a later run (optional; newest kept). */
  readonly updates?: Record<string, readonly StoredUpdate[]>;
  /** Per personal chat, the newest signed timer statement this device verified (bil.chat-timer.v1), so an older one replayed is noticed (optional). */
  readonly timers?: Record<string, { readonly payload: ChatTimerPayload; readonly signature: string }>;
}

/** A verified reaction (`emoji`, `remove`) or edit (`text`) as stored: the message that carried it and its target. */
export interface StoredUpdate {
  readonly messageId: string;
  readonly seq: number;
  readonly senderUserId: string;
  /** The sender's signed clock, ms. */
  readonly at: number;
  readonly target: string;
  readonly emoji?: string;
  readonly remove?: true;
  readonly text?: string;
}

/** What a device remembers about digests between runs. */
export interface StoredDigestState {
  /** Per chat and member, the highest-version signed consent this device verified (`include: false`: leave their messages out). */
  readonly consents?: Record<string, Record<string, { readonly version: number; readonly include: boolean }>>;
  /** Per chat, the modes whose disclosure the user confirmed (`server`, `model`). */
  readonly disclosures?: Record<string, readonly ('server' | 'model')[]>;
}

/** A fork alert as stored (see `ForkAlert` in docs/sdk.md). */
export interface StoredForkAlert {
  readonly epoch: number;
  readonly userId: string;
  readonly source: 'chain' | 'message';
  readonly seenAt: number;
}

/**
 * Persistence for one device profile. `save` replaces the whole record and must
 * be atomic (a crash leaves the old or the new record, never a mix). The SDK
 * never calls two methods at once on one store.
 */
export interface KeyStore {
  load(): Promise<StoredProfile | null>;
  save(profile: StoredProfile): Promise<void>;
  /** Forgets the profile (after account deletion or revoking this device). */
  clear(): Promise<void>;
}

/**
 * Keeps the profile in memory only (tests, or a browser tab that must forget
 * everything when closed). Stores a copy, so later changes to the object
 * passed to `save` don't leak in.
 * @example
 * const client = new BilClient({ baseUrl, keyStore: new MemoryKeyStore() });
 */
export class MemoryKeyStore implements KeyStore {
  #json: string | null = null;

  async load(): Promise<StoredProfile | null> {
    return this.#json === null ? null : parseProfile(JSON.parse(this.#json));
  }

  async save(profile: StoredProfile): Promise<void> {
    this.#json = JSON.stringify(parseProfile(profile));
  }

  async clear(): Promise<void> {
    this.#json = null;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function need(ok: boolean, what: string): asserts ok {
  if (!ok) throw new KeyStoreFormatError(`bad or missing ${what}`);
}

const isB64 = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && B64URL.test(v);
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Checks that `value` has the shape of a {@link StoredProfile} and returns it,
 * or throws {@link KeyStoreFormatError}. Key stores call it on what they load.
 */
export function parseProfile(value: unknown): StoredProfile {
  need(isObject(value), 'profile');
  need(value.version === 1, 'version (expected 1)');
  need(typeof value.userId === 'string' && UUID.test(value.userId), 'userId');
  need(typeof value.deviceId === 'string' && UUID.test(value.deviceId), 'deviceId');
  need(typeof value.username === 'string' && value.username.length > 0, 'username');
  need(typeof value.deviceName === 'string', 'deviceName');
  need(isB64(value.identityKey), 'identityKey');
  need(value.identitySeed === null || isB64(value.identitySeed), 'identitySeed');
  const k = value.deviceKeys;
  need(isObject(k) && k.version === 1 && isB64(k.encryption_key_pkcs8) && isB64(k.signing_key_seed), 'deviceKeys');
  const t = value.tokens;
  need(
    t === null ||
      (isObject(t) &&
        typeof t.accessToken === 'string' &&
        typeof t.refreshToken === 'string' &&
        typeof t.sessionId === 'string' &&
        isTime(t.accessTokenExpiresAt) &&
        isTime(t.refreshTokenExpiresAt) &&
        isTime(t.receivedAt)),
    'tokens',
  );
  const p = value.pins;
  need(isObject(p) && p.version === 1 && isObject(p.pins), 'pins');
  for (const [userId, pin] of Object.entries(p.pins as Record<string, unknown>)) {
    need(UUID.test(userId) && isObject(pin) && isB64(pin.identity_key) && typeof pin.verified === 'boolean', `pin for ${userId}`);
  }
  if (value.chats !== undefined) parseChatState(value.chats);
  if (value.deviceLists !== undefined) {
    need(isObject(value.deviceLists), 'deviceLists');
    for (const [userId, pin] of Object.entries(value.deviceLists)) {
      need(
        UUID.test(userId) &&
          isObject(pin) &&
          isB64(pin.identity_key) &&
          isCount(pin.version) &&
          (pin.version as number) >= 1 &&
          Array.isArray(pin.device_ids) &&
          pin.device_ids.every((d) => typeof d === 'string' && UUID.test(d)),
        `device list pin for ${userId}`,
      );
    }
  }
  if (value.seedHolders !== undefined) {
    need(Array.isArray(value.seedHolders) && value.seedHolders.every((d) => typeof d === 'string' && UUID.test(d)), 'seedHolders');
  }
  if (value.digest !== undefined) parseDigestState(value.digest);
  if (value.cursors !== undefined) {
    need(isObject(value.cursors) && Object.entries(value.cursors).every(([k, v]) => UUID.test(k) && isCount(v)), 'cursors');
  }
  return value as unknown as StoredProfile;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseDigestState(d: unknown): void {
  need(isObject(d), 'digest');
  need(
    d.consents === undefined ||
      (isObject(d.consents) &&
        Object.entries(d.consents).every(
          ([chat, byUser]) => UUID.test(chat) && isObject(byUser) && Object.entries(byUser).every(([u, c]) => UUID.test(u) && isObject(c) && isCount(c.version) && typeof c.include === 'boolean'),
        )),
    'digest.consents',
  );
  need(
    d.disclosures === undefined ||
      (isObject(d.disclosures) && Object.entries(d.disclosures).every(([chat, modes]) => UUID.test(chat) && Array.isArray(modes) && modes.every((m) => m === 'server' || m === 'model'))),
    'digest.disclosures',
  );
}

function parseChatState(c: unknown): void {
  need(isObject(c), 'chats');
  need(isObject(c.counters) && Object.entries(c.counters).every(([k, v]) => UUID.test(k) && isCount(v)), 'chats.counters');
  need(isObject(c.replay) && c.replay.version === 1 && isObject(c.replay.chats), 'chats.replay');
  need(
    isObject(c.seen) && Object.entries(c.seen).every(([k, v]) => UUID.test(k) && isObject(v) && Object.values(v).every(isCount)),
    'chats.seen',
  );
  need(
    isObject(c.heads) &&
      Object.entries(c.heads).every(([k, v]) => UUID.test(k) && isObject(v) && isCount(v.epoch) && v.epoch >= 1 && isB64(v.hash)),
    'chats.heads',
  );
  const byChat = (v: unknown, ok: (x: unknown) => boolean) => v === undefined || (isObject(v) && Object.entries(v).every(([k, x]) => UUID.test(k) && ok(x)));
  need(byChat(c.hashes, (v) => Array.isArray(v) && v.every(isB64)), 'chats.hashes');
  need(
    byChat(c.forks, (v) => isObject(v) && isCount(v.epoch) && typeof v.userId === 'string' && (v.source === 'chain' || v.source === 'message') && isCount(v.seenAt)),
    'chats.forks',
  );
  need(byChat(c.acked, (v) => isObject(v) && isCount(v.counter) && isCount(v.seq)), 'chats.acked');
  need(byChat(c.peers, (v) => typeof v === 'string' && UUID.test(v)), 'chats.peers');
  need(byChat(c.timers, (v) => isObject(v) && isObject(v.payload) && typeof v.signature === 'string' && isCount((v.payload as { version?: unknown }).version)), 'chats.timers');
  need(byChat(c.hidden, (v) => Array.isArray(v) && v.every((x) => typeof x === 'string' && UUID.test(x))), 'chats.hidden');
  const isUpdate = (u: unknown): boolean =>
    isObject(u) &&
    [u.messageId, u.senderUserId, u.target].every((x) => typeof x === 'string' && UUID.test(x)) &&
    isCount(u.seq) &&
    isCount(u.at) &&
    (typeof u.emoji === 'string') !== (typeof u.text === 'string') &&
    (u.remove === undefined || u.remove === true);
  need(byChat(c.updates, (v) => Array.isArray(v) && v.every(isUpdate)), 'chats.updates');
}
