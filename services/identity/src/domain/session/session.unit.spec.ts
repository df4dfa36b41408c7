import { describe, it } from 'vitest';
import { deciderSpec } from '@bil/testkit';
import { sessionDecider, type SessionEvent } from './session.js';

const spec = deciderSpec(sessionDecider);
const now = '2026-11-25T10:00:00.000Z';
const later = '2026-12-25T10:00:00.000Z';
const started: SessionEvent = {
  type: 'SessionStarted',
  data: { sessionId: 's1', userId: 'u1', deviceId: 'd1', tokenHash: 'h1', expiresAt: later, occurredAt: now },
};
const refreshed: SessionEvent = { type: 'SessionRefreshed', data: { sessionId: 's1', generation: 2, tokenHash: 'h2', expiresAt: later, occurredAt: now } };
const refresh = (generation: number, presented: string) => ({
  type: 'RefreshSession' as const,
  generation,
  secretMatches: (stored: string) => stored === presented,
  newTokenHash: 'hN',
  expiresAt: later,
  now,
});

describe('session decider', () => {
  it('rotates the refresh token', () => {
    spec
      .given(started)
      .when(refresh(1, 'h1'))
      .then([{ type: 'SessionRefreshed', data: { sessionId: 's1', generation: 2, tokenHash: 'hN', expiresAt: later, occurredAt: now } }]);
  });

  it('ends the whole session when an old refresh token is reused', () => {
    spec
      .given(started, refreshed)
      .when(refresh(1, 'h1'))
      .then([{ type: 'SessionEnded', data: { sessionId: 's1', userId: 'u1', deviceId: 'd1', reason: 'refresh_token_reused', occurredAt: now } }]);
  });

  it('refuses a forged secret without ending the session', () => {
    spec.given(started).when(refresh(1, 'wrong')).thenThrows('invalid_refresh_token');
    spec.given(started).when(refresh(7, 'h1')).thenThrows('invalid_refresh_token');
  });

  it('refuses a forged token of an older generation without ending the session (issue 14 item 7)', () => {
    spec.given(started, refreshed).when(refresh(1, 'junk')).thenThrows('invalid_refresh_token');
    spec.given(started, refreshed).when(refresh(0, 'h1')).thenThrows('invalid_refresh_token');
    // An expired session is not ended by a forged token either.
    spec.given(started).when({ ...refresh(1, 'junk'), now: '2027-01-01T00:00:00.000Z' }).thenThrows('invalid_refresh_token');
  });

  it('says the session ended for reuse when its tokens come back', () => {
    const reused: SessionEvent = { type: 'SessionEnded', data: { sessionId: 's1', userId: 'u1', deviceId: 'd1', reason: 'refresh_token_reused', occurredAt: now } };
    spec.given(started, refreshed, reused).when(refresh(2, 'h2')).thenThrows('refresh_token_reused');
  });

  it('says account_deleted to a genuine token of a deleted account, not to a forged one', () => {
    const deleted: SessionEvent = { type: 'SessionEnded', data: { sessionId: 's1', userId: 'u1', deviceId: 'd1', reason: 'account_deleted', occurredAt: now } };
    spec.given(started, deleted).when(refresh(1, 'h1')).thenThrows('account_deleted');
    spec.given(started, deleted).when(refresh(1, 'junk')).thenThrows('invalid_refresh_token');
  });

  it('expires', () => {
    spec
      .given(started)
      .when({ ...refresh(1, 'h1'), now: '2027-01-01T00:00:00.000Z' })
      .then([{ type: 'SessionEnded', data: { sessionId: 's1', userId: 'u1', deviceId: 'd1', reason: 'expired', occurredAt: '2027-01-01T00:00:00.000Z' } }]);
  });

  it('logs out once', () => {
    spec
      .given(started)
      .when({ type: 'EndSession', reason: 'logout', now })
      .then([{ type: 'SessionEnded', data: { sessionId: 's1', userId: 'u1', deviceId: 'd1', reason: 'logout', occurredAt: now } }]);
    spec.given().when({ type: 'EndSession', reason: 'logout', now }).then([]);
  });

  it('refuses a refresh for an unknown session', () => {
    spec.given().when(refresh(1, 'h1')).thenThrows('invalid_refresh_token');
  });
});
