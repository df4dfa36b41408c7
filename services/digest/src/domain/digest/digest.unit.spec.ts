import { describe, it } from 'vitest';
import { deciderSpec } from '@bil/testkit';
import { digestDecider, type DigestEvent } from './digest.js';

const spec = deciderSpec(digestDecider);
const t0 = '2026-11-27T10:00:00.000Z';
const t1 = '2026-11-27T10:00:05.000Z';
const later = '2026-11-28T10:00:05.000Z';
const base = { requestId: 'r', userId: 'u', deviceId: 'd', chatIds: ['c1', 'c2'] };
const results = [{ chatId: 'c1', sealedSha256: 'h1' }, { chatId: 'c2', sealedSha256: 'h2' }];

const requested: DigestEvent = { type: 'DigestRequested', data: { ...base, keyIds: ['k'], occurredAt: t0 } };
const completed: DigestEvent = { type: 'DigestCompleted', data: { ...base, results, method: 'llm', expiresAt: later, occurredAt: t1 } };
const failed: DigestEvent = { type: 'DigestFailed', data: { requestId: 'r', userId: 'u', deviceId: 'd', reason: 'timeout', occurredAt: t1 } };
const expired: DigestEvent = { type: 'DigestExpired', data: { requestId: 'r', occurredAt: later } };

const request = (userId = 'u') => ({ type: 'RequestDigest' as const, ...base, userId, keyIds: ['k'], now: t0 });
const complete = { type: 'CompleteDigest' as const, results, method: 'llm' as const, expiresAt: later, now: t1 };
const fail = { type: 'FailDigest' as const, reason: 'timeout' as const, now: t1 };

describe('digest request decider', () => {
  it('records a new request', () => spec.given().when(request()).then([requested]));
  it('treats the same request again as a no-op (client retry)', () => spec.given(requested).when(request()).then([]));
  it("refuses another user's request id", () => spec.given(requested).when(request('other')).thenThrows('request_id_taken'));

  it('completes a pending request', () => spec.given(requested).when(complete).then([completed]));
  it('completes only once: a second worker run decides nothing', () => spec.given(requested, completed).when(complete).then([]));
  it('does not complete a request that already failed', () => spec.given(requested, failed).when(complete).then([]));

  it('fails a pending request with the reason', () => spec.given(requested).when(fail).then([failed]));
  it('does not fail a ready request', () => spec.given(requested, completed).when(fail).then([]));

  it('expires a ready request at its expiry, not before', () => {
    spec.given(requested, completed).when({ type: 'ExpireDigest', now: t1 }).then([]);
    spec.given(requested, completed).when({ type: 'ExpireDigest', now: later }).then([expired]);
  });
  it('does not expire twice', () => spec.given(requested, completed, expired).when({ type: 'ExpireDigest', now: later }).then([]));
});
