import { describe, expect, it } from 'vitest';
import { deciderSpec } from '@bil/testkit';
import { digestsAllowed, policyDecider, type PolicyEvent } from './policy.js';

const spec = deciderSpec(policyDecider);
const now = '2026-11-27T10:00:00.000Z';
const off = (userId: string, disabledByCount: number): PolicyEvent => ({ type: 'DigestsSwitchedOff', data: { chatId: 'c', userId, disabledByCount, occurredAt: now } });
const on = (userId: string, disabledByCount: number, reason: 'member' | 'left_chat' = 'member'): PolicyEvent => ({
  type: 'DigestsSwitchedOn',
  data: { chatId: 'c', userId, reason, disabledByCount, occurredAt: now },
});
const set = (userId: string, enabled: boolean, isMember = true) => ({ type: 'SetPolicy' as const, chatId: 'c', userId, enabled, isMember, now });

describe('digest policy decider', () => {
  it('lets any member switch digests off', () => spec.given().when(set('alice', false)).then([off('alice', 1)]));
  it('refuses a non-member (no oracle: chat_not_found)', () => spec.given().when(set('mallory', false, false)).thenThrows('chat_not_found'));
  it('switching off twice changes nothing', () => spec.given(off('alice', 1)).when(set('alice', false)).then([]));
  it("a member can't switch back on another member's switch-off", () => {
    spec.given(off('alice', 1)).when(set('bob', true)).then([]);
    const state = spec.given(off('alice', 1)).when(set('bob', true)).thenState();
    expect(digestsAllowed(state)).toBe(false);
  });
  it('digests come back only when every switch-off is withdrawn', () => {
    spec.given(off('alice', 1), off('bob', 2)).when(set('alice', true)).then([on('alice', 1)]);
    const state = spec.given(off('alice', 1), off('bob', 2), on('alice', 1)).when(set('bob', true)).thenState();
    expect(digestsAllowed(state)).toBe(true);
  });
  it('a member who leaves takes their switch-off with them', () => {
    spec.given(off('alice', 1)).when({ type: 'ForgetMember', chatId: 'c', userId: 'alice', now }).then([on('alice', 0, 'left_chat')]);
    spec.given(off('alice', 1)).when({ type: 'ForgetMember', chatId: 'c', userId: 'bob', now }).then([]);
  });
});
