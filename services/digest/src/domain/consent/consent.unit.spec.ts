import { describe, expect, it } from 'vitest';
import { deciderSpec } from '@bil/testkit';
import { consentDecider, type ConsentEvent, type ConsentStatement } from './consent.js';

const spec = deciderSpec(consentDecider);
const now = '2026-12-03T10:00:00.000Z';
const statement = (version: number, include = false, consent = `sig-${version}`): ConsentStatement => ({ chatId: 'c', userId: 'alice', deviceId: 'd', include, version, consent });
const changed = (s: ConsentStatement): ConsentEvent => ({ type: 'DigestConsentChanged', data: { ...s, occurredAt: now } });
const set = (s: ConsentStatement, isMember = true) => ({ type: 'SetConsent' as const, statement: s, isMember, now });

describe('digest consent decider', () => {
  it('stores the first statement of a member', () => spec.given().when(set(statement(5))).then([changed(statement(5))]));
  it('refuses a non-member (chat_not_found)', () => spec.given().when(set(statement(5), false)).thenThrows('chat_not_found'));
  it('keeps only a strictly higher version', () => {
    spec.given(changed(statement(5))).when(set(statement(6, true))).then([changed(statement(6, true))]);
    spec.given(changed(statement(5))).when(set(statement(4, true))).thenThrows('consent_stale');
    spec.given(changed(statement(5))).when(set(statement(5, true, 'other'))).thenThrows('consent_stale');
  });
  it('the same statement again is an idempotent repeat', () => spec.given(changed(statement(5))).when(set(statement(5))).then([]));
  it('the state is the newest statement', () => {
    const state = spec.given(changed(statement(5)), changed(statement(9, true))).when(set(statement(9, true, 'sig-9'))).thenState();
    expect(state.current).toMatchObject({ version: 9, include: true });
  });
});
