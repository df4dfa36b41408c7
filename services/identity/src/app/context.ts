// What every identity use case is given (IdentityApp builds it once): the
// database, the event store, the token signer, the revocation list, the
// settings, the logger, the clock, the process's one password-hashing
// queue and its hints to other services; and the small types they share.
import { unauthenticated, type Clock, type Database, type EventStore, type Logger, type RevocationList } from '@bil/runtime';
import type { HashQueue, HashQueueSettings } from './hash-queue.js';
import type { ScryptParams } from './password.js';
import type { TokenSigner } from './tokens.js';

export interface Actor {
  userId: string;
  deviceId: string;
  sessionId: string;
}

export interface Tokens {
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
  sessionId: string;
}

export interface IdentitySettings {
  refreshTtlSeconds: number;
  maxDevicesPerUser: number;
  scrypt: ScryptParams;
  /** The password-hashing queue's bounds (default DEFAULT_HASH_QUEUE). */
  hashQueue?: HashQueueSettings;
  /** Hosts a push subscription's endpoint may be on (domain/push-subscription.ts; default DEFAULT_PUSH_ENDPOINT_HOSTS). */
  pushEndpointHosts?: readonly string[];
}

export interface IdentityDeps {
  db: Database;
  store: EventStore;
  signer: TokenSigner;
  revocations: RevocationList;
  settings: IdentitySettings;
  logger: Logger;
  clock: Clock;
  /** Every scrypt call of this process goes through it (hash-queue.ts). */
  hashing: HashQueue;
  hints: IdentityHints;
}

/**
 * Best-effort notices to other services, sent after the change committed:
 * plain NATS messages, never stored (`@bil/proto/events`, "Hints"), so a
 * receiver that misses one only loses time, never correctness.
 */
export interface IdentityHints {
  /** A device set or removed its push subscription: delivery stops using what it remembers of the user's. */
  pushSubscriptionsChanged(userId: string): void;
}

/** For a process (or test) that tells nobody. */
export const NO_HINTS: IdentityHints = { pushSubscriptionsChanged: () => {} };

export const invalidCredentials = () => unauthenticated('invalid_credentials', 'wrong username or password');
