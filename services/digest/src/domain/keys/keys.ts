// The digest service's encryption keys (one stream, `digest-keys`). Each key is
// an RSA-OAEP-3072 pair whose public half is signed by the service identity
// key (docs/protocol.md, "Service key"); its private half is stored only
// encrypted under the key-encryption key (DIGEST_KEY_ENCRYPTION_KEY). The
// newest key is current: clients seal new requests to it. Older keys stay
// usable for opening until their expiry plus a grace period, so a request
// sealed just before a rotation still opens.
import { type Decider } from '@bil/runtime/domain';

export interface IssuedKey {
  keyId: string;
  /** RSA SPKI DER, base64url. */
  spki: string;
  /** The SignedServiceKey (protocol.md) as JSON. */
  signedKey: string;
  /** PKCS #8 DER under the key-encryption key: base64url(nonce ‖ ciphertext ‖ tag). */
  encryptedPrivateKey: string;
  /** Milliseconds since the Unix epoch. */
  issuedAt: number;
  expiresAt: number;
}

export type KeysEvent = { type: 'DigestKeyIssued'; data: IssuedKey & { previousKeyId: string; reason: RotationReason; occurredAt: string } };

export type RotationReason = 'first_key' | 'expiring' | 'manual';

export type KeysCommand =
  /**
   * Issue `key` as the new current key. With `onlyIfRemainingBelowMs`, only
   * when there is no key yet or the current one expires within that time
   * (what every replica checks at start: the first one wins, the others
   * decide nothing).
   */
  { type: 'RotateKey'; key: IssuedKey; onlyIfRemainingBelowMs?: number; now: number };

export interface KeysState {
  /** Every key issued, oldest first; the last is current. */
  keys: IssuedKey[];
}

export const KEYS_STREAM = 'digest-keys';

export const currentKey = (s: KeysState): IssuedKey | undefined => s.keys[s.keys.length - 1];

/** Keys a sealed request may still be opened with at `now`. */
export const openableKeys = (s: KeysState, now: number, graceMs: number): IssuedKey[] => s.keys.filter((k) => now < k.expiresAt + graceMs);

export function decideKeys(command: KeysCommand, state: KeysState): KeysEvent[] {
  switch (command.type) {
    case 'RotateKey': {
      const current = currentKey(state);
      if (command.onlyIfRemainingBelowMs !== undefined && current && current.expiresAt - command.now > command.onlyIfRemainingBelowMs) return [];
      if (state.keys.some((k) => k.keyId === command.key.keyId)) return [];
      const reason: RotationReason = !current ? 'first_key' : command.onlyIfRemainingBelowMs !== undefined ? 'expiring' : 'manual';
      return [{ type: 'DigestKeyIssued', data: { ...command.key, previousKeyId: current?.keyId ?? '', reason, occurredAt: new Date(command.now).toISOString() } }];
    }
    default: {
      const unknown: never = command.type;
      throw new Error(`unknown command ${String(unknown)}`);
    }
  }
}

export function evolveKeys(state: KeysState, event: KeysEvent): KeysState {
  if (event.type !== 'DigestKeyIssued') return state;
  const { previousKeyId: _p, reason: _r, occurredAt: _o, ...key } = event.data;
  return { keys: [...state.keys, key] };
}

export const keysDecider: Decider<KeysCommand, KeysEvent, KeysState> = {
  initialState: () => ({ keys: [] }),
  decide: decideKeys,
  evolve: evolveKeys,
};
