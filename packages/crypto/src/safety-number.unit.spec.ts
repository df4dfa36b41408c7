import { describe, expect, it } from 'vitest';
import { toBase64Url } from './encoding.js';
import { IdentityPins, type SafetyNumberChanged } from './pins.js';
import { fingerprint, formatSafetyNumber, safetyNumber, safetyNumbersMatch } from './safety-number.js';
import { generateEd25519KeyPair } from './signature.js';
import { seed, uuid } from './testing/fixtures.js';

const alice = { userId: uuid(1), identityKey: toBase64Url(generateEd25519KeyPair(seed('a')).publicKey) };
const bob = { userId: uuid(2), identityKey: toBase64Url(generateEd25519KeyPair(seed('b')).publicKey) };

describe('safety numbers (property 6)', () => {
  it('is 60 digits and the same on both sides', async () => {
    const ab = await safetyNumber(alice, bob);
    expect(ab).toMatch(/^\d{60}$/);
    expect(await safetyNumber(bob, alice)).toBe(ab);
    const [fa, fb] = [await fingerprint(alice), await fingerprint(bob)];
    expect(ab).toBe(fa < fb ? fa + fb : fb + fa);
    expect(formatSafetyNumber(ab).split(' ')).toHaveLength(12);
    expect(safetyNumbersMatch(formatSafetyNumber(ab), ab)).toBe(true);
  });

  it('changes when either identity key changes', async () => {
    const ab = await safetyNumber(alice, bob);
    const bob2 = { ...bob, identityKey: toBase64Url(generateEd25519KeyPair(seed('b2')).publicKey) };
    const ab2 = await safetyNumber(alice, bob2);
    expect(ab2).not.toBe(ab);
    expect(safetyNumbersMatch(ab, ab2)).toBe(false);
  });
});

describe('identity pins: key change is visible (property 6)', () => {
  it('pins on first use, raises "safety number changed" on change, keeps the old pin until accepted', () => {
    const pins = new IdentityPins();
    const events: SafetyNumberChanged[] = [];
    pins.onSafetyNumberChanged((e) => events.push(e));
    expect(pins.check(bob.userId, bob.identityKey).status).toBe('first-use');
    expect(pins.check(bob.userId, bob.identityKey).status).toBe('unchanged');
    const newKey = toBase64Url(generateEd25519KeyPair(seed('b-reset')).publicKey);
    expect(pins.check(bob.userId, newKey)).toEqual({ status: 'changed', pinned: bob.identityKey, presented: newKey });
    expect(events).toEqual([{ userId: bob.userId, previous: bob.identityKey, current: newKey }]);
    expect(pins.pinned(bob.userId)).toBe(bob.identityKey);
    pins.accept(bob.userId, newKey);
    pins.markVerified(bob.userId, newKey);
    const restored = new IdentityPins(JSON.parse(JSON.stringify(pins.snapshot())));
    expect(restored.check(bob.userId, newKey)).toEqual({ status: 'unchanged', identityKey: newKey, verified: true });
  });
});
