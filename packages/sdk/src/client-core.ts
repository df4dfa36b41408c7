// What BilClient's parts (account.ts, devices.ts, contacts.ts, own-list.ts)
// share: the profile state, session and events the client keeps, handed to
// them as one set of closures; and the public types they all speak in.
import type { IdentityPins } from '@bil/crypto';
import type { StoredProfile, StoredTokens } from './key-store.js';
import type { Session } from './session.js';
import type { Transport } from './transport.js';

/** A contact's identity key differs from the one pinned; devices it certifies are not trusted until accepted. */
import type { TimerAlertEvent } from './chat/timer.js';

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

/**
 * A newer signed device list of a user (or of this account) dropped devices:
 * groups with that user should move to a new epoch without them (the chat
 * engine listens). Raised once per verified list version that removes devices.
 */
export interface DeviceListChangedEvent {
  readonly userId: string;
  /** The version of the verified list now pinned. */
  readonly version: number;
  /** Devices the previously pinned list had and this one doesn't. */
  readonly removedDeviceIds: readonly string[];
}

/**
 * Reaching the service changed: `unavailable` (it answers 502/503/504, e.g. a
 * database outage; sends are retried meanwhile), `offline` (no answer), or
 * `online` again. Raised on each change, from the outcome of API calls.
 */
export interface ConnectionEvent {
  readonly state: 'online' | 'unavailable' | 'offline';
  /** With `unavailable`: the server's Retry-After, in ms. */
  readonly retryAfterMs?: number;
}

export interface BilClientEvents {
  connection: ConnectionEvent;
  'safety-number-changed': SafetyNumberChangedEvent;
  /** A chat's disappearing-message timer needs attention: the server's differs from the verified one, or it served a bad, older or no statement. */
  'timer-alert': TimerAlertEvent;
  'device-list-changed': DeviceListChangedEvent;
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

/** The client's state and plumbing as its parts use it (BilClient builds it). */
export interface ClientCore {
  readonly transport: Transport;
  readonly session: Session;
  now(): number;
  /** Loads the key store once (before anything reads the profile or the pins). */
  ready(): Promise<void>;
  /** The profile, or BilStateError `no_profile`. */
  requireProfile(): Promise<StoredProfile>;
  /** BilStateError `profile_exists` if the key store holds a device. */
  requireNoProfile(): void;
  /** The profile as it is now (null before register/link): read again after each await. */
  profile(): StoredProfile | null;
  /** Makes `next` the profile and writes it (queued, in order). */
  commit(next: StoredProfile | null): Promise<void>;
  /** The identity pins as they are now (replaced on load and on forget). */
  pins(): IdentityPins;
  savePins(): Promise<void>;
  saveTokens(tokens: StoredTokens | null): Promise<void>;
  /** Drops tokens, pins and the profile (the key store is cleared). */
  forget(): Promise<void>;
  /** An authenticated API call (after loading the key store). */
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  local(p: StoredProfile): LocalAccount;
  emit<K extends keyof BilClientEvents>(type: K, event: BilClientEvents[K]): void;
}
