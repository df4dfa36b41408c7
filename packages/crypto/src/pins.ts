import { assertUuid, equalStrings, fromBase64Url } from './encoding.js';

/** What {@link IdentityPins.check} found. */
export type PinCheck =
  | { readonly status: 'first-use'; readonly identityKey: string }
  | { readonly status: 'unchanged'; readonly identityKey: string; readonly verified: boolean }
  | { readonly status: 'changed'; readonly pinned: string; readonly presented: string };

/** Raised when a contact's identity key differs from the pinned one. */
export interface SafetyNumberChanged {
  readonly userId: string;
  readonly previous: string;
  readonly current: string;
}

export interface IdentityPinsSnapshot {
  readonly version: 1;
  readonly pins: Record<string, { identity_key: string; verified: boolean }>;
}

/**
 * Trust-on-first-use pins of contacts' account identity keys. A key seen for
 * the first time is pinned; a different key later is not silently accepted:
 * `check` reports `changed`, listeners get a "safety number changed" event,
 * and the old pin stays until the user calls {@link IdentityPins.accept}
 * (so nothing is wrapped for devices certified by the new key meanwhile).
 * @example
 * const pins = new IdentityPins();
 * pins.onSafetyNumberChanged((e) => ui.warn(e.userId));
 * const r = pins.check(bobId, directory.identity_key);
 * if (r.status !== 'changed') await verifyDevice(record, pins.pinned(bobId)!);
 */
export class IdentityPins {
  readonly #pins = new Map<string, { identityKey: string; verified: boolean }>();
  readonly #listeners = new Set<(event: SafetyNumberChanged) => void>();

  constructor(snapshot?: IdentityPinsSnapshot) {
    if (snapshot === undefined) return;
    if (snapshot.version !== 1) throw new TypeError('pins: unknown snapshot version');
    for (const [userId, p] of Object.entries(snapshot.pins)) this.#pins.set(userId, { identityKey: p.identity_key, verified: p.verified });
  }

  /** Compares a presented identity key with the pin; pins it on first use. */
  check(userId: string, identityKey: string): PinCheck {
    assertUuid(userId, 'userId');
    fromBase64Url(identityKey, 32);
    const pin = this.#pins.get(userId);
    if (!pin) {
      this.#pins.set(userId, { identityKey, verified: false });
      return { status: 'first-use', identityKey };
    }
    if (equalStrings(pin.identityKey, identityKey)) return { status: 'unchanged', identityKey, verified: pin.verified };
    const event = { userId, previous: pin.identityKey, current: identityKey };
    for (const l of this.#listeners) l(event);
    return { status: 'changed', pinned: pin.identityKey, presented: identityKey };
  }

  /** The user acknowledged the change: pin the new key (not verified). */
  accept(userId: string, identityKey: string): void {
    assertUuid(userId, 'userId');
    fromBase64Url(identityKey, 32);
    this.#pins.set(userId, { identityKey, verified: false });
  }

  /** The safety number was compared out of band for this key. */
  markVerified(userId: string, identityKey: string): void {
    const pin = this.#pins.get(userId);
    if (!pin || !equalStrings(pin.identityKey, identityKey)) throw new TypeError('pins: key is not the pinned one');
    pin.verified = true;
  }

  /** The pinned identity key of a user, if any. */
  pinned(userId: string): string | undefined {
    return this.#pins.get(userId)?.identityKey;
  }

  /** Subscribes to "safety number changed"; returns the unsubscribe function. */
  onSafetyNumberChanged(listener: (event: SafetyNumberChanged) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  snapshot(): IdentityPinsSnapshot {
    const pins: Record<string, { identity_key: string; verified: boolean }> = {};
    for (const [u, p] of this.#pins) pins[u] = { identity_key: p.identityKey, verified: p.verified };
    return { version: 1, pins };
  }
}
