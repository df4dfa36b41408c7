import { describe, expect, it } from 'vitest';
import { deciderSpec } from '@bil/testkit';
import { currentKey, keysDecider, openableKeys, type IssuedKey, type KeysEvent } from './keys.js';

const spec = deciderSpec(keysDecider);
const DAY = 86_400_000;
const key = (keyId: string, issuedAt: number): IssuedKey => ({ keyId, spki: 's', signedKey: '{}', encryptedPrivateKey: 'x', issuedAt, expiresAt: issuedAt + 30 * DAY });
const issued = (k: IssuedKey, previousKeyId: string, reason: 'first_key' | 'expiring' | 'manual'): KeysEvent => ({
  type: 'DigestKeyIssued',
  data: { ...k, previousKeyId, reason, occurredAt: new Date(k.issuedAt).toISOString() },
});
const k1 = key('k1', 0);

describe('digest keys decider', () => {
  it('issues the first key', () => spec.given().when({ type: 'RotateKey', key: k1, onlyIfRemainingBelowMs: 7 * DAY, now: 0 }).then([issued(k1, '', 'first_key')]));
  it('a replica starting while the key is fresh issues nothing', () =>
    spec.given(issued(k1, '', 'first_key')).when({ type: 'RotateKey', key: key('k2', DAY), onlyIfRemainingBelowMs: 7 * DAY, now: DAY }).then([]));
  it('rotates a key close to its expiry', () => {
    const k2 = key('k2', 25 * DAY);
    spec.given(issued(k1, '', 'first_key')).when({ type: 'RotateKey', key: k2, onlyIfRemainingBelowMs: 7 * DAY, now: 25 * DAY }).then([issued(k2, 'k1', 'expiring')]);
  });
  it('rotates on demand, and the old key still opens requests until expiry + grace', () => {
    const k2 = key('k2', DAY);
    const state = spec.given(issued(k1, '', 'first_key')).when({ type: 'RotateKey', key: k2, now: DAY }).thenState();
    expect(currentKey(state)?.keyId).toBe('k2');
    expect(openableKeys(state, 2 * DAY, 3_600_000).map((k) => k.keyId)).toEqual(['k1', 'k2']);
    expect(openableKeys(state, 30 * DAY + 3_600_000, 3_600_000).map((k) => k.keyId)).toEqual(['k2']);
  });
  it('never issues the same key id twice', () => spec.given(issued(k1, '', 'first_key')).when({ type: 'RotateKey', key: k1, now: DAY }).then([]));
});
